"""ICD-10-PCS loaders for the official CMS tables and index XML."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import FIXTURES, shared_path

from medcode_nlp.codesets.base import CodeEntry
from medcode_nlp.codesets.icd10pcs_official import (
    load_icd10pcs_index,
    load_icd10pcs_tables,
    pcs_title,
)
from medcode_nlp.errors import InputError

PCS_DIR = "icd10pcs-2025"


def test_icd10pcs_official_tables_fixture() -> None:
    entries = load_icd10pcs_tables(FIXTURES / "icd10pcs_tables_sample.xml")
    assert [(e.code, e.description) for e in entries] == [
        ("001607B", "Bypass Alpha Duct to Gamma Cistern with Beta Substitute, Open Approach"),
        ("00160ZB", "Bypass Alpha Duct to Gamma Cistern, Open Approach"),
        (
            "001637B",
            "Bypass Alpha Duct to Gamma Cistern with Beta Substitute, Percutaneous Approach",
        ),
        ("00163ZB", "Bypass Alpha Duct to Gamma Cistern, Percutaneous Approach"),
        ("0DTJ4ZZ", "Removal Of All Delta Pouch, Percutaneous Endoscopic Approach"),
        ("0DTK4ZZ", "Removal Of All Epsilon Pouch, Percutaneous Endoscopic Approach"),
        ("BR00ZZZ", "Plain Picture Zeta Spine"),
    ]
    first = entries[0]
    assert first.system == "icd10pcs" and first.billable and first.parent == "001"
    assert [(a.text, a.kind) for a in first.aliases] == [(first.description, "description")]


def test_icd10pcs_official_title_form() -> None:
    labels = ["Sec", "Sys", "Repair", "Knee", "Open", "No Device", "Left"]
    assert pcs_title(labels) == "Repair Knee, Left, Open Approach"
    labels = ["Sec", "Sys", "Scan", "Head", "Low Dose", "Dye", "None"]
    assert pcs_title(labels, approach_axis=False) == "Scan Head with Dye, Low Dose"
    assert pcs_title(["S", "S", "Counsel", "None", "None", "None", "None"], False) == "Counsel"


def test_icd10pcs_official_index_fixture() -> None:
    terms = load_icd10pcs_index(FIXTURES / "icd10pcs_index_sample.xml")
    assert all(t.system == "icd10pcs" for t in terms)
    assert [(t.term, t.code) for t in terms] == [
        ("Pouchectomy", "0DTJ"),  # from a "see" reference that names a code
        ("Pouch work, Delta Pouch", "0DTJ"),
        ("Pouch work, Delta Pouch, Endoscopic", "0DTJ4ZZ"),
        ("Pouch work", "001"),  # untitled subterm: "see Bypass" with a table
    ]  # "0DTI4ZZ" (letter I is not a PCS character) is skipped; "use" without code too
    direct = load_icd10pcs_index(FIXTURES / "icd10pcs_index_sample.xml", references=False)
    assert [(t.term, t.code) for t in direct] == [
        ("Pouch work, Delta Pouch", "0DTJ"),
        ("Pouch work, Delta Pouch, Endoscopic", "0DTJ4ZZ"),
    ]


def _write(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_icd10pcs_official_errors(tmp_path: Path) -> None:
    for loader in (load_icd10pcs_tables, load_icd10pcs_index):
        with pytest.raises(InputError, match="does not exist"):
            loader(tmp_path / "missing.xml")
        binary = tmp_path / "binary.xml"
        binary.write_bytes(b"\x00\x01binary")
        with pytest.raises(InputError, match="malformed XML"):
            loader(binary)
        with pytest.raises(InputError, match="not a regular file"):
            loader(tmp_path)
    with pytest.raises(InputError, match="root element is <ICD10PCS.index>"):
        load_icd10pcs_tables(FIXTURES / "icd10pcs_index_sample.xml")
    with pytest.raises(InputError, match="root element is <ICD10PCS.tabular>"):
        load_icd10pcs_index(FIXTURES / "icd10pcs_tables_sample.xml")
    empty = _write(
        tmp_path / "empty.xml", "<ICD10PCS.tabular><version>1</version></ICD10PCS.tabular>"
    )
    with pytest.raises(InputError, match="no <pcsTable>"):
        load_icd10pcs_tables(empty)
    text = (FIXTURES / "icd10pcs_tables_sample.xml").read_text(encoding="utf-8")
    no_axis_7 = text.replace(
        '<axis pos="7" values="1"><title>Qualifier</title><label code="B">', "<x>", 1
    )
    no_axis_7 = no_axis_7.replace("Gamma Cistern</label></axis>", "</x>", 1)
    with pytest.raises(InputError, match=r"table 1 \(001\) row 1: expected axes 4-7, got 4, 5, 6"):
        load_icd10pcs_tables(_write(tmp_path / "bad.xml", no_axis_7))
    with pytest.raises(InputError, match=r"malformed XML \(.*line \d+"):
        load_icd10pcs_tables(_write(tmp_path / "cut.xml", text[: len(text) // 2]))


@pytest.fixture(scope="module")
def fy2025_codes() -> list[CodeEntry]:
    return load_icd10pcs_tables(shared_path(PCS_DIR, "icd10pcs_tables_2025.xml"))


def test_icd10pcs_official_fy2025_tables(fy2025_codes: list[CodeEntry]) -> None:
    assert len(fy2025_codes) == 78948
    codes = {e.code: e for e in fy2025_codes}
    assert len(codes) == 78948 and all(len(code) == 7 for code in codes)
    assert codes["001607A"].description == (
        "Bypass Cerebral Ventricle to Subgaleal Space with Autologous Tissue Substitute, "
        "Open Approach"
    )
    assert codes["0UT90ZZ"].description == "Resection Uterus, Open Approach"
    assert codes["0DTJ4ZZ"].description == "Resection Appendix, Percutaneous Endoscopic Approach"
    sections = Counter(code[0] for code in codes)
    assert sections["0"] > 60000 and set(sections) == set("0123456789BCDFGHX")


def test_icd10pcs_official_fy2025_index(fy2025_codes: list[CodeEntry]) -> None:
    terms = load_icd10pcs_index(shared_path(PCS_DIR, "icd10pcs_index_2025.xml"))
    assert len(terms) == 16351
    assert Counter(len(t.code) for t in terms) == {4: 11520, 7: 2794, 3: 1405, 5: 370, 6: 262}
    pairs = {(t.term, t.code) for t in terms}
    assert ("Abortion, Vacuum", "10A07Z6") in pairs
    assert ("Abdominohysterectomy", "0UT9") in pairs
    # Every partial code is the prefix of some code of the tables.
    prefixes = {e.code[:n] for e in fy2025_codes for n in range(3, 7)}
    assert all(t.code in prefixes for t in terms if len(t.code) < 7)
    direct = load_icd10pcs_index(shared_path(PCS_DIR, "icd10pcs_index_2025.xml"), references=False)
    assert len(direct) == 14711
