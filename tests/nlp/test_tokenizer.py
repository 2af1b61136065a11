"""Tests for medcode_nlp.nlp.tokenizer."""

from __future__ import annotations

from pathlib import Path

import spacy

from medcode_nlp.nlp.tokenizer import blank_clinical, create_clinical_tokenizer


def _tokens(nlp: spacy.language.Language, text: str) -> list[str]:
    return [t.text for t in nlp(text)]


def test_tokenizer_splits_brackets_slashes_and_hyphens() -> None:
    nlp = blank_clinical()
    assert _tokens(nlp, "(HIV)-associated nephropathy") == [
        "(", "HIV", ")", "-", "associated", "nephropathy",
    ]  # fmt: skip
    assert _tokens(nlp, "5-fluorouracil/leucovorin") == [
        "5", "-", "fluorouracil", "/", "leucovorin",
    ]  # fmt: skip
    assert _tokens(nlp, "BP=120/80;HR:88") == [
        "BP", "=", "120", "/", "80", ";", "HR", ":", "88",
    ]  # fmt: skip
    assert _tokens(nlp, "Na+[K]") == ["Na", "+", "[", "K", "]"]


def test_tokenizer_keeps_default_rules() -> None:
    nlp = blank_clinical()
    assert _tokens(nlp, "Chest x-ray, e.g. today.") == [
        "Chest", "x", "-", "ray", ",", "e.g.", "today", ".",
    ]  # fmt: skip
    assert _tokens(spacy.blank("en"), "x-ray") == ["x", "-", "ray"]


def test_tokenizer_is_idempotent() -> None:
    nlp = create_clinical_tokenizer(create_clinical_tokenizer(spacy.blank("en")))
    assert _tokens(nlp, "a/b-c") == ["a", "/", "b", "-", "c"]


def test_tokenizer_survives_to_disk_and_spacy_load(tmp_path: Path) -> None:
    text = "s/p CABG (2019); IL-2-mediated toxicity: K+=3.1"
    nlp = blank_clinical()
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    assert _tokens(loaded, text) == _tokens(nlp, text)
    assert _tokens(loaded, text) != _tokens(spacy.blank("en"), text)
