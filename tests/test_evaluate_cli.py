"""``medcode evaluate ner|context`` on small files written for these tests."""

from __future__ import annotations

from conftest import FIXTURES, shared_path

from medcode_nlp.evaluate_cli import evaluate_context_file, evaluate_ner_file


def test_evaluate_cli_ner_conll_fixture():
    report = evaluate_ner_file(FIXTURES / "ner_tiny.conll", "conll", "dictionary")
    assert "micro" in report and "micro" in report["table"]
    assert 0.0 <= report["micro"]["f"] <= 1.0


def test_evaluate_cli_ner_pubtator_shipped_model():
    report = evaluate_ner_file(FIXTURES / "ner_tiny.pubtator", "pubtator")
    assert report["model"].startswith("ner:")
    assert report["micro"]["support"] > 0


def test_evaluate_cli_context_on_testkit():
    path = shared_path("context-testkit", "dev.tsv")
    report = evaluate_context_file(path)
    assert "table" in report
