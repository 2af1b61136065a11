"""Ranking and set metrics over documents: MAP, P@k, R@k, micro P/R/F1, threshold choice."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from medcode_nlp.errors import Errors, InputError
from medcode_nlp.evaluation.datasets import MAP_DEPTH, Gold, Predictions, Ranked, normalize_code

# --------------------------------------------------------------------------- ranking metrics


def rank_codes(predictions: Ranked, depth: int | None = None) -> list[tuple[str, float]]:
    """Normalized codes by descending score (stable), first occurrence of each code kept."""
    order = sorted(range(len(predictions)), key=lambda i: -float(predictions[i][1]))
    seen: set[str] = set()
    out: list[tuple[str, float]] = []
    for i in order:
        code = normalize_code(predictions[i][0])
        if code in seen:
            continue
        seen.add(code)
        out.append((code, float(predictions[i][1])))
        if depth is not None and len(out) >= depth:
            break
    return out


def average_precision(ranked: Sequence[str], gold: Collection[str]) -> float:
    """AP of one ranked code list: sum of precision at each gold hit / number of gold codes.

    Both sides are normalized; ``ranked`` must be already deduplicated and ordered.
    """
    gold_set = {normalize_code(c) for c in gold}
    if not gold_set:
        return 0.0
    hits = 0
    total = 0.0
    for rank, code in enumerate(ranked, start=1):
        if normalize_code(code) in gold_set:
            hits += 1
            total += hits / rank
    return total / len(gold_set)


def eval_ids(gold: Gold, doc_ids: Sequence[str] | None) -> Sequence[str]:
    """The documents evaluated: ``doc_ids``, or every document of ``gold``."""
    return list(gold) if doc_ids is None else doc_ids


def _norm_gold(gold: Gold, doc_id: str) -> set[str]:
    return {normalize_code(c) for c in gold.get(doc_id, ())}


class DocStats:
    """Per-document quantities that every metric is built from (computed once)."""

    __slots__ = ("ap", "has_pred", "n_gold", "hits_at", "scores", "labels")

    def __init__(self, ranked: Ranked, gold: set[str], depth: int) -> None:
        full = rank_codes(ranked)
        codes = [c for c, _ in full]
        self.n_gold = len(gold)
        self.has_pred = bool(codes)
        self.ap = average_precision(codes[:depth], gold) if gold else 0.0
        # hits_at[i] = number of gold codes among the first i ranked codes
        self.hits_at = np.concatenate([[0], np.cumsum([c in gold for c in codes])]).astype(int)
        self.scores = np.array([s for _, s in full], dtype=float)
        self.labels = np.array([c in gold for c in codes], dtype=bool)

    def hits(self, k: int) -> int:
        """Gold codes among the first ``k`` ranked codes."""
        return int(self.hits_at[min(k, len(self.hits_at) - 1)])


def doc_stats(
    pred: Predictions, gold: Gold, ids: Sequence[str], depth: int = MAP_DEPTH
) -> dict[str, DocStats]:
    """:class:`DocStats` of each document of ``ids`` (ranked to ``depth`` for MAP)."""
    return {d: DocStats(pred.get(d, ()), _norm_gold(gold, d), depth) for d in set(ids)}


def map_from_stats(
    stats: Mapping[str, DocStats], ids: Sequence[str], skip_unpredicted: bool
) -> float:
    """MAP over ``ids`` from precomputed :class:`DocStats` (see :func:`mean_average_precision`)."""
    values = [
        stats[d].ap for d in ids if stats[d].n_gold and (stats[d].has_pred or not skip_unpredicted)
    ]
    return float(np.mean(values)) if values else 0.0


def mean_average_precision(
    pred: Predictions,
    gold: Gold,
    doc_ids: Sequence[str] | None = None,
    *,
    depth: int = MAP_DEPTH,
    skip_unpredicted: bool = False,
) -> float:
    """MAP over the documents with gold codes (CodiEsp-D/P official metric, see module doc).

    ``skip_unpredicted=True`` leaves out documents without any prediction, as the official
    trectools-based script does; by default they count 0. Returns 0.0 if no document has gold.
    """
    ids = eval_ids(gold, doc_ids)
    return map_from_stats(doc_stats(pred, gold, ids, depth), ids, skip_unpredicted)


def at_k_from_stats(
    stats: Mapping[str, DocStats], ids: Sequence[str], k: int, recall: bool
) -> float:
    """Mean precision@k (or recall@k) over the documents of ``ids`` with gold codes."""
    values = [
        stats[d].hits(k) / (stats[d].n_gold if recall else k) for d in ids if stats[d].n_gold
    ]
    return float(np.mean(values)) if values else 0.0


def check_k(k: int) -> None:
    """Refuse a cut-off ``k`` that is not an integer >= 1 (numbered error)."""
    if not isinstance(k, int) or k < 1:
        raise InputError(Errors.E014.format(name="k", detail=f"need an integer >= 1, not {k!r}"))


def _mean_at_k(
    pred: Predictions, gold: Gold, k: int, doc_ids: Sequence[str] | None, recall: bool
) -> float:
    check_k(k)
    ids = eval_ids(gold, doc_ids)
    return at_k_from_stats(doc_stats(pred, gold, ids), ids, k, recall=recall)


def precision_at_k(
    pred: Predictions, gold: Gold, k: int, doc_ids: Sequence[str] | None = None
) -> float:
    """Mean over documents with gold codes of (gold codes in the top k) / k."""
    return _mean_at_k(pred, gold, k, doc_ids, recall=False)


def recall_at_k(
    pred: Predictions, gold: Gold, k: int, doc_ids: Sequence[str] | None = None
) -> float:
    """Mean over documents with gold codes of (gold codes in the top k) / (gold codes)."""
    return _mean_at_k(pred, gold, k, doc_ids, recall=True)


# --------------------------------------------------------------------------- threshold metrics


class PRF(NamedTuple):
    """Micro-averaged precision, recall, F1 and the counts behind them."""

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


def prf(tp: int, fp: int, fn: int) -> PRF:
    """Precision, recall and F1 from counts: the one P/R/F helper of every evaluator (coding,
    NER, context); each shapes the result for its own report."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return PRF(p, r, f, tp, fp, fn)


