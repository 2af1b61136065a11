"""Document-level code evaluation: dataset readers, ranking/threshold/calibration metrics.

Predictions are ``{doc_id: [(code, score), ...]}``; gold is ``{doc_id: {code, ...}}``. Codes are
compared after :func:`normalize_code` (upper case, no dots), so ``"i50.9"`` matches ``"I509"``.
A document's ranked list is its predictions sorted by descending score (ties keep the given
order), with repeated codes dropped after the first.

Which documents count:

- ranking metrics (MAP, P@k, R@k) average over the documents that have at least one gold code,
  as the CodiEsp evaluation does (its qrels only hold coded documents);
- micro P/R/F1 count every evaluated document, so codes predicted for a document without gold
  codes are false positives (as in the CodiEsp ``comp_f1_diag_proc.py`` script);
- the evaluated documents are ``doc_ids`` when given (repetitions allowed: that is how
  :func:`bootstrap_ci` resamples), else the keys of ``gold``. Predictions for other documents
  are ignored.

MAP follows the CodiEsp-D/P evaluation (trectools ``get_map``, depth 1000): the average
precision of a document is the sum, over gold codes found in the ranked list, of the precision
at their rank, divided by the document's number of gold codes. A coded document with no
prediction at all scores 0 here; the official script instead leaves such documents out of the
mean (``skip_unpredicted=True`` reproduces that). The official script also drops predicted codes
missing from its list of valid CodiEsp codes before ranking; this module does not.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medcode_nlp.about import __version__
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.kb.store import code_key

logger = logging.getLogger(__name__)

Ranked = Sequence[tuple[str, float]]
Predictions = Mapping[str, Ranked]
Gold = Mapping[str, Collection[str]]

DIAGNOSIS = "diagnosis"
PROCEDURE = "procedure"
#: CodiEsp kinds: file suffix of the gold TSV and the code system of the codes.
CODIESP_KINDS: dict[str, tuple[str, str]] = {
    DIAGNOSIS: ("D", "icd10cm"),
    PROCEDURE: ("P", "icd10pcs"),
}
#: Group of JSONL gold codes given as plain strings (no system).
UNSPECIFIED_SYSTEM = "unspecified"
#: Ranked-list depth used by the CodiEsp MAP (trectools default).
MAP_DEPTH = 1000


# --------------------------------------------------------------------------- codes and records


@dataclass(slots=True)
class GoldDocument:
    """One evaluation document: its text and its gold codes, grouped.

    ``codes`` maps a group to normalized codes: ``"diagnosis"``/``"procedure"`` for CodiEsp, the
    normalized code-system name (``"icd10cm"``, ...) or ``"unspecified"`` for JSONL gold.
    """

    id: str
    text: str
    codes: dict[str, set[str]] = field(default_factory=dict)

    def all_codes(self) -> set[str]:
        """Every gold code of the document, whatever its group."""
        out: set[str] = set()
        for codes in self.codes.values():
            out |= codes
        return out


def normalize_code(code: str) -> str:
    """Canonical comparison form of a code: stripped, upper case, without dots."""
    if not isinstance(code, str):
        raise InputError(
            Errors.E014.format(name="code", detail=f"expected str, got {type(code).__name__}")
        )
    return code_key(code)


def normalize_system(name: str) -> str:
    """Code-system name as a group key: ``"ICD-10-CM"`` -> ``"icd10cm"``."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def gold_codes(docs: Sequence[GoldDocument], group: str | None = None) -> dict[str, set[str]]:
    """``{doc_id: codes}`` for one group (``None``: all groups together)."""
    if group is None:
        return {d.id: d.all_codes() for d in docs}
    return {d.id: set(d.codes.get(group, set())) for d in docs}


def codiesp_code(code: str, kind: str) -> str:
    """A code as CodiEsp writes it: lower case; diagnoses with a dot after 3 characters."""
    _check_kind(kind)
    norm = normalize_code(code).lower()
    if kind == DIAGNOSIS and len(norm) > 3:
        return f"{norm[:3]}.{norm[3:]}"
    return norm


def _check_kind(kind: str) -> None:
    if kind not in CODIESP_KINDS:
        raise InputError(
            Errors.E011.format(value=kind, name="kind", allowed=", ".join(CODIESP_KINDS))
        )


# --------------------------------------------------------------------------- readers


