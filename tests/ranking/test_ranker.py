from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from medcode_nlp.errors import IntegrityError
from medcode_nlp.ranking.estimators import CodeRanker, DocumentCalibrator
from medcode_nlp.ranking.mention_features import (
    FEATURE_NAMES,
    CodePrior,
    MentionContext,
    pair_features,
)
from medcode_nlp.ranking.model import RankerModel
from medcode_nlp.schema import Candidate


@pytest.mark.slow  # about 150 scikit-learn checks
@parametrize_with_checks(
    [CodeRanker(max_iter=10, calibration_cv=2),
     CodeRanker(max_iter=10, calibration_cv=2, max_features=0.5, n_bags=2),
     # the shipped document stage's shape: bagged, one calibrated tree set per bag
     CodeRanker(max_iter=10, calibration_cv=2, max_features=0.7, n_bags=2, ensemble=False)],
    expected_failed_checks=lambda _: {
        "check_sample_weight_equivalence_on_dense_data":
            "calibration folds split repeated rows differently from weighted rows",
    },
)
def test_ranker_is_a_scikit_learn_estimator(estimator, check):
    check(estimator)


def _candidates() -> list[Candidate]:
    return [
        Candidate("I50", "icd10cm", "Heart failure", 1.0, False, "Heart failure", "description"),
        Candidate("I50.9", "icd10cm", "Heart failure, unspecified", 0.9, True,
                  "Congestive heart failure", "inclusion"),
        Candidate("I11.0", "icd10cm", "Hypertensive heart disease with heart failure", 0.7, True,
                  "Hypertensive heart disease with heart failure", "description"),
    ]


def test_features_shape_and_values():
    mention = MentionContext(text="congestive heart failure", label="PROBLEM",
                             section="assessment", assertion="present",
                             context="Assessment: congestive heart failure, hypertensive "
                                     "heart disease.")
    rows = pair_features(mention, _candidates(), CodePrior.from_gold([{"I50.9"}, {"I10"}]))
    assert rows.shape == (3, len(FEATURE_NAMES))
    named = dict(zip(FEATURE_NAMES, rows[1], strict=True))
    assert named["billable"] == 1.0 and named["alias_inclusion"] == 1.0
    assert named["prior_known"] == 1.0 and named["label_fits_system"] == 1.0
    assert named["section_diagnosis"] == 1.0 and named["assertion_present"] == 1.0
    assert dict(zip(FEATURE_NAMES, rows[0], strict=True))["is_ancestor_of_candidate"] == 1.0
    # "hypertensive" from the sentence appears in the third title: context feature fires
    assert dict(zip(FEATURE_NAMES, rows[2], strict=True))["context_in_title"] > 0


def _tiny_model() -> RankerModel:
    rng = np.random.default_rng(0)
    X = rng.random((300, len(FEATURE_NAMES))).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(int)
    ranker = CodeRanker(max_iter=20, calibration_cv=2).fit(X, y)
    calibrator = DocumentCalibrator.fit(np.linspace(0, 1, 20), (np.linspace(0, 1, 20) > 0.4) * 1.0)
    return RankerModel(ranker, CodePrior(), calibrator, threshold=0.42, meta={"version": "t"})


def test_ranker_model_round_trip(tmp_path):
    model = _tiny_model()
    model.save(tmp_path / "ranker")
    loaded = RankerModel.load(tmp_path / "ranker")
    mention = MentionContext(text="heart failure")
    assert np.allclose(model.score(mention, _candidates()), loaded.score(mention, _candidates()))
    assert loaded.threshold == 0.42
    assert 0.0 <= loaded.combine([0.3, 0.6]) <= 1.0


def test_ranker_model_tampered_file_is_refused(tmp_path):
    _tiny_model().save(tmp_path / "ranker")
    target = tmp_path / "ranker" / "ranker.skops"
    target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match="ranker.skops"):
        RankerModel.load(tmp_path / "ranker")


def test_ranker_orders_search_results_with_the_term_ranker():
    from medcode_nlp.kb.search import search_terms
    from medcode_nlp.ranking.model import load_default_ranker

    ranker = load_default_ranker()
    assert ranker is not None and ranker.term_ranker is not None
    query = "iron deficiency anemia due to chronic blood loss"
    (plain,) = search_terms([query], ["icd10cm"], top_k=5)
    (ranked,) = search_terms([query], ["icd10cm"], top_k=5, ranker=ranker)
    assert ranked[0]["code"] == "D50.0"
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    assert all(0.0 <= r["score"] <= 1.0 and "similarity" in r for r in ranked)
    assert {r["code"] for r in ranked} != {r["code"] for r in plain} or ranked != plain
