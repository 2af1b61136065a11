"""HCPCS Level II loader: fixed-width TXT and XLSX forms of the CMS annual file."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from conftest import shared_path

from medcode_nlp.codesets.base import CodeEntry
from medcode_nlp.codesets.hcpcs import load_hcpcs
from medcode_nlp.errors import InputError

HCPCS_DIR = ("hcpcs-2019",)


def _record(code: str, seq: int, ric: str, long: str, short: str = "", term: str = "") -> str:
    """One 320-character record of the CMS fixed-width layout (invented content)."""
    line = [" "] * 320
    for start, value in (
        (0, code.rjust(5) if len(code) == 2 else code),
        (5, f"{seq:05d}"),
        (10, ric),
        (11, long[:80]),
        (91, short[:28]),
    ):
        line[start : start + len(value)] = value
    if ric in "37":
        for start, value in ((268, "20200101"), (276, "20210101"), (284, term), (292, "N")):
            line[start : start + len(value)] = value
    return "".join(line)


SAMPLE = [
    "***Disclaimers\t\t\t",
    "*Invented disclaimer line\xa0with a Latin-1 byte",
    "",
    _record("ZZ", 10, "7", "Invented modifier first line", "Inv modifier"),
    _record("ZZ", 20, "8", "and its continuation"),
    _record("X1234", 10, "3", "Invented supply item, per unit,", "Inv supply item"),
    _record("X1234", 20, "4", "with a   second line"),
    _record("X1235", 10, "3", "Invented retired service", "Invented retired service", "20191231"),
]


def _write_txt(path: Path, lines: list[str]) -> Path:
    path.write_bytes("\r\n".join(lines).encode("latin-1") + b"\r\n")
    return path


def _write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["***Disclaimers"])
    sheet.append([])
    sheet.append(["HCPC", "SEQNUM", "RECID", "LONG DESCRIPTION", "SHORT DESCRIPTION", "TERM DT"])
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def test_hcpcs_txt_joins_continuations_and_marks_modifiers(tmp_path: Path) -> None:
    entries = {e.code: e for e in load_hcpcs(_write_txt(tmp_path / "a.txt", SAMPLE))}
    assert list(entries) == ["ZZ", "X1234", "X1235"]
    item = entries["X1234"]
    assert item.system == "hcpcs" and item.billable
    assert item.description == "Invented supply item, per unit, with a second line"
    assert [(a.text, a.kind) for a in item.aliases] == [
        (item.description, "description"),
        ("Inv supply item", "short"),
        ("Invented supply item", "head"),  # the title's first comma part
    ]
    assert item.extra == {
        "type": "procedure",
        "added_date": "20200101",
        "effective_date": "20210101",
        "action_code": "N",
    }
    modifier = entries["ZZ"]
    assert modifier.description == "Invented modifier first line and its continuation"
    assert not modifier.billable and modifier.extra["type"] == "modifier"
    retired = entries["X1235"]
    assert retired.extra["termination_date"] == "20191231"
    assert [a.kind for a in retired.aliases] == ["description"]  # short == long: no alias


def test_hcpcs_xlsx_matches_txt(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["   ZZ", "0010", "7", "Invented modifier first line", "Inv modifier", None],
        ["   ZZ", "0020", "8", "and its continuation", None, None],
        ["X1234", "0010", 3, "Invented supply item, per unit, with a", "Inv supply item", None],
        ["X1234", "0020", "4", "second line", None, None],
        [None, None, None, None, None, None],
        ["X1235", "0010", "3", "Invented retired service", "Invented retired service", "20191231"],
    ]
    from_xlsx = load_hcpcs(_write_xlsx(tmp_path / "a.xlsx", rows))
    from_txt = load_hcpcs(_write_txt(tmp_path / "a.txt", SAMPLE))
    assert [(e.code, e.description, e.aliases, e.billable) for e in from_xlsx] == [
        (e.code, e.description, e.aliases, e.billable) for e in from_txt
    ]
    assert from_xlsx[2].extra["termination_date"] == "20191231"


def test_hcpcs_detects_xlsx_by_content(tmp_path: Path) -> None:
    rows: list[list[object]] = [["X1234", "0010", "3", "Invented item", "Inv item", None]]
    path = _write_xlsx(tmp_path / "a.xlsx", rows)
    renamed = path.rename(tmp_path / "download.bin")
    assert [e.code for e in load_hcpcs(renamed)] == ["X1234"]


def test_hcpcs_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_hcpcs(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (SAMPLE[:4] + ["garbage in the middle"] + SAMPLE[4:], r"line 5: not an HCPCS record"),
        ([_record("X1234", 20, "4", "orphan continuation")], r"line 1: continuation of 'X1234'"),
        ([SAMPLE[5], SAMPLE[5]], r"line 2: code X1234 appears twice"),
        (["just some text", "no records at all"], r"no HCPCS records found"),
        ([_record("X1234", 10, "3", "")], r"code X1234 has no description"),
        ([_record("X123", 10, "3", "Invented")], r"no HCPCS records found"),
    ],
)
def test_hcpcs_malformed_txt(tmp_path: Path, lines: list[str], message: str) -> None:
    path = _write_txt(tmp_path / "bad.txt", lines)
    with pytest.raises(InputError, match=message) as info:
        load_hcpcs(path)
    assert str(path) in str(info.value)


def test_hcpcs_binary_and_broken_xlsx(tmp_path: Path) -> None:
    binary = tmp_path / "a.txt"
    binary.write_bytes(b"\x00\x01\x02" * 50)
    with pytest.raises(InputError, match="binary"):
        load_hcpcs(binary)
    broken = tmp_path / "a.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="not a readable XLSX"):
        load_hcpcs(broken)
    no_header = tmp_path / "b.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["nothing", "here"])
    workbook.save(no_header)
    with pytest.raises(InputError, match="no header row"):
        load_hcpcs(no_header)


@pytest.fixture(scope="module")
def official_2019() -> tuple[list[CodeEntry], list[CodeEntry]]:
    folder = shared_path(*HCPCS_DIR)
    txt = load_hcpcs(folder / "HCPC2019_CONTR_ANWEB.txt")
    xlsx = load_hcpcs(folder / "HCPC2019_CONTR_ANWEB.xlsx")
    return txt, xlsx


def test_hcpcs_official_2019_counts(official_2019: tuple[list[CodeEntry], list[CodeEntry]]) -> None:
    txt, _ = official_2019
    assert len(txt) == 6800
    assert sum(e.extra["type"] == "modifier" for e in txt) == 360
    assert sum(e.billable for e in txt) == 6440
    assert sum("termination_date" in e.extra for e in txt) == 515
    assert all(len(e.code) == (2 if e.extra["type"] == "modifier" else 5) for e in txt)


def test_hcpcs_official_2019_known_codes(
    official_2019: tuple[list[CodeEntry], list[CodeEntry]],
) -> None:
    entries = {e.code: e for e in official_2019[0]}
    crutches = entries["E0114"]
    assert crutches.description.startswith("Crutches underarm")
    assert crutches.description.endswith("tips and handgrips")  # joined continuation record
    strips = entries["A4253"]
    assert "glucose" in strips.description and strips.description.endswith("per 50 strips")
    assert any(a.kind == "short" for a in strips.aliases)
    assert entries["G0503"].extra["termination_date"] == "20171231"
    assert not entries["AD"].billable and entries["AD"].extra["type"] == "modifier"


def test_hcpcs_official_2019_txt_equals_xlsx(
    official_2019: tuple[list[CodeEntry], list[CodeEntry]],
) -> None:
    txt, xlsx = official_2019

    def key(entry: CodeEntry) -> tuple[object, ...]:
        term = entry.extra.get("termination_date")
        return entry.code, entry.description, entry.aliases, entry.billable, term

    assert [key(e) for e in txt] == [key(e) for e in xlsx]
