from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcode_nlp import CodingResult, InputError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _codes(result: CodingResult) -> set[str]:
    return {c.code for c in result.codes}


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.txt")))
def test_coder_evidence_offsets_quote_the_note(dictionary_coder, name):
    text = (EXAMPLES / name).read_text()
    result = dictionary_coder(text)
    assert result.entities
    for entity in result.entities:
        assert text[entity.start : entity.end] == entity.text
    for code in result.codes:
        assert 0.0 <= code.score <= 1.0
        assert code.billable
        for evidence in code.evidence:
            assert text[evidence.start : evidence.end] == evidence.text
    for item in result.excluded:
        for evidence in item.evidence:
            assert text[evidence.start : evidence.end] == evidence.text


def test_coder_json_schema_round_trip(dictionary_coder):
    result = dictionary_coder("Assessment: community acquired pneumonia.")
    data = json.loads(result.to_json())
    assert data["schema_version"] == "1"
    assert set(data) == {"schema_version", "versions", "entities", "codes", "excluded",
                         "consider"}
    assert set(data["versions"]) >= {"medcode_nlp", "model", "code_sets"}
    assert {"code", "system", "description", "score", "billable", "evidence", "prompts",
            "conflicts"} <= set(data["codes"][0])
    assert CodingResult.from_json(result.to_json()) == result


def test_coder_finds_pneumonia(dictionary_coder):
    result = dictionary_coder("Chest x-ray confirms right lower lobe pneumonia.")
    assert any(c.code.startswith("J18") for c in result.codes)


def test_coder_systems_filter(dictionary_coder):
    text = (EXAMPLES / "operative_note.txt").read_text()
    result = dictionary_coder(text, systems=["icd10pcs"])
    assert result.codes and {c.system for c in result.codes} == {"icd10pcs"}


def test_coder_pipe_matches_single_calls(dictionary_coder):
    texts = ["Type 2 diabetes mellitus.", "", "Acute cystitis."]
    assert list(dictionary_coder.pipe(texts)) == [dictionary_coder(t) for t in texts]


def test_coder_empty_text_gives_empty_result(dictionary_coder):
    result = dictionary_coder("   \n")
    assert result.codes == [] and result.entities == []


def test_coder_rejects_wrong_type(dictionary_coder):
    with pytest.raises(InputError, match="E004|Expected a note as str"):
        dictionary_coder(b"bytes are not text")  # type: ignore[arg-type]


def test_coder_rejects_text_over_limit(dictionary_coder):
    original = dictionary_coder.max_chars
    dictionary_coder.max_chars = 100
    try:
        with pytest.raises(InputError, match="over the limit of 100"):
            dictionary_coder("x" * 101)
    finally:
        dictionary_coder.max_chars = original


def test_coder_rejects_unknown_setting(dictionary_coder):
    with pytest.raises(InputError, match="setting"):
        dictionary_coder("Fever.", setting="ambulance")
