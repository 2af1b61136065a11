"""``medcode evaluate coding``: metrics on small coded-notes files written for these tests."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from conftest import read_jsonl, shared_path, write_jsonl

from medcode_nlp.errors import InputError
from medcode_nlp.evaluation.coding import (
    RankedCode,
    is_external_cause,
    method_report,
    read_coded_notes,
    score_note,
    system_metrics,
)


def _code(code, optional=False, rank=None, system="icd10cm"):
    row = {"system": system, "code": code, "optional": optional}
    if rank is not None:
        row["rank"] = rank
    return row


def _main(*codes, system="icd10cm"):
    """A ranked list whose every code is on the main list, in the given order."""
    return [RankedCode(system, c, 1.0 - i / 100, True) for i, c in enumerate(codes)]


@pytest.fixture
def gold(tmp_path):
    path = tmp_path / "gold.jsonl"
    write_jsonl(path, [
        {"id": "n1", "setting": "outpatient", "specialty": "Cardiology", "text": "note one",
         "codes": [_code("I21.19", rank=1), _code("I25.10"), _code("Z87.891", optional=True),
                   _code("W19.XXXA"), _code("93458", system="cpt")]},
        {"id": "n2", "setting": "inpatient", "specialty": "Discharge Summary",
         "text": "note two", "codes": [_code("J18.9", rank=1), _code("E11.65")]},
        {"id": "n3", "text": "note three", "codes": []},
    ])
    return read_coded_notes(path)


def test_reader_keeps_setting_type_optional_and_rank(gold):
    n1, n2, n3 = gold
    assert (n1.setting, n1.note_type, n3.setting, n3.note_type) == (
        "outpatient", "Cardiology", "outpatient", None)
    assert n2.setting == "inpatient"
    first = [c for c in n1.codes if c.rank == 1]
    assert [c.code for c in first] == ["I2119"]
    assert [c.code for c in n1.codes if c.optional] == ["Z87891"]


def test_optional_code_is_neither_hit_nor_false_positive(gold):
    n1 = gold[0]
    score = score_note(n1, _main("I21.19", "Z87.891", "R07.9"), "icd10cm")
    assert (score.tp, score.fp, score.fn) == (1, 1, 1)  # R07.9 wrong, I25.10 missed
    without = score_note(n1, _main("I21.19", "R07.9"), "icd10cm")
    assert (without.tp, without.fp, without.fn) == (score.tp, score.fp, score.fn)
    # an optional code the method leaves off is not a miss either
    assert score_note(n1, _main("I21.19", "I25.10"), "icd10cm").fn == 0


def test_external_cause_codes_ignored_on_both_sides(gold):
    n1 = gold[0]
    assert is_external_cause("icd10cm", "W19.XXXA") and not is_external_cause("cpt", "99213")
    score = score_note(n1, _main("I21.19", "I25.10", "V43.52XA", "W19.XXXA"), "icd10cm")
    assert (score.tp, score.fp, score.fn) == (2, 0, 0)


def test_first_listed_uses_the_first_main_code_over_notes_with_a_rank_one(gold):
    ranked = {"n1": _main("I25.10", "I21.19"), "n2": _main("J18.9"), "n3": _main("R69")}
    metrics = system_metrics(gold, ranked, "icd10cm")
    assert metrics["first_listed"] == 0.5  # n1 wrong order, n2 right, n3 has no rank-1 code
    assert metrics["counts"]["notes_with_first_listed"] == 2
    # a code below the main list is not "first-listed", however high its score
    below = {"n2": [RankedCode("icd10cm", "J18.9", 0.99, False), *_main("E11.65")]}
    assert system_metrics(gold[1:2], below, "icd10cm")["first_listed"] == 0.0


def test_category_f1_credits_the_right_3_character_category(gold):
    n2 = gold[1]
    score = score_note(n2, _main("J18.0", "E11.9"), "icd10cm")
    assert (score.tp, score.fp, score.fn) == (0, 2, 2)
    assert (score.cat_tp, score.cat_fp, score.cat_fn) == (2, 0, 0)
    metrics = system_metrics([n2], {"n2": _main("J18.0", "E11.9")}, "icd10cm")
    assert metrics["f1"] == 0.0 and metrics["category_f1"] == 1.0
    assert "category_f1" not in system_metrics(gold, {}, "cpt")  # no categories for CPT


def test_micro_counts_false_positives_on_notes_without_gold(gold):
    ranked = {"n1": _main("I21.19", "I25.10"), "n2": _main("J18.9", "E11.65"),
              "n3": _main("R69")}
    metrics = system_metrics(gold, ranked, "icd10cm")
    assert metrics["counts"] | {} == {**metrics["counts"], "tp": 4, "fp": 1, "fn": 0}
    assert metrics["precision"] == 0.8 and metrics["recall"] == 1.0


def test_map_uses_the_full_ranking_without_optional_codes(gold):
    n1 = gold[0]
    ranked = [RankedCode("icd10cm", "Z87.891", 0.9, True), RankedCode("icd10cm", "I21.19", 0.8,
                                                                       True),
              RankedCode("icd10cm", "R07.9", 0.5, False), RankedCode("icd10cm", "I25.10", 0.1,
                                                                    False)]
    score = score_note(n1, ranked, "icd10cm")
    assert score.ap == pytest.approx((1 / 1 + 2 / 3) / 2)  # optional Z87.891 taken out
    assert (score.tp, score.fn) == (1, 1)  # I25.10 is below the main list


def test_systems_are_scored_apart_and_breakdowns_per_setting_and_type(gold):
    ranked = {"n1": [*_main("I21.19"), *_main("93458", system="cpt")], "n2": _main("J18.9")}
    report = method_report(gold, ranked, n_bootstrap=50, seed=1)
    assert list(report["systems"]) == ["icd10cm", "cpt"]
    assert report["systems"]["cpt"]["f1"] == 1.0
    assert report["systems"]["icd10cm"]["ci"]["f1"][0] <= report["systems"]["icd10cm"]["f1"]
    assert set(report["by_setting"]) == {"inpatient", "outpatient"}
    assert report["by_setting"]["inpatient"]["icd10cm"]["recall"] == 0.5
    assert set(report["by_note_type"]) == {"Cardiology", "Discharge Summary"}
    assert report["systems"]["icd10cm"]["top_misses"] == {"E1165": 1, "I2510": 1}
    assert report["main_codes_in_systems_without_gold"] == {}
    with_pcs = method_report(gold, {"n1": _main("0TJB8ZZ", system="icd10pcs")}, n_bootstrap=0)
    assert with_pcs["main_codes_in_systems_without_gold"] == {"icd10pcs": 1}
    again = method_report(gold, ranked, n_bootstrap=50, seed=1)
    assert again["systems"]["icd10cm"]["ci"] == report["systems"]["icd10cm"]["ci"]


@pytest.mark.parametrize(("row", "message"), [
    ({"id": "a", "text": "x", "codes": [], "setting": "ambulatory"}, "setting"),
    ({"id": "a", "text": "x", "codes": [{"system": "icd10cm", "code": "A00", "rank": 0}]},
     "rank"),
    ({"id": "a", "text": "x", "codes": [{"system": "icd10cm"}]}, "code"),
    ({"id": "a", "text": "x", "codes": [{"code": "A00", "optional": "yes"}]}, "optional"),
    ({"id": "", "text": "x", "codes": []}, "id"),
])
def test_reader_names_the_bad_line(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, [{"id": "ok", "text": "x", "codes": []}, row])
    with pytest.raises(InputError, match=rf"E?line 2: .*{message}"):
        read_coded_notes(path)


class _FakeCoder:
    """Codes by keyword; records the setting of each call (no model needed)."""

    def __init__(self):
        self.calls = []
        self.options = SimpleNamespace(min_score=0.5)

    def versions(self):
        return {"model": "fake"}

    def pipe(self, texts, setting="outpatient", min_score=None, top_k=20):
        self.calls.append((setting, min_score))
        for text in texts:
            codes = [SimpleNamespace(system="icd10cm", code="J18.9", score=0.9)]
            if min_score == 0.0:
                codes.append(SimpleNamespace(system="icd10cm", code="R05.9", score=0.1))
            if "fever" in text:
                codes.insert(0, SimpleNamespace(system="icd10cm", code="R50.9", score=0.95))
            yield SimpleNamespace(codes=codes, consider=[
                SimpleNamespace(system="icd10cm", code="I10", score=0.3)])


def test_evaluate_coded_notes_runs_methods_side_by_side(tmp_path):
    from medcode_nlp.evaluation.coding_run import BASELINE, evaluate_coded_notes

    path = tmp_path / "gold.jsonl"
    rows = []
    for i in range(12):
        fever = i % 2 == 0
        rows.append({"id": f"n{i}", "setting": "inpatient" if i < 3 else "outpatient",
                     "text": "patient with fever and chills" if fever else "cough and pneumonia",
                     "codes": [_code("R50.9" if fever else "J18.9", rank=1)]})
    write_jsonl(path, rows)
    coder = _FakeCoder()
    out = tmp_path / "pred.jsonl"
    report = evaluate_coded_notes(path, coder=coder, compare_coder=_FakeCoder(), folds=3,
                                  n_bootstrap=20, predictions_out=out)
    assert set(report["methods"]) == {"medcode_nlp", "compare_ranker", BASELINE}
    assert set(coder.calls) == {("inpatient", 0.0), ("inpatient", None),
                                ("outpatient", 0.0), ("outpatient", None)}
    ours = report["methods"]["medcode_nlp"]["systems"]["icd10cm"]
    assert ours["counts"] | {} == {**ours["counts"], "tp": 12, "fp": 6, "fn": 0}
    assert ours["first_listed"] == 1.0
    assert report["methods"][BASELINE]["systems"]["icd10cm"]["f1"] == 1.0  # separable words
    assert "map" in report["lists"] and "tfidf_logreg_oof" in report["table"]
    written = read_jsonl(out)
    assert len(written) == 3 * 12
    first = next(r for r in written if r["method"] == "medcode_nlp" and r["id"] == "n1")
    assert [(c["code"], c["main"]) for c in first["codes"]] == [
        ("J18.9", True), ("I10", False), ("R05.9", False)]
    assert json.dumps(report["methods"])  # the report is JSON-serializable


def test_evaluate_coding_cli_alias_and_missing_target(tmp_path):
    from typer.testing import CliRunner

    from medcode_nlp.cli.app import app

    runner = CliRunner()
    for name in ("coding", "codiesp"):
        result = runner.invoke(app, ["evaluate", name, "--help"])
        assert result.exit_code == 0 and "GOLD.jsonl|CODIESP_DIR" in result.output
    missing = runner.invoke(app, ["evaluate", "coding", str(tmp_path / "none.jsonl")])
    assert missing.exit_code != 0 and "does not exist" in str(missing.exception)


def test_us_dev_gold_files_read():
    for folder in ("usnotes-mtsamples", "cmc2007-radiology"):
        notes = read_coded_notes(shared_path(folder, "dev.jsonl"))
        assert notes and all(n.codes or n.setting for n in notes)


def test_a_single_note_is_scored_without_the_out_of_fold_baseline(tmp_path):
    from medcode_nlp.evaluation.coding_run import evaluate_coded_notes

    path = tmp_path / "one.jsonl"
    write_jsonl(path, [{"id": "n1", "text": "fever", "codes": [_code("R50.9", rank=1)]}])
    report = evaluate_coded_notes(path, coder=_FakeCoder(), n_bootstrap=10)
    assert list(report["methods"]) == ["medcode_nlp"] and report["folds"] is None
    assert report["methods"]["medcode_nlp"]["systems"]["icd10cm"]["recall"] == 1.0