def _fail(path: Path, fmt: str, line_no: int, detail: str) -> InputError:
    return InputError(Errors.E009.format(path=path, fmt=fmt, detail=f"line {line_no}: {detail}"))


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputError(Errors.E010.format(path=path))
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(Errors.E001.format(path=path, position=err.start)) from err


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_codiesp(root: str | Path, split: str) -> list[GoldDocument]:
    """Read a CodiEsp split: ``root/split/text_files_en/*.txt`` plus ``{split}D.tsv``/``P.tsv``.

    Every text file becomes a document (sorted by id) with ``"diagnosis"`` (ICD-10-CM) and
    ``"procedure"`` (ICD-10-PCS) code sets, empty when the document has no gold row. The TSVs
    have two tab-separated fields per line, ``doc_id`` and ``code``, no header.
    """
    split_dir = Path(root) / split
    text_dir = split_dir / "text_files_en"
    if not text_dir.is_dir():
        raise InputError(Errors.E010.format(path=text_dir))
    docs = {
        p.stem: GoldDocument(p.stem, _read_text(p), {k: set() for k in CODIESP_KINDS})
        for p in sorted(text_dir.glob("*.txt"))
    }
    if not docs:
        raise InputError(Errors.E007.format(path=text_dir, detail="no .txt files"))
    for kind, (suffix, _system) in CODIESP_KINDS.items():
        path = split_dir / f"{split}{suffix}.tsv"
        for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
            if not line.strip():
                continue
            fields = [f.strip() for f in line.split("\t")]
            if len(fields) != 2 or not fields[0] or not fields[1]:
                raise _fail(
                    path, "CodiEsp TSV", line_no,
                    f"expected 2 non-empty tab-separated fields (doc id, code), got {len(fields)}",
                )
            doc_id, code = fields
            if doc_id not in docs:
                raise _fail(
                    path, "CodiEsp TSV", line_no,
                    f"document {_short(doc_id)} has no file in {text_dir}",
                )
            docs[doc_id].codes[kind].add(normalize_code(code))
    result = list(docs.values())
    logger.info(
        "read CodiEsp %s: %d documents, %d diagnosis and %d procedure codes",
        split, len(result),
        sum(len(d.codes[DIAGNOSIS]) for d in result),
        sum(len(d.codes[PROCEDURE]) for d in result),
    )
    return result