def prf_from_counts(tp: int, n_pred: int, n_gold: int) -> PRF:
    """:func:`prf` from true positives and the numbers of predicted and gold codes."""
    return prf(tp, n_pred - tp, n_gold - tp)


def counts_from_stats(
    stats: Mapping[str, DocStats], ids: Sequence[str], threshold: float
) -> tuple[int, int, int]:
    """(true positives, predicted, gold) over ``ids`` for codes scoring ``threshold`` or more."""
    tp = n_pred = n_gold = 0
    for d in ids:
        s = stats[d]
        kept = s.scores >= threshold
        tp += int(np.count_nonzero(s.labels & kept))
        n_pred += int(np.count_nonzero(kept))
        n_gold += s.n_gold
    return tp, n_pred, n_gold


def micro_prf(
    pred: Predictions, gold: Gold, threshold: float, doc_ids: Sequence[str] | None = None
) -> PRF:
    """Micro P/R/F1 of the codes with ``score >= threshold`` over the evaluated documents."""
    ids = eval_ids(gold, doc_ids)
    return prf_from_counts(*counts_from_stats(doc_stats(pred, gold, ids), ids, threshold))


def choose_threshold(
    pred: Predictions, gold: Gold, doc_ids: Sequence[str] | None = None
) -> float:
    """The score threshold (``score >= t`` is predicted) that maximizes micro F1.

    Candidates are the distinct predicted scores; on ties the highest threshold wins. When no
    threshold reaches F1 > 0, returns a value just above the highest score (predict nothing),
    or 1.0 if there are no predictions.
    """
    ids = eval_ids(gold, doc_ids)
    stats = doc_stats(pred, gold, ids)
    scores = np.concatenate([stats[d].scores for d in ids] + [np.empty(0)])
    labels = np.concatenate([stats[d].labels for d in ids] + [np.empty(0, dtype=bool)])
    n_gold = sum(stats[d].n_gold for d in ids)
    if scores.size == 0:
        return 1.0
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    tp = np.cumsum(labels)
    n_pred = np.arange(1, scores.size + 1)
    # only the last position of each run of equal scores is a reachable cut
    last = np.append(scores[1:] != scores[:-1], True)
    f1 = np.where(last, 2 * tp / (n_pred + n_gold), -1.0)
    best = int(np.argmax(f1))  # first maximum = highest threshold
    if f1[best] <= 0:
        return float(np.nextafter(scores[0], np.inf))
    return float(scores[best])


# --------------------------------------------------------------------------- calibration
