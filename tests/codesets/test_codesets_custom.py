"""Custom code lists (CSV / JSONL) written by users."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES

from medcode_nlp.codesets.base import CodeEntry
from medcode_nlp.codesets.custom import guess_delimiter, load_custom
from medcode_nlp.errors import InputError


def _summary(entries: list[CodeEntry]) -> list[tuple[object, ...]]:
    return [
        (
            e.code,
            e.system,
            e.description,
            e.billable,
            e.parent,
            [(a.text, a.kind) for a in e.aliases],
        )
        for e in entries
    ]


EXPECTED = [
    (
        "ABC-1",
        "custom",
        "Invented condition alpha",
        True,
        None,
        [
            ("Invented condition alpha", "description"),
            ("alpha thing", "custom"),
            ("the alpha", "custom"),
        ],
    ),
    (
        "ABC-1.1",
        "custom",
        "Invented condition alpha subtype",
        True,
        "ABC-1",
        [("Invented condition alpha subtype", "description")],
    ),
    (
        "XYZ",
        "custom",
        "Invented condition, with a comma",
        False,
        None,
        [("Invented condition, with a comma", "description"), ("zed", "custom")],
    ),
]


def test_custom_csv_and_jsonl_agree() -> None:
    from_csv = load_custom(FIXTURES / "custom_codes.csv")
    from_jsonl = load_custom(FIXTURES / "custom_codes.jsonl")
    assert _summary(from_csv) == EXPECTED
    assert _summary(from_jsonl) == EXPECTED
    assert from_csv[0].extra == from_jsonl[0].extra == {"group": "demo"}


def test_custom_system_tsv_and_sniffed_format(tmp_path: Path) -> None:
    tsv = tmp_path / "codes.tsv"
    tsv.write_text("Code\tDescription\nQ1\tInvented item\n", encoding="utf-8")
    assert load_custom(tsv, system="hcpcs")[0].system == "hcpcs"
    sniffed = tmp_path / "codes.data"
    sniffed.write_text('{"code": "Q1", "description": "Invented item"}\n', encoding="utf-8")
    assert load_custom(sniffed)[0].code == "Q1"
    assert guess_delimiter("a\tb,c\n") == "\t" and guess_delimiter("a;b\n") == ";"
    with pytest.raises(InputError, match="system"):
        load_custom(tsv, system="")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "code,label\nQ1,x\n", r"line 1: header lacks description"),
        ("a.csv", "code,description\nQ1,Item\n,Item without code\n", r"line 3: missing code"),
        ("a.csv", "code,description\n\nQ1,\n", r"line 3: code Q1 has no description"),
        ("a.csv", "code,description,billable\nQ1,Item,maybe\n", r"line 2: billable of Q1"),
        ("a.csv", "code,description\nQ1,Item,extra\n", r"line 2: 3 fields"),
        ("a.csv", "code,description\nQ1,Item\nQ1,Again\n", r"line 3: code Q1 appears twice"),
        ("a.csv", 'code,description\nQ1,"unclosed\n', r"line \d: unexpected end of data"),
        ("a.csv", "code,description\n", r"no codes found"),
        ("a.jsonl", '{"code": "Q1", "description": "Item"}\n{bad json}\n', r"line 2: invalid JSON"),
        ("a.jsonl", "[1, 2]\n", r"line 1: expected a JSON object"),
        ("a.jsonl", '{"code": "Q1", "description": "I", "aliases": "x"}\n', r"line 1: aliases"),
        ("a.jsonl", '{"code": "Q1", "description": 3}\n', r"line 1: code Q1 has no description"),
    ],
)
def test_custom_malformed_rows(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_custom(path)
    assert str(path) in str(info.value)


def test_custom_missing_binary_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_custom(tmp_path / "missing.csv")
    binary = tmp_path / "a.csv"
    binary.write_bytes(b"code,description\n\x00\x00")
    with pytest.raises(InputError, match="binary"):
        load_custom(binary)
    latin = tmp_path / "b.jsonl"
    latin.write_bytes(
        b'{"code": "Q1", "description": "Item"}\n{"code": "Q2", "description": "\xe9"}\n'
    )
    with pytest.raises(InputError, match=r"line 2: not valid UTF-8"):
        load_custom(latin)
