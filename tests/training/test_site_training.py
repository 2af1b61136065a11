"""Reading a site's coded notes and counting against them (``medcode_nlp.training.site_model``)."""

from __future__ import annotations

import json

import pytest

from medcode_nlp.errors import InputError
from medcode_nlp.training.site_model import CodedNote, micro_counts, read_coded_notes


def test_read_coded_notes_keeps_optional_codes_apart(tmp_path):
    path = tmp_path / "c.jsonl"
    rows = [{"id": "a", "text": "Cough.", "codes": ["R05.9", {"code": "Z87.891",
                                                               "optional": True}]},
            {"id": "b", "text": "Fever.", "codes": [{"system": "ICD-10-CM", "code": "r50.9"}]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    first, second = read_coded_notes(path)
    assert first.required == {("icd10cm", "R05.9")}
    assert first.optional == {("icd10cm", "Z87.891")}
    assert second.required == {("icd10cm", "R50.9")}


@pytest.mark.parametrize("line, detail", [
    ("{not json", "invalid JSON"),
    (json.dumps({"id": "x", "text": 3, "codes": []}), "'text'"),
    (json.dumps({"id": "x", "text": "t", "codes": [5]}), "'code' string"),
])
def test_read_coded_notes_bad_line_is_a_numbered_error(tmp_path, line, detail):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "ok", "text": "t", "codes": []}) + "\n" + line + "\n")
    with pytest.raises(InputError, match="line 2: ") as error:
        read_coded_notes(path)
    assert detail in str(error.value)


def test_missing_gold_file_is_clear(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_coded_notes(tmp_path / "absent.jsonl")


def test_micro_counts_ignore_kept_optional_codes():
    note = CodedNote("n", "t", frozenset({("icd10cm", "R05.9")}),
                     frozenset({("icd10cm", "Z87.891")}))
    assert micro_counts([{"icd10cm|R059", "icd10cm|Z87891", "icd10cm|I10"}], [note]) == (1, 1, 1)
