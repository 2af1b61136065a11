"""The scikit-learn estimators of the ranker and their safe loading.

``CodeRanker`` is a plain estimator over numeric feature rows (gradient-boosted trees, then
isotonic calibration): ``predict_proba`` is the probability that a candidate is the right code.
``DocumentCalibrator`` maps a combined code score to P(code in the gold set). Both are saved
with ``skops`` (no pickle); :func:`load_estimator` trusts only the types listed here.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from medcode_nlp.errors import Errors, InputError

#: Below this many rows, trees are evaluated on a single thread.
SINGLE_THREAD_ROWS = 20_000

@lru_cache(maxsize=1)
def _thread_controller() -> ThreadpoolController:
    return ThreadpoolController()


class CodeRanker(ClassifierMixin, BaseEstimator):
    """Probability that a candidate code is right for a mention, from pair features.

    Parameters are the boosted trees' (``max_iter``, ``learning_rate``, ``max_leaf_nodes``,
    ``l2_regularization``), the calibration ``method`` ("isotonic" or "sigmoid") with
    ``calibration_cv`` folds (0 = no calibration; ``ensemble=False`` keeps one set of trees fit
    on all rows instead of one per fold), and ``random_state``. ``max_features`` is the share
    of features each split may look at; ``n_bags`` > 1 averages that many such models fit with
    successive random states (their early-stopping splits and feature draws differ).
    """

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        l2_regularization: float = 0.0,
        method: str = "isotonic",
        calibration_cv: int = 3,
        random_state: int | None = 0,
        ensemble: bool = True,
        max_features: float = 1.0,
        n_bags: int = 1,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.l2_regularization = l2_regularization
        self.method = method
        self.calibration_cv = calibration_cv
        self.random_state = random_state
        self.ensemble = ensemble
        self.max_features = max_features
        self.n_bags = n_bags

    def _one_model(self, counts: np.ndarray, random_state: int | None) -> Any:
        trees = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            l2_regularization=self.l2_regularization,
            max_features=self.max_features,
            random_state=random_state,
        )
        if self.calibration_cv >= 2 and len(self.classes_) > 1 and counts.min() >= self.calibration_cv:
            return CalibratedClassifierCV(
                trees, method=self.method, cv=self.calibration_cv, ensemble=self.ensemble
            )
        return trees

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> CodeRanker:
        """Fit the trees (and the calibration) on pair rows ``X`` and labels ``y``."""
        X, y = validate_data(self, X, y)
        self.classes_ = unique_labels(y)
        counts = np.bincount(np.searchsorted(self.classes_, y))
        if self.n_bags > 1:
            base = 0 if self.random_state is None else self.random_state
            self.model_: Any = VotingClassifier(
                [(f"bag{i}", self._one_model(counts, base + i)) for i in range(self.n_bags)],
                voting="soft",
            )
        else:
            self.model_ = self._one_model(counts, self.random_state)
        self.model_.fit(X, y, sample_weight=sample_weight)
        first = self.model_.estimators_[0] if self.n_bags > 1 else self.model_
        fitted = getattr(first, "calibrated_classifiers_", None)
        trees_fitted = fitted[0].estimator if fitted else first
        self.n_iter_ = int(getattr(trees_fitted, "n_iter_", self.max_iter))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (column 1: the candidate is right)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return np.asarray(self.model_.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class per row."""
        check_is_fitted(self)
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])

    def score_pairs(self, X: np.ndarray) -> np.ndarray:
        """Probability of the positive class (or of the only class seen).

        Small inputs (one note's rows) are scored on one thread: OpenMP's per-tree thread
        start-up costs more than the work, and much more on a busy machine.
        """
        if len(X) < SINGLE_THREAD_ROWS:
            with _thread_controller().limit(limits=1, user_api="openmp"):
                proba = self.predict_proba(X)
        else:
            proba = self.predict_proba(X)
        if proba.shape[1] == 1:
            return np.full(len(X), float(self.classes_[0] == 1))
        return proba[:, list(self.classes_).index(1)] if 1 in self.classes_ else proba[:, -1]


class DocumentCalibrator:
    """Isotonic map from a combined code score to P(code in the gold set)."""

    def __init__(self, x: list[float] | None = None, y: list[float] | None = None) -> None:
        self.x = list(x or [0.0, 1.0])
        self.y = list(y or [0.0, 1.0])

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray) -> DocumentCalibrator:
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(scores, labels)
        return cls(list(map(float, iso.X_thresholds_)), list(map(float, iso.y_thresholds_)))

    def __call__(self, score: float) -> float:
        return float(np.interp(score, self.x, self.y))


#: Where skops files name the estimator class. Rankers saved before 0.3 name the module the
#: class lived in then (``medcode_nlp.ranker``): a one-release alias maps it here (issue 16).
TRUSTED_PREFIXES = ("medcode_nlp.ranking.estimators.", "sklearn.", "numpy.", "builtins.")
LEGACY_MODULES = {"medcode_nlp.ranker": "medcode_nlp.ranking.estimators"}


def load_estimator(path: Path) -> CodeRanker:
    """A skops file whose types all come from the trusted packages (checksums already checked)."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    legacy = tuple(f"{old}." for old in LEGACY_MODULES)
    unexpected = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES + legacy)]
    if unexpected:
        raise InputError(Errors.E012.format(path=path, detail=f"unexpected types {unexpected}"))
    for old, new in LEGACY_MODULES.items():
        if any(t.startswith(f"{old}.") for t in untrusted):
            sys.modules.setdefault(old, sys.modules[new])
    estimator: CodeRanker = sio.load(path, trusted=untrusted)
    return estimator
