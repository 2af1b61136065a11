"""``medcode evaluate ner|context|codiesp`` on small files written for these tests."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, shared_path

from medcode_nlp.evaluation.run import evaluate_context_file, evaluate_ner_file


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


def test_evaluate_cli_codiesp_predictions_out_is_the_list_map_was_computed_on(
        tmp_path, default_coder):
    from medcode_nlp.evaluation.datasets import gold_codes, read_codiesp
    from medcode_nlp.evaluation.metrics import mean_average_precision
    from medcode_nlp.evaluation.run import evaluate_codiesp_dir

    mini = FIXTURES / "codiesp_mini"
    report = evaluate_codiesp_dir(mini, "train", coder=default_coder, baseline=False,
                                  n_bootstrap=20, partial_codes=False,
                                  predictions_out=tmp_path / "run.tsv")
    written = tmp_path / "runD.tsv"
    assert str(written) in report["predictions_out"]
    ranked: dict[str, list[tuple[str, float]]] = {}
    for line in written.read_text().splitlines():
        doc_id, code = line.split("\t")
        ranked.setdefault(doc_id, []).append((code, -len(ranked.get(doc_id, []))))
    gold = gold_codes(read_codiesp(mini, "train"), "diagnosis")
    ours = report["systems"]["diagnosis"]["medcode_nlp"]
    # the scorer's MAP on the written file is the MAP the tool reports
    assert mean_average_precision(ranked, gold) == pytest.approx(ours["map"])
    below = sum(1 for d in ranked.values() for _ in d) - ours["counts"]["predicted_at_threshold"]
    assert below > 0  # codes under the threshold are written too: MAP ranks them
    assert "map" in " ".join(report["lists"]) and "threshold" in report["table"]


def test_evaluate_cli_codiesp_assertion_modes(dictionary_coder):
    from medcode_nlp.errors import InputError
    from medcode_nlp.evaluation.run import evaluate_codiesp_dir

    mini = FIXTURES / "codiesp_mini"
    with pytest.raises(InputError, match="assertions"):
        evaluate_codiesp_dir(mini, "train", coder=dictionary_coder, baseline=False,
                             assertions="sometimes")
    report = evaluate_codiesp_dir(mini, "train", coder=dictionary_coder, baseline=False,
                                  n_bootstrap=10, assertions="ignore")
    assert report["assertions"] == "ignore" and report["partial_codes"] is True
    assert "medcode_context" in dictionary_coder.nlp.pipe_names  # switched back on afterwards


def test_evaluate_cli_code_version_crosswalk_learnt_from_train_gold(kb):
    from medcode_nlp.evaluation.run import align_code_version, corpus_final_codes

    train_gold = {"a": {"R51", "I10"}, "b": {"W19XXX", "J18.9"}}
    final = corpus_final_codes(kb, train_gold, "icd10cm")
    assert final == {"R51", "W19XXX"}  # R51 is a category in FY2026, W19XXX not a code
    aligned = align_code_version(
        {"d": [("R51.9", 0.9), ("W19.XXXA", 0.5), ("R51.0", 0.4), ("I10", 0.3)]}, final)
    assert aligned["d"] == [("R51", 0.9), ("W19XXX", 0.5), ("I10", 0.3)]
