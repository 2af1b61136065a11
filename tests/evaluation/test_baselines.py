"""The TF-IDF k-nearest-documents baseline."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, shared_path
from sklearn.exceptions import NotFittedError

from medcode_nlp.errors import InputError
from medcode_nlp.evaluation.baselines import TfidfKnnBaseline
from medcode_nlp.evaluation.datasets import (
    DIAGNOSIS,
    PROCEDURE,
    GoldDocument,
    gold_codes,
    read_codiesp,
)
from medcode_nlp.evaluation.metrics import mean_average_precision

TRAIN = [
    GoldDocument("t1", "acute appendicitis with fever", {DIAGNOSIS: {"A"}, PROCEDURE: {"P1"}}),
    GoldDocument("t2", "acute appendicitis with fever", {DIAGNOSIS: {"A", "B"}}),
    GoldDocument("t3", "fractured wrist after a fall", {DIAGNOSIS: {"C"}}),
]


def test_baselines_vote_weighted_by_similarity() -> None:
    model = TfidfKnnBaseline(k=3).fit(TRAIN)
    (ranked,) = model.predict(["acute appendicitis with fever"])
    # t1 and t2 are identical to the query (same similarity s), t3 shares no word (similarity 0,
    # not a voter): A = 2s / 2s = 1, B = s / 2s = 0.5
    assert ranked == [("A", pytest.approx(1.0)), ("B", pytest.approx(0.5))]


def test_baselines_k_limits_neighbours() -> None:
    model = TfidfKnnBaseline(k=1).fit(TRAIN)
    (ranked,) = model.predict(["wrist fall"])
    assert ranked == [("C", pytest.approx(1.0))]


def test_baselines_group_selects_codes() -> None:
    model = TfidfKnnBaseline(k=2, group=PROCEDURE).fit(TRAIN)
    (ranked,) = model.predict(["acute appendicitis with fever"])
    assert ranked == [("P1", pytest.approx(0.5))]
    both = TfidfKnnBaseline(k=2, group=None).fit(TRAIN)
    assert [c for c, _ in both.predict(["acute appendicitis with fever"])[0]] == ["A", "B", "P1"]


def test_baselines_unknown_words_give_nothing() -> None:
    model = TfidfKnnBaseline(k=3).fit(TRAIN)
    assert model.predict(["zzz qqq", ""]) == [[], []]


def test_baselines_errors() -> None:
    with pytest.raises(NotFittedError):
        TfidfKnnBaseline().predict(["text"])
    with pytest.raises(InputError):
        TfidfKnnBaseline().fit([])
    model = TfidfKnnBaseline(k=0).fit(TRAIN)
    with pytest.raises(InputError):
        model.predict(["acute"])
    with pytest.raises(InputError):
        TfidfKnnBaseline().fit(TRAIN).predict("a single string")  # type: ignore[arg-type]


def test_baselines_on_codiesp_mini() -> None:
    docs = read_codiesp(FIXTURES / "codiesp_mini", "train")
    model = TfidfKnnBaseline(k=1).fit(docs)
    pred = dict(zip([d.id for d in docs], model.predict([d.text for d in docs]), strict=True))
    # each training document is its own nearest neighbour
    assert mean_average_precision(pred, gold_codes(docs, DIAGNOSIS)) == pytest.approx(1.0)


def test_baselines_codiesp_shared_dev() -> None:
    root = shared_path("codiesp")
    train, dev = read_codiesp(root, "train"), read_codiesp(root, "dev")
    model = TfidfKnnBaseline(k=30).fit(train)
    gold = gold_codes(dev, DIAGNOSIS)
    pred = dict(zip(gold, model.predict([d.text for d in dev]), strict=True))
    # measured 0.180 (benchmarks/results/codiesp_baseline.json)
    assert mean_average_precision(pred, gold) == pytest.approx(0.180, abs=0.01)
    assert all(0.0 < s <= 1.0 for ranked in pred.values() for _, s in ranked)


def test_logreg_baseline_ranks_by_probability_and_handles_degenerate_labels() -> None:
    from medcode_nlp.evaluation.baselines import TfidfLogRegBaseline

    texts = ["acute cough and fever", "chest cough", "wrist fracture after fall",
             "fracture of the wrist"]
    model = TfidfLogRegBaseline().fit(texts, [{"R05"}, {"R05"}, {"S62"}, {"S62"}])
    (cough,), (wrist,) = model.predict(["cough"]), model.predict(["wrist fracture"])
    assert cough[0][0] == "R05" and wrist[0][0] == "S62"
    everywhere = TfidfLogRegBaseline().fit(texts, [{"Z00"}] * 4)
    assert everywhere.predict(["anything at all"]) == [[("Z00", 1.0)]]
    assert TfidfLogRegBaseline().fit(texts, [set()] * 4).predict(["cough"]) == [[]]
    with pytest.raises(InputError):
        TfidfLogRegBaseline().fit(texts, [{"R05"}])
    with pytest.raises(NotFittedError):
        TfidfLogRegBaseline().predict(["cough"])
