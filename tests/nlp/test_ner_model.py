"""Tests for the shipped NER model in models/ner."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import spacy
from conftest import ROOT, shared_path
from spacy.language import Language

from medcode_nlp.evaluation.ner import evaluate_ner, read_pubtator

MODEL_DIR = ROOT / "models" / "ner"


@pytest.fixture(scope="module")
def ner() -> Language:
    return spacy.load(MODEL_DIR)


def test_ner_model_has_the_three_labels_and_only_ner(ner: Language) -> None:
    assert ner.pipe_names == ["ner"]
    assert set(ner.get_pipe("ner").labels) == {"PROBLEM", "PROCEDURE", "DRUG"}


def test_ner_model_checksums_match_every_file() -> None:
    manifest = MODEL_DIR / "checksums.sha256"
    listed: dict[str, str] = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    files = {
        p.relative_to(MODEL_DIR).as_posix(): p
        for p in MODEL_DIR.rglob("*")
        if p.is_file() and p != manifest
    }
    assert set(listed) == set(files)
    for name, path in files.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == listed[name], name


def test_ner_model_is_small_and_documented() -> None:
    size = sum(p.stat().st_size for p in MODEL_DIR.rglob("*") if p.is_file())
    assert size <= 40 * 1024 * 1024
    card = (MODEL_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "scripts/train_ner.py" in card and "BC5CDR" in card


def test_ner_model_finds_a_problem(ner: Language) -> None:
    doc = ner("Chest x-ray showed right lower lobe pneumonia.")
    ents = {(e.text, e.label_) for e in doc.ents}
    assert any(label == "PROBLEM" and text.endswith("pneumonia") for text, label in ents), ents
    assert any(label == "PROCEDURE" and "x-ray" in text for text, label in ents), ents


def test_ner_model_uses_the_clinical_tokenizer(ner: Language) -> None:
    assert [t.text for t in ner.make_doc("5-FU/leucovorin")] == ["5", "-", "FU", "/", "leucovorin"]


def test_ner_model_bc5cdr_test_sample(ner: Language) -> None:
    path = shared_path("bc5cdr", "CDR_TestSet.PubTator.txt")
    result = evaluate_ner(ner, read_pubtator(path)[:40])
    assert result["micro"]["f"] > 0.75


def test_ner_model_loads_from_a_copy_without_custom_code(tmp_path: Path, ner: Language) -> None:
    ner.to_disk(tmp_path / "copy")
    again = spacy.load(tmp_path / "copy")
    text = "She was started on amoxicillin for pneumonia."
    assert [(e.text, e.label_) for e in again(text).ents] == [
        (e.text, e.label_) for e in ner(text).ents
    ]
