"""Reference baselines the code suggester is compared with in the benchmarks."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Collection, Sequence

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer

from medcode_nlp.errors import Errors, InputError
from medcode_nlp.evaluation.datasets import GoldDocument

logger = logging.getLogger(__name__)


class TfidfKnnBaseline:
    """Document-similarity baseline: the k most similar training documents vote their codes.

    Documents are TF-IDF vectors (word 1-2 grams, sublinear tf, L2-normalized); similarity is
    cosine. For a new document, with ``N`` its ``k`` nearest training documents of positive
    similarity, ``score(code) = sum(sim(n) for n in N if code in n) / sum(sim(n) for n in N)``.
    ``group`` picks the gold codes used (``"diagnosis"``, ``"procedure"``, a system name, or
    ``None`` for all). ``k`` is read at prediction time, so it can be changed after ``fit``.
    """

    def __init__(
        self,
        k: int = 10,
        group: str | None = "diagnosis",
        *,
        ngram_range: tuple[int, int] = (1, 2),
        sublinear_tf: bool = True,
        min_df: int = 1,
    ) -> None:
        self.k = k
        self.group = group
        self.ngram_range = ngram_range
        self.sublinear_tf = sublinear_tf
        self.min_df = min_df

    def fit(self, docs: Sequence[GoldDocument]) -> TfidfKnnBaseline:
        """Index the training documents and their (normalized) codes."""
        if not docs:
            raise InputError(Errors.E014.format(name="docs", detail="no training documents"))
        self.vectorizer_ = TfidfVectorizer(
            ngram_range=self.ngram_range, sublinear_tf=self.sublinear_tf, min_df=self.min_df
        )
        self.matrix_ = self.vectorizer_.fit_transform([d.text for d in docs])
        self.codes_: list[frozenset[str]] = [
            frozenset(d.all_codes() if self.group is None else d.codes.get(self.group, set()))
            for d in docs
        ]
        logger.info(
            "TfidfKnnBaseline: %d documents, %d features, %d distinct codes",
            len(docs), self.matrix_.shape[1], len(set().union(*self.codes_)),
        )
        return self

    def predict(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Ranked ``(code, score)`` lists, one per text (score descending, then code)."""
        if not hasattr(self, "matrix_"):
            raise NotFittedError("TfidfKnnBaseline is not fitted yet; call fit(docs) first.")
        if not isinstance(self.k, int) or self.k < 1:
            raise InputError(
                Errors.E014.format(name="k", detail=f"need an integer >= 1, not {self.k!r}")
            )
        if isinstance(texts, str):
            raise InputError(
                Errors.E014.format(name="texts", detail="expected a sequence of notes, got one str")
            )
        sims = (self.vectorizer_.transform(list(texts)) @ self.matrix_.T).toarray()
        k = min(self.k, sims.shape[1])
        results: list[list[tuple[str, float]]] = []
        for row in sims:
            top = np.argpartition(-row, k - 1)[:k] if k < row.size else np.arange(row.size)
            top = top[row[top] > 0]
            total = float(row[top].sum())
            votes: dict[str, float] = {}
            for j in top:
                for code in self.codes_[j]:
                    votes[code] = votes.get(code, 0.0) + float(row[j])
            # min(): summation order can push a unanimous vote a hair above 1.0
            scored = ((c, min(1.0, v / total)) for c, v in votes.items())
            results.append(sorted(scored, key=lambda x: (-x[1], x[0])))
        return results


class TfidfLogRegBaseline:
    """One-vs-rest logistic regression on TF-IDF word n-grams (the per-site reference model).

    Fitted on texts and their code sets (any hashable code names); ``predict`` gives every
    code seen in training ranked by its probability. Fixed settings, never tuned on the
    evaluation data: word 1-2 grams, sublinear tf, liblinear solver, ``C=10``.
    """

    def __init__(self, *, c: float = 10.0, ngram_range: tuple[int, int] = (1, 2),
                 seed: int = 0) -> None:
        self.c = c
        self.ngram_range = ngram_range
        self.seed = seed

    def fit(self, texts: Sequence[str], codes: Sequence[Collection[str]]
            ) -> TfidfLogRegBaseline:
        """Learn one classifier per code seen in ``codes`` (one code set per text)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.preprocessing import MultiLabelBinarizer

        if not texts or len(texts) != len(codes):
            raise InputError(Errors.E014.format(
                name="texts", detail=f"{len(texts)} texts for {len(codes)} code sets"))
        self.vectorizer_ = TfidfVectorizer(ngram_range=self.ngram_range, sublinear_tf=True)
        matrix = self.vectorizer_.fit_transform(list(texts))
        self.binarizer_ = MultiLabelBinarizer()
        labels = self.binarizer_.fit_transform([sorted(c) for c in codes])
        self.classes_: list[str] = [str(c) for c in self.binarizer_.classes_]
        # a code on every training text: the one-class fit cannot say so, the data can
        self.always_ = np.asarray(labels).all(axis=0) if self.classes_ else np.zeros(0, bool)
        self.model_: OneVsRestClassifier | None = None
        if self.classes_:
            self.model_ = OneVsRestClassifier(LogisticRegression(
                C=self.c, solver="liblinear", random_state=self.seed))
            with warnings.catch_warnings():  # a code present in every training text
                warnings.simplefilter("ignore", UserWarning)
                self.model_.fit(matrix, labels)
        return self

    def predict(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Ranked ``(code, probability)`` lists, one per text (probability descending)."""
        if not hasattr(self, "vectorizer_"):
            raise NotFittedError("TfidfLogRegBaseline is not fitted yet; call fit() first.")
        if self.model_ is None:
            return [[] for _ in texts]
        probabilities = np.asarray(self.model_.predict_proba(
            self.vectorizer_.transform(list(texts))), dtype=float)
        if len(self.classes_) == 1:  # one code is a binary problem: keep P(code)
            probabilities = probabilities.reshape(len(texts), -1)[:, -1:]
        probabilities[:, self.always_] = 1.0
        return [sorted(zip(self.classes_, map(float, row), strict=True),
                       key=lambda x: (-x[1], x[0])) for row in probabilities]
