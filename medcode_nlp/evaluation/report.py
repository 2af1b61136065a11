"""The evaluation report: metrics, calibration and intervals of one run, as JSON and a table."""

from __future__ import annotations

import logging
import math
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medcode_nlp.about import __version__
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.evaluation.calibration import (
    bin_sums,
    bootstrap_ci,
    brier_score,
    calibration_bins,
    expected_calibration_error,
)
from medcode_nlp.evaluation.datasets import (
    Gold,
    Predictions,
    check_kind,
    codiesp_code,
    short_repr,
)
from medcode_nlp.evaluation.metrics import (
    PRF,
    at_k_from_stats,
    check_k,
    counts_from_stats,
    doc_stats,
    eval_ids,
    map_from_stats,
    prf_from_counts,
    rank_codes,
)

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- report


def _versions() -> dict[str, str]:
    import sklearn

    return {
        "medcode_nlp": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


def evaluation_report(
    pred: Predictions,
    gold: Gold,
    threshold: float,
    seed: int = 0,
    *,
    n_bootstrap: int = 1000,
    n_bins: int = 10,
    doc_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """All document-level metrics, their bootstrap 95% intervals, calibration and counts.

    Keys: ``map``, ``map_predicted_docs_only`` (the official script's averaging),
    ``precision``/``recall``/``f1`` at ``threshold``, ``precision_at_5``, ``precision_at_10``,
    ``recall_at_10``, ``ece``/``brier`` over every ranked prediction, ``ece_above_threshold``,
    ``ci`` (metric -> [low, high]), ``reliability`` (bins), ``counts``, ``threshold``, ``seed``,
    ``n_bootstrap``, ``versions``. Calibration values are ``None`` when scores leave [0, 1].
    """
    ids = list(eval_ids(gold, doc_ids))
    stats = doc_stats(pred, gold, ids)
    # per-document counts at the threshold, so each bootstrap resample is a cheap sum
    per_doc = {d: counts_from_stats(stats, [d], threshold) for d in stats}

    def prf_of(sample: Sequence[str]) -> PRF:
        tp = n_pred = n_gold = 0
        for d in sample:
            a, b, c = per_doc[d]
            tp, n_pred, n_gold = tp + a, n_pred + b, n_gold + c
        return prf_from_counts(tp, n_pred, n_gold)

    metrics: dict[str, Callable[[Sequence[str]], float]] = {
        "map": lambda s: map_from_stats(stats, s, False),
        "precision": lambda s: prf_of(s).precision,
        "recall": lambda s: prf_of(s).recall,
        "f1": lambda s: prf_of(s).f1,
        "precision_at_5": lambda s: at_k_from_stats(stats, s, 5, recall=False),
        "precision_at_10": lambda s: at_k_from_stats(stats, s, 10, recall=False),
        "recall_at_10": lambda s: at_k_from_stats(stats, s, 10, recall=True),
    }
    report: dict[str, Any] = {name: fn(ids) for name, fn in metrics.items()}
    report["map_predicted_docs_only"] = map_from_stats(stats, ids, True)

    scores = np.concatenate([stats[d].scores for d in ids] + [np.empty(0)])
    labels = np.concatenate([stats[d].labels for d in ids] + [np.empty(0, dtype=bool)])
    calibrated = bool(scores.size) and scores.min() >= 0.0 and scores.max() <= 1.0
    if calibrated:
        report["ece"] = expected_calibration_error(scores, labels, n_bins)
        report["brier"] = brier_score(scores, labels)
        kept = scores >= threshold
        report["ece_above_threshold"] = expected_calibration_error(
            scores[kept], labels[kept], n_bins
        )
        report["reliability"] = calibration_bins(scores, labels, n_bins)
        # per-document sums, so that a bootstrap resample only adds arrays
        bins_all = {d: bin_sums(s.scores, s.labels, n_bins) for d, s in stats.items()}
        bins_kept = {
            d: bin_sums(s.scores[s.scores >= threshold], s.labels[s.scores >= threshold], n_bins)
            for d, s in stats.items()
        }
        sq_err = {
            d: (float(np.sum((s.scores - s.labels) ** 2)), s.scores.size) for d, s in stats.items()
        }

        def ece_from(sums: Mapping[str, NDArray[np.float64]]) -> Callable[[Sequence[str]], float]:
            def ece_of(sample: Sequence[str]) -> float:
                count, sum_p, sum_y = np.sum([sums[d] for d in sample], axis=0)
                total = count.sum()
                # sum over bins of count * |mean_p - frac_pos| = |sum_p - sum_y|
                return float(np.abs(sum_p - sum_y).sum() / total) if total else 0.0

            return ece_of

        def brier_of(sample: Sequence[str]) -> float:
            total = sum(sq_err[d][0] for d in sample)
            n = sum(sq_err[d][1] for d in sample)
            return total / n if n else 0.0

        metrics["ece"] = ece_from(bins_all)
        metrics["ece_above_threshold"] = ece_from(bins_kept)
        metrics["brier"] = brier_of
    else:
        report.update(ece=None, brier=None, ece_above_threshold=None, reliability=[])

    report["ci"] = {
        name: list(bootstrap_ci(fn, ids, n=n_bootstrap, seed=seed)) for name, fn in metrics.items()
    }
    tp, n_pred, n_gold = counts_from_stats(stats, ids, threshold)
    id_set = set(ids)
    report["counts"] = {
        "documents": len(id_set),
        "documents_with_gold": sum(1 for d in id_set if stats[d].n_gold),
        "documents_without_predictions": sum(
            1 for d in id_set if stats[d].n_gold and not stats[d].has_pred
        ),
        "predicted_documents_not_evaluated": len(set(pred) - id_set),
        "gold_codes": n_gold,
        "ranked_predictions": int(scores.size),
        "predicted_at_threshold": n_pred,
        "tp": tp,
        "fp": n_pred - tp,
        "fn": n_gold - tp,
    }
    if report["counts"]["predicted_documents_not_evaluated"]:
        logger.warning(
            "%d predicted documents are not in the evaluated set and were ignored",
            report["counts"]["predicted_documents_not_evaluated"],
        )
    report.update(
        threshold=float(threshold), seed=seed, n_bootstrap=n_bootstrap, versions=_versions()
    )
    return report


_TABLE_ROWS = (
    ("map", "MAP"),
    ("precision", "precision @ threshold"),
    ("recall", "recall @ threshold"),
    ("f1", "F1 @ threshold"),
    ("precision_at_5", "P@5"),
    ("precision_at_10", "P@10"),
    ("recall_at_10", "R@10"),
    ("ece", "ECE (all ranked codes)"),
    ("ece_above_threshold", "ECE (codes >= threshold)"),
    ("brier", "Brier"),
)


def format_report_table(report: Mapping[str, Any], title: str | None = None) -> str:
    """A fixed-width text table of an :func:`evaluation_report` for the terminal."""
    lines = [title] if title else []
    lines.append(f"{'metric':<26}{'value':>8}   95% CI")
    lines.append("-" * 52)
    for key, label in _TABLE_ROWS:
        value = report.get(key)
        if value is None:
            lines.append(f"{label:<26}{'n/a':>8}")
            continue
        ci = report.get("ci", {}).get(key)
        ci_text = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        lines.append(f"{label:<26}{value:>8.3f}   {ci_text}")
    c = report.get("counts", {})
    lines.append("-" * 52)
    lines.append(
        f"threshold {report.get('threshold', math.nan):.4f}; seed {report.get('seed')}; "
        f"{report.get('n_bootstrap')} bootstrap resamples of documents"
    )
    if c:
        lines.append(
            f"documents {c['documents']} ({c['documents_with_gold']} with gold codes, "
            f"{c['documents_without_predictions']} of them without predictions); "
            f"gold codes {c['gold_codes']}"
        )
        lines.append(
            f"predicted at threshold {c['predicted_at_threshold']} "
            f"(TP {c['tp']}, FP {c['fp']}, FN {c['fn']}); ranked {c['ranked_predictions']}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- submission files


def write_codiesp_predictions(
    pred: Predictions,
    path: str | Path,
    kind: str,
    *,
    threshold: float | None = None,
    top_k: int | None = None,
) -> int:
    """Write a CodiEsp-D/P submission: ``doc_id<TAB>code`` lines, each document's codes in rank
    order, documents sorted by id; codes lower case (diagnoses dotted, ``n44.8``).

    ``threshold`` keeps codes with ``score >= threshold``, ``top_k`` the first k per document.
    Returns the number of lines written.
    """
    check_kind(kind)
    if top_k is not None:
        check_k(top_k)
    rows: list[str] = []
    for doc_id in sorted(pred):
        if not doc_id or any(ch in doc_id for ch in "\t\r\n"):
            raise InputError(
                Errors.E014.format(name="doc_id", detail=f"{short_repr(doc_id)} cannot be written")
            )
        ranked = rank_codes(pred[doc_id], depth=top_k)
        rows.extend(
            f"{doc_id}\t{codiesp_code(code, kind)}"
            for code, score in ranked
            if code and (threshold is None or score >= threshold)
        )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return len(rows)
