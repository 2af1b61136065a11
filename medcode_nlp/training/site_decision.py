"""Scoring and decision helpers of the site model's training: micro F1 over required codes, the
choice of the global threshold, top-code floor and per-code thresholds from out-of-fold
probabilities, and what is left to the base coder (pass-through, union, deferral, fallback)
(:mod:`medcode_nlp.training.site_model`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.evaluation.metrics import prf
from medcode_nlp.schema import CodingResult

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


def union_codes(base: Sequence[set[str]], kept: list[set[str]], labels: Sequence[str],
                notes: Sequence[CodedNote]) -> list[str]:
    """Label codes whose base-coder decisions, added to ``kept`` (out-of-fold), raise micro
    F1 (each tried in turn, a tie leaves it out); ``kept`` is updated with them."""
    union: list[str] = []
    best = f1(*micro_counts(kept, notes))
    for label in labels:
        trial = [k | ({label} & b) for k, b in zip(kept, base, strict=True)]
        score = f1(*micro_counts(trial, notes))
        if score > best + 1e-9:
            best, kept[:] = score, trial
            union.append(label)
    return union


def _passthrough(results: Sequence[CodingResult], kept: Sequence[set[str]], labels: set[str],
                 notes: Sequence[CodedNote]) -> dict[str, bool]:
    """Per code system: do the base coder's codes outside the label space raise micro F1?"""
    decision: dict[str, bool] = {}
    systems = {c.system for r in results for c in r.codes}
    for system in sorted(systems):
        extra = [{f"{c.system}|{code_key(c.code)}" for c in r.codes if c.system == system}
                 - labels for r in results]
        with_extra = [k | e for k, e in zip(kept, extra, strict=True)]
        decision[system] = f1(*micro_counts(with_extra, notes)) > f1(*micro_counts(kept, notes))
    return decision


def _base_keys(result: CodingResult) -> list[str]:
    """The base coder's main-list codes as ``system|key``, best first."""
    ranked = sorted(result.codes, key=lambda c: -c.score)
    return list(dict.fromkeys(f"{c.system}|{code_key(c.code)}" for c in ranked))


def _code_passthrough(results: Sequence[CodingResult], kept: Sequence[set[str]],
                      labels: set[str], notes: Sequence[CodedNote],
                      systems: dict[str, bool]) -> tuple[dict[str, bool], list[set[str]]]:
    """Per extra code of the base coder (outside the label space): a departure from its code
    system's pass-through decision when the training notes' micro F1 rises with it (the base
    coder never saw these notes); returns the departures and the notes' final code sets."""
    extras = [set(_base_keys(r)) - labels for r in results]
    final = [k | {e for e in x if systems.get(e.split("|")[0], True)}
             for k, x in zip(kept, extras, strict=True)]
    best = f1(*micro_counts(final, notes))
    overrides: dict[str, bool] = {}
    for code in sorted(set().union(*extras)):
        on = systems.get(code.split("|")[0], True)
        trial = [(f - {code}) if on else (f | ({code} & x))
                 for f, x in zip(final, extras, strict=True)]
        score = f1(*micro_counts(trial, notes))
        if score > best + 1e-9:
            best, final, overrides[code] = score, trial, not on
    return overrides, final


def _fallback(results: Sequence[CodingResult], final: Sequence[set[str]],
              notes: Sequence[CodedNote]) -> bool:
    """Does the base coder's top code on the notes left with no code raise micro F1?"""
    trial = [f or set(_base_keys(r)[:1]) for f, r in zip(final, results, strict=True)]
    return f1(*micro_counts(trial, notes)) > f1(*micro_counts(final, notes)) + 1e-9


def _deferred(results: Sequence[CodingResult], kept: list[set[str]], labels: Sequence[str],
              notes: Sequence[CodedNote]) -> list[str]:
    """Label codes the base coder decides better than the site model (out-of-fold micro F1);
    ``kept`` is updated with the base coder's decisions for them."""
    base = [{f"{c.system}|{code_key(c.code)}" for c in r.codes} for r in results]
    deferred: list[str] = []
    best = f1(*micro_counts(kept, notes))
    for label in labels:
        trial = [(k - {label}) | ({label} & b) for k, b in zip(kept, base, strict=True)]
        score = f1(*micro_counts(trial, notes))
        if score >= best - 1e-9 and trial != kept:  # a tie goes to the base coder
            best, kept[:] = score, trial
            deferred.append(label)
    return deferred
