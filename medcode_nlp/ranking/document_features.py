"""Document-level evidence per code, and its features for the second-stage ranker.

The mention ranker says how likely a candidate is right for one mention; the document scorer
says how likely a code is in the note's gold set, from everything the note offers about it:
the mentions that voted for it (their probabilities, similarities, ranks and assertions), the
whole-note classifier's probability, and the code-frequency prior. A ``CodeRanker`` fit on
these rows (out-of-fold on CodiEsp train, see ``training/train_ranker.py``) replaces the fixed
noisy-or + isotonic combination; it is calibrated, so its output is the confidence shown.

ICD-10-PCS *partial codes* (the first 4 characters: section, body system, root operation,
body part) are candidates too when asked for: CodiEsp, like many coders, codes a procedure
only that far when the note lacks approach, device or qualifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.ranking.mention_features import CodePrior

#: Length of an ICD-10-PCS partial code (section, body system, root operation, body part).
PCS_PARTIAL_LENGTH = 4

DOC_FEATURE_NAMES: list[str] = [
    "mentions", "max_probability", "noisy_or", "sum_probability", "max_similarity",
    "best_rank", "note_probability", "note_modelled", "prior_code", "prior_category",
    "system_icd10cm", "system_icd10pcs", "partial_code", "historical_mentions",
    "uncertain_mentions", "top_share", "note_mentions", "note_rank", "mention_rank",
    # the code's category (first 3 characters, same system) among the note's codes
    "category_noisy_or", "category_codes", "category_rank", "category_best_other",
    "category_note_max",
    # where and how the code was found
    "expanded_share", "first_position", "last_position", "evidence_spans", "min_mention_words",
    "code_length", "chapter",
    # codes the training notes coded together with the note's well-supported codes
    "cooccurrence_max", "cooccurrence_sum", "context_codes",
    # a frequent training code of a category the note supports, no evidence of its own
    "category_sibling",
]

#: The features of a compact second stage (no co-occurrence, no sibling candidates).
COMPACT_DOC_FEATURES: list[str] = DOC_FEATURE_NAMES[: DOC_FEATURE_NAMES.index("cooccurrence_max")]

#: Evidence (best mention or whole-note probability) a code needs to count as context for
#: the co-occurrence features.
CONTEXT_PROBABILITY = 0.3


def noisy_or(probabilities: Iterable[float]) -> float:
    """1 - prod(1 - p): the probability that at least one of independent votes is right."""
    remaining = 1.0
    for p in probabilities:
        remaining *= 1.0 - p
    return 1.0 - remaining


@dataclass(slots=True)
class CodeSignals:
    """What one note says about one code."""

    system: str
    code: str
    partial: bool = False
    probabilities: list[float] = field(default_factory=list)
    similarities: list[float] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)
    assertions: list[str] = field(default_factory=list)
    note_probability: float | None = None
    expanded: list[bool] = field(default_factory=list)  # per vote: a category made billable
    positions: list[float] = field(default_factory=list)  # evidence starts, 0 = note start
    mention_words: list[int] = field(default_factory=list)  # words of each evidence span
    sibling: bool = False  # proposed from training frequency within a supported category


def _ranks(values: Sequence[float], eligible: Sequence[bool]) -> list[float]:
    """Rank (0 = best) of each eligible value among eligible ones; 999 for the others."""
    order = sorted((i for i, ok in enumerate(eligible) if ok), key=lambda i: -values[i])
    ranks = [999.0] * len(values)
    for rank, i in enumerate(order):
        ranks[i] = float(rank)
    return ranks


def _category_features(signals: Sequence[CodeSignals], best: Sequence[float]) -> np.ndarray:
    """Per code: evidence for its category (noisy-or of its codes' best probabilities, number
    of codes, the code's rank among them, best other code, best whole-note probability)."""
    groups: dict[tuple[str, bool, str], list[int]] = {}
    for i, s in enumerate(signals):
        groups.setdefault((s.system, s.partial, code_key(s.code)[:3]), []).append(i)
    out = np.zeros((len(signals), 5), dtype=np.float32)
    for members in groups.values():
        values = [best[j] for j in members]
        noisy = 1.0 - float(np.prod([1.0 - v for v in values]))
        notes = [p for j in members if (p := signals[j].note_probability) is not None]
        for i in members:
            others = [best[j] for j in members if j != i]
            out[i] = [noisy, len(members), sum(v > best[i] for v in values),
                      max(others, default=0.0), max(notes, default=-1.0)]
    return out


def _cooccurrence_features(signals: Sequence[CodeSignals], prior: CodePrior,
                            strength: Sequence[float]) -> np.ndarray:
    """Per code: the best and summed ``P(code | context code)`` over the note's context codes
    (weighted by their evidence), and the number of context codes."""
    keys = [code_key(s.code) for s in signals]
    context = [(i, keys[i], w) for i, w in enumerate(strength) if w >= CONTEXT_PROBABILITY]
    out = np.zeros((len(signals), 3), dtype=np.float32)
    for i, key in enumerate(keys):
        values = [w * prior.conditional(key, other) for j, other, w in context
                  if j != i and other != key]
        out[i] = [max(values, default=0.0), sum(values), len(context)]
    return out


def document_features(signals: Sequence[CodeSignals], prior: CodePrior,
                      note_mentions: int, columns: int | None = None) -> np.ndarray:
    """One row of ``DOC_FEATURE_NAMES`` per code of the note (its first ``columns`` only: a
    model fit on fewer features; the co-occurrence features are then not worked out)."""
    rows = np.zeros((len(signals), len(DOC_FEATURE_NAMES)), dtype=np.float32)
    if not signals:
        return rows[:, :columns]
    groups = [(s.system, s.partial) for s in signals]
    best = [max(s.probabilities, default=0.0) for s in signals]
    note = [s.note_probability if s.note_probability is not None else -1.0 for s in signals]
    mention_rank = [999.0] * len(signals)
    note_rank = [999.0] * len(signals)
    for group in set(groups):
        members = [g == group for g in groups]
        voted = [m and bool(s.probabilities) for m, s in zip(members, signals, strict=True)]
        modelled = [m and s.note_probability is not None
                    for m, s in zip(members, signals, strict=True)]
        for i, r in enumerate(_ranks(best, voted)):
            mention_rank[i] = min(mention_rank[i], r)
        for i, r in enumerate(_ranks(note, modelled)):
            note_rank[i] = min(note_rank[i], r)
    category = _category_features(signals, best)
    cooccurrence = (np.zeros((len(signals), 3), dtype=np.float32)
                    if columns is not None and columns <= len(COMPACT_DOC_FEATURES)
                    else _cooccurrence_features(signals, prior, np.maximum(best, note).tolist()))
    for i, s in enumerate(signals):
        ps = s.probabilities
        key = code_key(s.code)
        prior_code, prior_category, _ = prior.values(s.code)
        rows[i] = [
            float(len(ps)),
            best[i],
            noisy_or(ps) if ps else 0.0,
            float(sum(ps)),
            max(s.similarities, default=0.0),
            float(min(s.ranks, default=99)),
            note[i],
            float(s.note_probability is not None),
            prior_code,
            prior_category,
            float(s.system == "icd10cm"),
            float(s.system == "icd10pcs"),
            float(s.partial),
            float(s.assertions.count("historical")),
            float(s.assertions.count("uncertain")),
            sum(r == 0 for r in s.ranks) / max(len(ps), 1),
            float(note_mentions),
            note_rank[i],
            mention_rank[i],
            *category[i],
            float(np.mean(s.expanded)) if s.expanded else -1.0,
            min(s.positions, default=-1.0),
            max(s.positions, default=-1.0),
            float(len(s.positions)),
            float(min(s.mention_words, default=0)),
            float(len(key)),
            float(ord(key[0])) if key else 0.0,
            *cooccurrence[i],
            float(s.sibling),
        ]
    return rows[:, :columns]


def partial_pcs_code(code: str) -> str | None:
    """The 4-character partial form of a full (7-character) ICD-10-PCS code."""
    key = code.strip().upper()
    return key[:PCS_PARTIAL_LENGTH] if len(key) == 7 else None


def partial_description(child_description: str) -> str:
    """A partial code's title from one of its full codes' (root operation and body part)."""
    head = child_description.split(",")[0].strip()
    return f"{head} (partial code: approach, device and qualifier not chosen)"


#: Scores each code of a note from its signals (and the note's mention count).
DocumentScorer = Callable[[list[CodeSignals], int], Sequence[float]]


@dataclass(frozen=True)
class DocumentScoring:
    """Everything the document stage asks of a ranker, as one object.

    ``combine`` turns a code's mention probabilities into its document confidence;
    ``note_scores`` are whole-note probabilities of codes (the note classifier); ``scorer``
    (the second stage) replaces ``combine`` by weighing all of a code's signals at once;
    ``category_codes`` gives a category's frequent training codes. The default is the plain
    noisy-or of a pipeline without a ranker.
    """

    combine: Callable[[list[float]], float] = noisy_or
    note_scores: dict[tuple[str, str], float] | None = None
    scorer: DocumentScorer | None = None
    category_codes: Callable[[str], list[str]] | None = None
