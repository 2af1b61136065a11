"""ICD-10-CM Alphabetic Index loader (CDC index XML, including the neoplasm and drug tables)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, shared_path

from medcode_nlp.codesets.base import IndexTerm
from medcode_nlp.codesets.icd10cm_index import dotted_index_code, load_icd10cm_index
from medcode_nlp.errors import InputError

CM_DIR = "icd10cm-2025"


def _pairs(terms: list[IndexTerm]) -> list[tuple[str, str]]:
    return [(t.term, t.code) for t in terms]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A000", "A00.0"),
        ("A00.0", "A00.0"),
        ("s72.0-", "S72.0-"),
        ("S720-", "S72.0-"),
        ("I63.-", "I63.-"),
        ("C64-", "C64.-"),
        ("X58", "X58"),
        ("T5131X1", "T51.31X1"),
        ("M1A.27-", "M1A.27-"),
        ("nonsense", None),
        ("", None),
        ("A0", None),
    ],
)
def test_icd10cm_index_normalize_code(raw: str, expected: str | None) -> None:
    assert dotted_index_code(raw) == expected


def test_icd10cm_index_fixture_terms() -> None:
    terms = load_icd10cm_index(FIXTURES / "icd10cm_index_sample.xml")
    assert all(t.system == "icd10cm" for t in terms)
    assert _pairs(terms) == [
        ("Quibble NEC", "Q99.99"),
        ("Quibble NEC, hand", "Q98.1-"),
        ("Quibble NEC, hand, left", "Q98.12"),
        ("Quibble NEC, hand, left", "Q97.0"),  # paired manifestation code
        ("Quibble NEC, with, zebra stripes", "Q97.-"),
        ("Quibble NEC, with, lightning", "Q96.0-"),  # see subcategory
        ("Quibble NEC, with, rope", "Q95.-"),  # see category
        ("Quiver", "R9A.1"),
        ("Zany, recurrent", "R99.0"),  # "not-a-code" skipped, lower case fixed
    ]


def test_icd10cm_index_nemod_modes() -> None:
    path = FIXTURES / "icd10cm_index_sample.xml"
    kept = _pairs(load_icd10cm_index(path, nemod="keep"))
    assert kept[0] == ("Quibble (chronic) (mild) NEC", "Q99.99")
    assert ("Quibble (chronic) (mild) NEC, hand, left (side)", "Q98.12") in kept
    both = _pairs(load_icd10cm_index(path, nemod="both"))
    assert both[:2] == [("Quibble NEC", "Q99.99"), ("Quibble (chronic) (mild) NEC", "Q99.99")]
    assert ("Zany, recurrent", "R99.0") in both and ("Zany (episode), recurrent", "R99.0") in both
    with pytest.raises(InputError, match="nemod"):
        load_icd10cm_index(path, nemod="sometimes")


def test_icd10cm_index_table_fixture() -> None:
    terms = load_icd10cm_index(FIXTURES / "icd10cm_neoplasm_sample.xml")
    assert _pairs(terms) == [
        ("Neoplasm, malignant primary", "C90.1"),
        ("Neoplasm, malignant secondary", "C91.-"),
        ("Neoplasm, benign", "D90.9"),
        ("Neoplasm, unspecified behavior", "D99.9"),
        ("Neoplasm, glimmer gland, malignant primary", "C92.3"),
        ("Neoplasm, glimmer gland, malignant secondary", "C92.80"),
        ("Neoplasm, glimmer gland, benign", "D92.3"),
    ]


def test_icd10cm_index_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_icd10cm_index(tmp_path / "missing.xml")
    cases = {
        "truncated.xml": (b"<ICD10CM.index><letter><title>A</title>", r"malformed XML"),
        "binary.xml": (b"\x00\x01\x02\x03", r"malformed XML"),
        "latin.xml": (
            b'<?xml version="1.0" encoding="utf-8"?>\n<ICD10CM.index><title>caf\xe9</title>',
            r"line 2, column",
        ),
        "other.xml": (b"<ICD10PCS.index><letter/></ICD10PCS.index>", r"root element"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InputError, match=message) as info:
            load_icd10cm_index(path)
        assert str(path) in str(info.value), name


def test_icd10cm_index_official_eindex() -> None:
    terms = load_icd10cm_index(shared_path(CM_DIR, "icd-10-cm-eindex-2025.xml"))
    assert len(terms) == 6664
    pairs = set(_pairs(terms))
    assert ("Accident, boat, boating, striking swimmer, powered", "V94.11") in pairs
    assert ("Abandonment NEC", "X58") in pairs  # nonessential modifiers dropped
    assert sum(t.code.endswith("-") for t in terms) == 252
    assert (
        len(load_icd10cm_index(shared_path(CM_DIR, "icd-10-cm-eindex-2025.xml"), nemod="both"))
        == 12555
    )


def test_icd10cm_index_official_tables() -> None:
    neoplasm = load_icd10cm_index(shared_path(CM_DIR, "icd-10-cm-neoplasm-2025.xml"))
    assert len(neoplasm) == 9018
    pairs = set(_pairs(neoplasm))
    assert ("Neoplasm, neoplastic, abdomen, abdominal, malignant primary", "C76.2") in pairs
    assert ("Neoplasm, neoplastic, abdomen, abdominal, malignant secondary", "C79.8-") in pairs
    drug = load_icd10cm_index(shared_path(CM_DIR, "icd-10-cm-drug-2025.xml"))
    assert len(drug) == 40016
    assert ("1-propanol, poisoning accidental (unintentional)", "T51.3X1") in set(_pairs(drug))
    assert all(t.code[0] == "T" for t in drug)


def test_icd10cm_index_csv_export() -> None:
    terms = load_icd10cm_index(FIXTURES / "icd10cm_index_rows_sample.csv")
    pairs = _pairs(terms)
    assert ("left arm quaver", "R90.12") in pairs  # subterms in front of the main term
    assert ("quaver due to cold exposure", "R90.31") in pairs  # connector after it, NEC gone
    assert ("lower glabrous skin quill injury", "R91.9-") in pairs  # dash kept
    assert ("slight rumble", "R93.2") in pairs and ("slight rumble", "R93.3") in pairs
    assert [p for p in pairs if p[1] == "R93.1"] == [("minor rumble", "R93.1")]  # one per code
    assert not any(t.code == "" for t in terms)  # "see" and uncoded rows skipped
    assert len(terms) == 17


def test_icd10cm_index_csv_errors(tmp_path: Path) -> None:
    cases = {
        "columns.csv": (b"RowID,Term\n1,Anemia\n", "missing column"),
        "empty.csv": (b"", "no coded index rows"),
        "uncoded.csv": (b"RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n1,A,0,A,B,,,\n",
                        "no coded index rows"),
        "level.csv": (b"RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n1,A,x,A,,,,D64.9\n",
                      "bad Level"),
        "latin.csv": (b"RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n1,A,0,caf\xe9,,,,A00\n",
                      "not UTF-8"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InputError, match=message) as info:
            load_icd10cm_index(path)
        assert str(path) in str(info.value) and "index CSV" in str(info.value), name


def test_icd10cm_index_official_csv() -> None:
    terms = load_icd10cm_index(shared_path(CM_DIR, "ICD10CM_2025_Index.csv"))
    pairs = set(_pairs(terms))
    assert ("iron deficiency anemia", "D50.9") in pairs
    assert len(terms) > 55_000
