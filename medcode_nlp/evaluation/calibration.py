"""Calibration metrics: reliability bins, ECE, Brier score, reliability diagram, bootstrap intervals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medcode_nlp.errors import Errors, InputError
from medcode_nlp.evaluation.datasets import Gold, Predictions
from medcode_nlp.evaluation.metrics import doc_stats, eval_ids


def _check_probs(probs: ArrayLike, labels: ArrayLike) -> tuple[NDArray[np.float64], NDArray[Any]]:
    p = np.asarray(probs, dtype=float).ravel()
    y = np.asarray(labels).ravel()
    if p.shape != y.shape:
        raise InputError(
            Errors.E014.format(
                name="labels", detail=f"{y.size} labels for {p.size} probabilities"
            )
        )
    if p.size and (np.isnan(p).any() or p.min() < 0.0 or p.max() > 1.0):
        raise InputError(
            Errors.E014.format(name="probs", detail="probabilities must lie in [0, 1]")
        )
    if y.size and not np.isin(y, (0, 1)).all():
        raise InputError(Errors.E014.format(name="labels", detail="labels must be 0/1 or bool"))
    return p, y.astype(float)


def bin_sums(probs: NDArray[np.float64], labels: NDArray[Any], n_bins: int) -> NDArray[np.float64]:
    """Per-bin (count, sum of probabilities, sum of labels), shape (3, n_bins)."""
    idx = np.minimum((probs * n_bins).astype(int), n_bins - 1)
    return np.stack(
        [
            np.bincount(idx, minlength=n_bins).astype(float),
            np.bincount(idx, weights=probs, minlength=n_bins),
            np.bincount(idx, weights=labels.astype(float), minlength=n_bins),
        ]
    )


def calibration_bins(
    probs: ArrayLike, labels: ArrayLike, n_bins: int = 10
) -> list[dict[str, float]]:
    """Equal-width bins over [0, 1] (1.0 falls in the last): bounds, count, mean
    probability and fraction of positives; empty bins are omitted."""
    if n_bins < 1:
        raise InputError(Errors.E014.format(name="n_bins", detail=f"must be >= 1, got {n_bins}"))
    p, y = _check_probs(probs, labels)
    count, sum_p, sum_y = bin_sums(p, y, n_bins)
    return [
        {
            "lower": b / n_bins,
            "upper": (b + 1) / n_bins,
            "count": int(count[b]),
            "mean_prob": float(sum_p[b] / count[b]),
            "frac_pos": float(sum_y[b] / count[b]),
        }
        for b in range(n_bins)
        if count[b]
    ]


def expected_calibration_error(probs: ArrayLike, labels: ArrayLike, n_bins: int = 10) -> float:
    """ECE: sum over equal-width bins of (bin share) * |mean probability - fraction positive|."""
    bins = calibration_bins(probs, labels, n_bins)
    total = sum(b["count"] for b in bins)
    if not total:
        return 0.0
    return float(sum(b["count"] / total * abs(b["mean_prob"] - b["frac_pos"]) for b in bins))


def brier_score(probs: ArrayLike, labels: ArrayLike) -> float:
    """Mean squared difference between probability and 0/1 outcome (0.0 when empty)."""
    p, y = _check_probs(probs, labels)
    return float(np.mean((p - y) ** 2)) if p.size else 0.0


def calibration_pairs(
    pred: Predictions, gold: Gold, doc_ids: Sequence[str] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Every ranked prediction of the evaluated documents as (score, is-gold) arrays."""
    ids = eval_ids(gold, doc_ids)
    stats = doc_stats(pred, gold, ids)
    scores = np.concatenate([stats[d].scores for d in ids] + [np.empty(0)])
    labels = np.concatenate([stats[d].labels for d in ids] + [np.empty(0, dtype=bool)])
    return scores, labels


def reliability_diagram(
    probs: ArrayLike,
    labels: ArrayLike,
    path: str | Path,
    n_bins: int = 10,
    title: str | None = None,
) -> Path:
    """Write a reliability diagram (PNG, matplotlib Agg) and return its path."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - matplotlib is a dev extra
        raise InputError(
            Errors.E014.format(name="reliability_diagram", detail="needs matplotlib installed")
        ) from err
    bins = calibration_bins(probs, labels, n_bins)
    ece = expected_calibration_error(probs, labels, n_bins)
    fig = Figure(figsize=(5.0, 5.6))
    FigureCanvasAgg(fig)
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = 1.0 / n_bins
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    ax.bar(
        [b["lower"] for b in bins], [b["frac_pos"] for b in bins], width=width, align="edge",
        edgecolor="black", color="tab:blue", alpha=0.75, label="fraction in gold",
    )
    ax.plot(
        [b["mean_prob"] for b in bins], [b["frac_pos"] for b in bins], "o", color="tab:red",
        markersize=4, label="bin mean confidence",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of codes in gold")
    ax.set_title(title or f"Reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    hist.bar(
        [b["lower"] for b in bins], [b["count"] for b in bins], width=width, align="edge",
        color="grey", edgecolor="black",
    )
    hist.set_yscale("log")
    hist.set_xlabel("confidence")
    hist.set_ylabel("codes")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=120)
    return out


# --------------------------------------------------------------------------- bootstrap


def bootstrap_ci(
    metric_fn: Callable[[Sequence[str]], float],
    docs: Sequence[str],
    n: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric_fn(doc_ids)``, resampling documents.

    Each of the ``n`` resamples draws ``len(docs)`` ids with replacement (so ``metric_fn`` must
    accept repeated ids); the same seed gives the same interval.
    """
    if n < 1 or not 0.0 < confidence < 1.0:
        raise InputError(
            Errors.E014.format(name="bootstrap", detail=f"n={n}, confidence={confidence}")
        )
    ids = list(docs)
    if not ids:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    values = np.array(
        [metric_fn([ids[i] for i in rng.integers(0, len(ids), len(ids))]) for _ in range(n)]
    )
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)
