"""Scoring and decision helpers of the site model's training: micro F1 over required codes and
the choice of the global threshold, top-code floor and per-code thresholds from out-of-fold
probabilities (:mod:`medcode_nlp.training.site_model`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.evaluation.metrics import prf

if TYPE_CHECKING:
    from medcode_nlp.training.site_model import CodedNote

Code = tuple[str, str]  # (system, code as written in the gold)
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.10, 0.91, 0.025))
FLOORS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 1.01)  # 1.01: no top-code fallback
#: Codes with fewer gold notes than this keep the global threshold.
PER_CODE_MIN = 5


def _norm(code: Code) -> str:
    return f"{code[0]}|{code_key(code[1])}"


def micro_counts(predicted: Sequence[set[str]], notes: Sequence[CodedNote]) -> tuple[int, int, int]:
    """(hits, false positives, gold count): a kept optional code counts neither way."""
    tp = fp = n_gold = 0
    for keys, note in zip(predicted, notes, strict=True):
        required = {_norm(c) for c in note.required}
        optional = {_norm(c) for c in note.optional}
        tp += len(keys & required)
        fp += len(keys - required - optional)
        n_gold += len(required)
    return tp, fp, n_gold


def f1(tp: int, fp: int, n_gold: int) -> float:
    """Micro F1 from kept-code counts (:func:`medcode_nlp.evaluation.metrics.prf`)."""
    return prf(tp, fp, n_gold - tp).f1


def kept_indexes(probs: np.ndarray, threshold: float | np.ndarray, floor: float
                 ) -> list[np.ndarray]:
    """Per note, the label indexes kept: at or above threshold, else the top one >= floor."""
    return [np.flatnonzero(row) for row in _kept_matrix(probs, threshold, floor)]


def _kept_matrix(probs: np.ndarray, threshold: float | np.ndarray, floor: float) -> np.ndarray:
    """Kept codes (bool, notes x labels): at or above threshold, else the top one >= floor."""
    kept = probs >= threshold
    if probs.shape[1]:
        fallback = ~kept.any(axis=1) & (probs.max(axis=1) >= floor)
        kept[np.flatnonzero(fallback), probs.argmax(axis=1)[fallback]] = True
    return kept


class _Scorer:
    """Micro F1 of kept-code matrices against the notes' gold (vectorised)."""

    def __init__(self, labels: Sequence[str], notes: Sequence[CodedNote]) -> None:
        index = {label: j for j, label in enumerate(labels)}
        self.required = np.zeros((len(notes), len(labels)), dtype=bool)
        self.neutral = np.zeros_like(self.required)  # optional codes: neither hit nor miss
        self.n_gold = 0
        for i, note in enumerate(notes):
            self.n_gold += len(note.required)
            for code in note.required:
                if _norm(code) in index:
                    self.required[i, index[_norm(code)]] = True
            for code in note.optional:
                if _norm(code) in index:
                    self.neutral[i, index[_norm(code)]] = True

    def __call__(self, kept: np.ndarray) -> float:
        tp = int((kept & self.required).sum())
        fp = int((kept & ~self.required & ~self.neutral).sum())
        return f1(tp, fp, self.n_gold)


def choose_decision(probs: np.ndarray, labels: Sequence[str], notes: Sequence[CodedNote]
                    ) -> tuple[float, float, float]:
    """(threshold, floor, micro F1) maximising micro F1 over the label space's codes."""
    score_of = _Scorer(labels, notes)
    best = (0.5, 1.01, -1.0)
    for threshold in THRESHOLDS:
        for floor in FLOORS:
            if floor > threshold and floor <= 1.0:
                continue
            score = score_of(_kept_matrix(probs, threshold, floor))
            if score > best[2] + 1e-9:
                best = (threshold, floor, score)
    return best


def per_code_thresholds(probs: np.ndarray, labels: Sequence[str], notes: Sequence[CodedNote],
                        threshold: float, floor: float, min_positives: int = PER_CODE_MIN
                        ) -> tuple[list[float], float]:
    """Per-code thresholds (codes with ``min_positives`` gold notes; the others keep the global
    one), each moved in turn to the value that most raises micro F1: (thresholds, F1)."""
    score_of = _Scorer(labels, notes)
    thresholds = np.full(len(labels), threshold)
    best = score_of(_kept_matrix(probs, thresholds, floor))
    for j in np.flatnonzero(score_of.required.sum(axis=0) >= min_positives):
        for candidate in THRESHOLDS:
            trial = thresholds.copy()
            trial[j] = candidate
            score = score_of(_kept_matrix(probs, trial, floor))
            if score > best + 1e-9:
                best, thresholds = score, trial
    return [float(t) for t in thresholds], best
