"""Tests for medcode_nlp.evaluation.ner (readers and entity-level scoring)."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy

from medcode_nlp.errors import InputError
from medcode_nlp.evaluation.ner import (
    DISEASE_LABEL_MAP,
    evaluate_ner,
    read_conll,
    read_pubtator,
    score_spans,
)


def test_ner_eval_read_conll_spans(fixtures_dir: Path) -> None:
    examples = read_conll(fixtures_dir / "ner_tiny.conll")
    assert len(examples) == 2
    text, spans = examples[1]
    assert text == "Aspirin may cause gastric ulcer bleeding ."
    assert [(text[s:e], lab) for s, e, lab in spans] == [
        ("Aspirin", "Chemical"),
        ("gastric ulcer bleeding", "Disease"),
    ]


def test_ner_eval_read_pubtator_maps_labels(fixtures_dir: Path) -> None:
    examples = read_pubtator(fixtures_dir / "ner_tiny.pubtator")
    assert len(examples) == 2
    text, spans = examples[0]
    assert text.startswith("Lisinopril induced cough. A patient")
    assert [(text[s:e], lab) for s, e, lab in spans][:2] == [
        ("Lisinopril", "DRUG"),
        ("cough", "PROBLEM"),
    ]
    assert examples[1][1] == []
    raw = read_pubtator(fixtures_dir / "ner_tiny.pubtator", label_map=None)
    assert {lab for _, _, lab in raw[0][1]} == {"Chemical", "Disease"}
    only_disease = read_pubtator(fixtures_dir / "ner_tiny.pubtator", DISEASE_LABEL_MAP)
    assert {lab for _, _, lab in only_disease[0][1]} == {"PROBLEM"}


@pytest.mark.parametrize(
    ("name", "reader", "line"),
    [("ner_bad_tag.conll", read_conll, 3), ("ner_bad_offsets.pubtator", read_pubtator, 4)],
)
def test_ner_eval_malformed_file_names_the_line(
    fixtures_dir: Path, name: str, reader: object, line: int
) -> None:
    with pytest.raises(InputError, match=rf"line {line}:"):
        reader(fixtures_dir / name)  # type: ignore[operator]


def test_ner_eval_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_conll(tmp_path / "nope.conll")


def test_ner_eval_pubtator_annotation_outside_document(tmp_path: Path) -> None:
    path = tmp_path / "bad.pubtator"
    path.write_text("1|t|Cough.\n2\t0\t5\tCough\tDisease\tD1\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2: annotation line outside its document"):
        read_pubtator(path)


def test_ner_eval_score_spans_micro_and_per_label() -> None:
    gold = [[(0, 4, "A"), (5, 9, "B")], [(0, 3, "A")]]
    pred = [[(0, 4, "A"), (5, 9, "A")], []]
    res = score_spans(gold, pred, ["A", "B"])
    assert res["labels"]["A"] == pytest.approx(
        {"p": 0.5, "r": 0.5, "f": 0.5, "tp": 1, "fp": 1, "fn": 1, "support": 2}
    )
    assert res["labels"]["B"]["r"] == 0.0
    assert res["micro"]["tp"] == 1 and res["micro"]["fp"] == 1 and res["micro"]["fn"] == 2


def test_ner_eval_evaluate_ner_with_rule_pipeline(fixtures_dir: Path) -> None:
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(  # type: ignore[attr-defined]
        [
            {"label": "PROBLEM", "pattern": "pneumonia"},
            {"label": "DRUG", "pattern": "Aspirin"},
            {"label": "PROBLEM", "pattern": "ulcer"},
            {"label": "PROCEDURE", "pattern": [{"LOWER": "chest"}]},
        ]
    )
    examples = read_conll(fixtures_dir / "ner_tiny.conll")
    res = evaluate_ner(nlp, examples, {"Disease": "PROBLEM", "Chemical": "DRUG"})
    assert set(res["labels"]) == {"PROBLEM", "DRUG"}  # PROCEDURE is not scored
    assert res["labels"]["PROBLEM"]["tp"] == 1
    assert res["labels"]["PROBLEM"]["fp"] == 1
    assert res["labels"]["PROBLEM"]["fn"] == 1
    assert res["labels"]["DRUG"]["f"] == 1.0
    assert res["micro"]["p"] == pytest.approx(2 / 3)
    assert res["n_docs"] == 2 and res["n_gold"] == 3 and res["n_misaligned_gold"] == 0
    assert evaluate_ner(nlp, examples) == res  # Disease/Chemical are renamed by default
    raw = evaluate_ner(nlp, examples, label_map=None)
    assert set(raw["labels"]) == {"Disease", "Chemical"} and raw["micro"]["tp"] == 0