def read_jsonl_gold(path: str | Path) -> list[GoldDocument]:
    """Read JSONL gold: one ``{"id", "text", "codes": [...]}`` object per line.

    A code is a string (grouped under ``"unspecified"``) or ``{"code": ..., "system": ...}``
    (grouped under the normalized system name; ``system`` is optional). Blank lines are skipped;
    other keys are ignored. Malformed lines raise :class:`InputError` naming the line.
    """
    p = Path(path)
    fmt = "JSONL gold"
    docs: list[GoldDocument] = []
    seen: set[str] = set()
    for line_no, line in enumerate(_read_text(p).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise _fail(p, fmt, line_no, f"invalid JSON ({err.msg} at column {err.colno})") from err
        if not isinstance(record, dict):
            raise _fail(p, fmt, line_no, f"expected an object, got {type(record).__name__}")
        for key in ("id", "text", "codes"):
            if key not in record:
                raise _fail(p, fmt, line_no, f"missing key {key!r}")
        doc_id = record["id"]
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise _fail(p, fmt, line_no, "'id' must be a non-empty string")
        if doc_id in seen:
            raise _fail(p, fmt, line_no, f"duplicate id {_short(doc_id)}")
        if not isinstance(record["text"], str):
            raise _fail(p, fmt, line_no, "'text' must be a string")
        if not isinstance(record["codes"], list):
            raise _fail(p, fmt, line_no, "'codes' must be a list")
        codes: dict[str, set[str]] = {}
        for i, item in enumerate(record["codes"]):
            system = UNSPECIFIED_SYSTEM
            if isinstance(item, dict):
                if "system" in item:
                    if not isinstance(item["system"], str) or not normalize_system(item["system"]):
                        raise _fail(p, fmt, line_no, f"codes[{i}]: 'system' must be a name")
                    system = normalize_system(item["system"])
                item = item.get("code")
            if not isinstance(item, str) or not normalize_code(item):
                raise _fail(
                    p, fmt, line_no,
                    f"codes[{i}] must be a non-empty string or an object with a 'code' string",
                )
            codes.setdefault(system, set()).add(normalize_code(item))
        seen.add(doc_id)
        docs.append(GoldDocument(doc_id, record["text"], codes))
    logger.info("read %s: %d documents", p, len(docs))
    return docs


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


def _eval_ids(gold: Gold, doc_ids: Sequence[str] | None) -> Sequence[str]:
    return list(gold) if doc_ids is None else doc_ids


def _norm_gold(gold: Gold, doc_id: str) -> set[str]:
    return {normalize_code(c) for c in gold.get(doc_id, ())}


class _DocStats:
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
        return int(self.hits_at[min(k, len(self.hits_at) - 1)])


def _stats(
    pred: Predictions, gold: Gold, ids: Sequence[str], depth: int = MAP_DEPTH
) -> dict[str, _DocStats]:
    return {d: _DocStats(pred.get(d, ()), _norm_gold(gold, d), depth) for d in set(ids)}


def _map_from(stats: Mapping[str, _DocStats], ids: Sequence[str], skip_unpredicted: bool) -> float:
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
    ids = _eval_ids(gold, doc_ids)
    return _map_from(_stats(pred, gold, ids, depth), ids, skip_unpredicted)


def _at_k_from(stats: Mapping[str, _DocStats], ids: Sequence[str], k: int, recall: bool) -> float:
    values = [
        stats[d].hits(k) / (stats[d].n_gold if recall else k) for d in ids if stats[d].n_gold
    ]
    return float(np.mean(values)) if values else 0.0


def _check_k(k: int) -> None:
    if not isinstance(k, int) or k < 1:
        raise InputError(Errors.E014.format(name="k", detail=f"need an integer >= 1, not {k!r}"))


def precision_at_k(
    pred: Predictions, gold: Gold, k: int, doc_ids: Sequence[str] | None = None
) -> float:
    """Mean over documents with gold codes of (gold codes in the top k) / k."""
    _check_k(k)
    ids = _eval_ids(gold, doc_ids)
    return _at_k_from(_stats(pred, gold, ids), ids, k, recall=False)


def recall_at_k(
    pred: Predictions, gold: Gold, k: int, doc_ids: Sequence[str] | None = None
) -> float:
    """Mean over documents with gold codes of (gold codes in the top k) / (gold codes)."""
    _check_k(k)
    ids = _eval_ids(gold, doc_ids)
    return _at_k_from(_stats(pred, gold, ids), ids, k, recall=True)


# --------------------------------------------------------------------------- threshold metrics


class PRF(NamedTuple):
    """Micro-averaged precision, recall, F1 and the counts behind them."""

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


def _prf(tp: int, n_pred: int, n_gold: int) -> PRF:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
    return PRF(p, r, f, tp, n_pred - tp, n_gold - tp)


def _counts_from(
    stats: Mapping[str, _DocStats], ids: Sequence[str], threshold: float
) -> tuple[int, int, int]:
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
    ids = _eval_ids(gold, doc_ids)
    return _prf(*_counts_from(_stats(pred, gold, ids), ids, threshold))


def choose_threshold(
    pred: Predictions, gold: Gold, doc_ids: Sequence[str] | None = None
) -> float:
    """The score threshold (``score >= t`` is predicted) that maximizes micro F1.

    Candidates are the distinct predicted scores; on ties the highest threshold wins. When no
    threshold reaches F1 > 0, returns a value just above the highest score (predict nothing),
    or 1.0 if there are no predictions.
    """
    ids = _eval_ids(gold, doc_ids)
    stats = _stats(pred, gold, ids)
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


def _bin_sums(probs: NDArray[np.float64], labels: NDArray[Any], n_bins: int) -> NDArray[np.float64]:
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
    count, sum_p, sum_y = _bin_sums(p, y, n_bins)
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
    ids = _eval_ids(gold, doc_ids)
    stats = _stats(pred, gold, ids)
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
    ids = list(_eval_ids(gold, doc_ids))
    stats = _stats(pred, gold, ids)
    # per-document counts at the threshold, so each bootstrap resample is a cheap sum
    per_doc = {d: _counts_from(stats, [d], threshold) for d in stats}

    def prf_of(sample: Sequence[str]) -> PRF:
        tp = n_pred = n_gold = 0
        for d in sample:
            a, b, c = per_doc[d]
            tp, n_pred, n_gold = tp + a, n_pred + b, n_gold + c
        return _prf(tp, n_pred, n_gold)

    metrics: dict[str, Callable[[Sequence[str]], float]] = {
        "map": lambda s: _map_from(stats, s, False),
        "precision": lambda s: prf_of(s).precision,
        "recall": lambda s: prf_of(s).recall,
        "f1": lambda s: prf_of(s).f1,
        "precision_at_5": lambda s: _at_k_from(stats, s, 5, recall=False),
        "precision_at_10": lambda s: _at_k_from(stats, s, 10, recall=False),
        "recall_at_10": lambda s: _at_k_from(stats, s, 10, recall=True),
    }
    report: dict[str, Any] = {name: fn(ids) for name, fn in metrics.items()}
    report["map_predicted_docs_only"] = _map_from(stats, ids, True)

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
        bins_all = {d: _bin_sums(s.scores, s.labels, n_bins) for d, s in stats.items()}
        bins_kept = {
            d: _bin_sums(s.scores[s.scores >= threshold], s.labels[s.scores >= threshold], n_bins)
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
    tp, n_pred, n_gold = _counts_from(stats, ids, threshold)
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
    _check_kind(kind)
    if top_k is not None:
        _check_k(top_k)
    rows: list[str] = []
    for doc_id in sorted(pred):
        if not doc_id or any(ch in doc_id for ch in "\t\r\n"):
            raise InputError(
                Errors.E014.format(name="doc_id", detail=f"{_short(doc_id)} cannot be written")
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
