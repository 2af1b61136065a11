"""One reader of coded notes: ``medcode evaluate coding`` and ``medcode train ranker --gold``
read the same files the same way (ids, texts, required and optional codes)."""

from __future__ import annotations

import pytest
from conftest import shared_path, write_jsonl

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.errors import InputError
from medcode_nlp.evaluation.coding import ANY_SYSTEM
from medcode_nlp.evaluation.coding import read_coded_notes as read_for_evaluation
from medcode_nlp.training.site_model import read_coded_notes as read_for_training

ROWS = [
    {"id": "a", "setting": "inpatient", "specialty": "Radiology", "text": "Cough.",
     "codes": ["R05.9", {"system": "ICD-10-CM", "code": "z87.891", "optional": True},
               {"system": "icd10cm", "code": "J18.9", "rank": 1}]},
    {"text": "Fever, no id.", "codes": [{"code": "R50.9"}]},
    {"id": 7, "text": "Nothing coded.", "codes": []},
]


def _as_training(note):
    """What the training reader should make of one note of the evaluation reader."""
    def keys(optional: bool) -> set[tuple[str, str]]:
        return {("icd10cm" if c.system == ANY_SYSTEM else c.system, c.code)
                for c in note.codes if c.optional is optional}
    return note.id, note.text, keys(False), keys(True)


def _training_view(note):
    def keys(codes) -> set[tuple[str, str]]:
        return {(system, code_key(code)) for system, code in codes}
    return note.id, note.text, keys(note.required), keys(note.optional)


def test_both_callers_read_the_same_notes(tmp_path):
    path = tmp_path / "coded.jsonl"
    write_jsonl(path, ROWS)
    evaluated, trained = read_for_evaluation(path), read_for_training(path)
    assert [_as_training(n) for n in evaluated] == [_training_view(n) for n in trained]
    assert [n.id for n in trained] == ["a", "2", "7"]  # no id: the line number
    assert trained[0].required == {("icd10cm", "R05.9"), ("icd10cm", "J18.9")}  # as written
    assert trained[0].optional == {("icd10cm", "Z87.891")}
    assert evaluated[0].setting == "inpatient" and evaluated[0].codes[2].rank == 1


@pytest.mark.parametrize(("line", "detail"), [
    ("{not json", "invalid JSON"),
    ({"id": "x", "text": 3, "codes": []}, "'text'"),
    ({"id": "x", "text": "t", "codes": [5]}, "'code' string"),
    ({"id": "ok", "text": "t", "codes": []}, "unique"),
    ({"id": "x", "text": "t", "codes": [], "setting": "ward"}, "setting"),
])
def test_both_callers_reject_a_bad_line_alike(tmp_path, line, detail):
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, [{"id": "ok", "text": "t", "codes": []}, line,
                       {"id": "z", "text": "t", "codes": []}])
    for reader in (read_for_evaluation, read_for_training):
        with pytest.raises(InputError, match="line 2") as error:
            reader(path)
        assert detail in str(error.value)


def test_training_needs_two_notes(tmp_path):
    path = tmp_path / "one.jsonl"
    write_jsonl(path, [{"id": "a", "text": "t", "codes": ["R05.9"]}])
    assert len(read_for_evaluation(path)) == 1
    with pytest.raises(InputError, match="at least 2"):
        read_for_training(path)


@pytest.mark.parametrize("folder", ["usnotes-mtsamples", "cmc2007-radiology"])
def test_both_callers_read_the_dev_sets_alike(folder):
    path = shared_path(folder, "dev.jsonl")
    evaluated, trained = read_for_evaluation(path), read_for_training(path)
    assert [_as_training(n) for n in evaluated] == [_training_view(n) for n in trained]
