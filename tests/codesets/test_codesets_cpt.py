"""CPT loader (user-supplied licensed file) and the public CPT section ranges.

All descriptor text here is invented: AMA CPT descriptors must never enter the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES

from medcode_nlp.codesets.cpt import (
    CPT_SECTIONS,
    CPT_SURGERY_SUBSECTIONS,
    cpt_section,
    cpt_subsection,
    is_cpt_code,
    load_cpt,
)
from medcode_nlp.errors import InputError


def test_cpt_load_tsv_with_header() -> None:
    entries = {e.code: e for e in load_cpt(FIXTURES / "cpt_sample.tsv")}
    assert list(entries) == ["10060", "27447", "99213", "0001F", "0042T", "0001U"]
    alpha = entries["10060"]
    assert alpha.system == "cpt" and alpha.billable
    assert alpha.description == "Test descriptor alpha"
    assert [(a.text, a.kind) for a in alpha.aliases] == [
        ("Test descriptor alpha", "description"),
        ("Test alpha", "short"),
    ]
    assert alpha.extra == {
        "category": "I",
        "section": "Surgery",
        "subsection": "Integumentary System",
    }
    assert [a.kind for a in entries["27447"].aliases] == ["description"]  # short == long
    assert entries["99213"].extra == {"category": "I", "section": "Evaluation and Management"}
    assert entries["0001F"].extra["category"] == "II"
    assert entries["0042T"].extra == {"category": "III", "section": "Category III"}
    assert entries["0001U"].extra["section"] == "Pathology and Laboratory"


@pytest.mark.parametrize(
    "content",
    [
        "99213,Test descriptor gamma\n0001f,Test descriptor delta,Test delta\n",
        '"99213","Test descriptor gamma"\r\n"0001F","Test descriptor delta","Test delta"\r\n',
        "CPT Code;Long Descriptor;Short Descriptor\n99213;Test descriptor gamma;\n"
        "0001F;Test descriptor delta;Test delta\n",
        "\ufeffdescription|code\nTest descriptor gamma|99213\nTest descriptor delta|0001F\n",
    ],
)
def test_cpt_load_csv_variants(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cpt.csv"
    path.write_text(content, encoding="utf-8")
    entries = load_cpt(path)
    assert [(e.code, e.description) for e in entries] == [
        ("99213", "Test descriptor gamma"),
        ("0001F", "Test descriptor delta"),
    ]


def test_cpt_quoted_descriptor_with_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "cpt.csv"
    path.write_text('code,descriptor\n70010,"Test descriptor, with comma"\n', encoding="utf-8")
    assert load_cpt(path)[0].description == "Test descriptor, with comma"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("99213\tTest descriptor gamma\n9921\tTest descriptor short code\n", r"line 2: '9921'"),
        ("99213\tTest descriptor gamma\nA0001\tTest descriptor hcpcs\n", r"line 2: 'A0001'"),
        ("code\tdescriptor\n99213\tTest descriptor\n\n0001X\tTest\n", r"line 4: '0001X'"),
        ("99213\t\n", r"line 1: code 99213 has no descriptor"),
        ("99213\tTest a\n99213\tTest b\n", r"line 2: code 99213 appears twice"),
        ("99213,Test descriptor, unquoted, comma\n", r"line 1: 4 fields"),
        ("code\tdescriptor\n", r"no CPT codes found"),
    ],
)
def test_cpt_malformed_rows(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_cpt(path)
    assert str(path) in str(info.value)


def test_cpt_missing_binary_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_cpt(tmp_path / "missing.tsv")
    binary = tmp_path / "a.tsv"
    binary.write_bytes(b"99213\t\x00\x01")
    with pytest.raises(InputError, match="binary"):
        load_cpt(binary)
    latin = tmp_path / "b.tsv"
    latin.write_bytes("99213\tTest descriptor caf\u00e9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"line 1: not valid UTF-8 \(byte 25\)"):
        load_cpt(latin)


@pytest.mark.parametrize(
    ("code", "section", "subsection"),
    [
        ("99202", "Evaluation and Management", None),
        ("99499", "Evaluation and Management", None),
        ("00100", "Anesthesia", None),
        ("01999", "Anesthesia", None),
        ("99135", "Anesthesia", None),  # inside Medicine's range, the narrower range wins
        ("10004", "Surgery", "General"),
        ("11042", "Surgery", "Integumentary System"),
        ("27447", "Surgery", "Musculoskeletal System"),
        ("31500", "Surgery", "Respiratory System"),
        ("33533", "Surgery", "Cardiovascular System"),
        ("38500", "Surgery", "Hemic and Lymphatic Systems"),
        ("39501", "Surgery", "Mediastinum and Diaphragm"),
        ("47562", "Surgery", "Digestive System"),
        ("52000", "Surgery", "Urinary System"),
        ("55700", "Surgery", "Male Genital System"),
        ("58150", "Surgery", "Female Genital System"),
        ("59400", "Surgery", "Maternity Care and Delivery"),
        ("60240", "Surgery", "Endocrine System"),
        ("63030", "Surgery", "Nervous System"),
        ("66984", "Surgery", "Eye and Ocular Adnexa"),
        ("69436", "Surgery", "Auditory System"),
        ("69990", "Surgery", "Operating Microscope"),
        ("71046", "Radiology", None),
        ("80053", "Pathology and Laboratory", None),
        ("0240u", "Pathology and Laboratory", None),
        ("90471", "Medicine", None),
        ("99199", "Medicine", None),
        ("99605", "Medicine", None),
        ("3074F", "Category II", None),
        ("0042T", "Category III", None),
        ("0041T", None, None),
        ("99999", None, None),
        ("00099", None, None),
        ("E0114", None, None),
        ("1234", None, None),
    ],
)
def test_cpt_section_ranges(code: str, section: str | None, subsection: str | None) -> None:
    assert cpt_section(code) == section
    assert cpt_subsection(code) == subsection


def test_cpt_range_tables_are_well_formed() -> None:
    for name, first, last in (*CPT_SECTIONS, *CPT_SURGERY_SUBSECTIONS):
        assert name and is_cpt_code(first) and is_cpt_code(last)
        assert first[-1].isdigit() == last[-1].isdigit() and first <= last
    for name, first, last in CPT_SURGERY_SUBSECTIONS:
        assert cpt_section(first) == cpt_section(last) == "Surgery", name


def test_cpt_is_cpt_code() -> None:
    assert is_cpt_code("99213") and is_cpt_code("0001f") and is_cpt_code(" 0042T ")
    assert not is_cpt_code("0001X") and not is_cpt_code("E0114") and not is_cpt_code("992130")
