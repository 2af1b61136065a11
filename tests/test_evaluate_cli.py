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


def test_evaluate_cli_codiesp_and_jsonl_gold_give_the_same_report(tmp_path, dictionary_coder):
    import json

    from medcode_nlp.evaluate_cli import evaluate_codiesp_dir, evaluate_gold_jsonl
    from medcode_nlp.evaluation import read_codiesp

    mini = FIXTURES / "codiesp_mini"
    codiesp = evaluate_codiesp_dir(mini, "train", coder=dictionary_coder, baseline=False,
                                   n_bootstrap=20, partial_codes=False)
    gold = tmp_path / "gold.jsonl"
    with gold.open("w") as out:
        for doc in read_codiesp(mini, "train"):
            codes = [{"code": c, "system": "icd10cm"} for c in sorted(doc.codes["diagnosis"])]
            out.write(json.dumps({"id": doc.id, "text": doc.text, "codes": codes}) + "\n")
    predictions = tmp_path / "pred.jsonl"
    report = evaluate_gold_jsonl(gold, coder=dictionary_coder, predictions_out=predictions,
                                 n_bootstrap=20)
    ours = report["systems"]["icd10cm"]["medcode_nlp"]
    theirs = codiesp["systems"]["diagnosis"]["medcode_nlp"]
    assert ours["map"] == theirs["map"] and ours["f1"] == theirs["f1"]
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["mini-001", "mini-002", "mini-003"]
    assert all(c["score"] >= report["threshold"] for r in rows for c in r["codes"])
    assert "icd10cm" in report["table"]


def test_evaluate_cli_codiesp_assertion_modes(dictionary_coder):
    import pytest

    from medcode_nlp.errors import InputError
    from medcode_nlp.evaluate_cli import evaluate_codiesp_dir

    mini = FIXTURES / "codiesp_mini"
    with pytest.raises(InputError, match="assertions"):
        evaluate_codiesp_dir(mini, "train", coder=dictionary_coder, baseline=False,
                             assertions="sometimes")
    report = evaluate_codiesp_dir(mini, "train", coder=dictionary_coder, baseline=False,
                                  n_bootstrap=10, assertions="ignore")
    assert report["assertions"] == "ignore" and report["partial_codes"] is True
    assert "medcode_context" in dictionary_coder.nlp.pipe_names  # switched back on afterwards


def test_evaluate_cli_code_version_crosswalk_learnt_from_train_gold(kb):
    from medcode_nlp.evaluate_cli import align_code_version, corpus_final_codes

    train_gold = {"a": {"R51", "I10"}, "b": {"W19XXX", "J18.9"}}
    final = corpus_final_codes(kb, train_gold, "icd10cm")
    assert final == {"R51", "W19XXX"}  # R51 is a category in FY2026, W19XXX not a code
    aligned = align_code_version(
        {"d": [("R51.9", 0.9), ("W19.XXXA", 0.5), ("R51.0", 0.4), ("I10", 0.3)]}, final)
    assert aligned["d"] == [("R51", 0.9), ("W19XXX", 0.5), ("I10", 0.3)]
