"""Entries of the Alphabetic Index tree and what a walk reaches: hits, words, nodes, term keys."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from medcode_nlp.codesets.index_words import (
    _BRACKETS,
    _COMMA,
    _STOP,
    _clean,
    arabic,
    stem,
    words,
)

if TYPE_CHECKING:
    pass



TABLES = ("index", "neoplasm", "drug")
#: Bounds of one walk: content words read from the mention and from the context, and
#: entries visited (a walk stops descending when its budget is spent).
MAX_MENTION_WORDS = 24
MAX_CONTEXT_WORDS = 48
VISIT_BUDGET = 20_000
NEOPLASM_COLUMNS = (
    "malignant primary", "malignant secondary", "in situ", "benign", "uncertain behavior",
    "unspecified behavior",
)
DRUG_COLUMNS = (
    "poisoning accidental", "poisoning intentional self-harm", "poisoning assault",
    "poisoning undetermined", "adverse effect", "underdosing",
)
#: CSV column names of the table codes, in the order of the column names above.
# ------------------------------------------------------------------------- hits
@dataclass(frozen=True)
class IndexHit:
    """One entry reached by a walk of the index, with what the walk used to reach it."""

    code: str  # code as given by the index (may be incomplete, e.g. "S52.5-" or a category)
    path: tuple[str, ...]  # main term then subterms walked
    depth: int  # number of subterm levels matched below the main term
    used: tuple[str, ...]  # content words of mention/context consumed by the path
    unused: tuple[str, ...]  # content words of the mention not consumed
    default: bool  # True when the code is the main term's own (no subterm matched)
    score: float  # ranking score (higher better)
    laterality: tuple[str, ...] = ()  # side words of the mention/context (left, right)
    table: str = "index"  # "index", "neoplasm" or "drug"
    column: str = ""  # table column the code comes from (neoplasm/drug tables)
    context_used: tuple[str, ...] = field(default=())  # the part of ``used`` from the context


@dataclass(frozen=True, slots=True)
class _Word:
    surface: str
    stem: str
    source: str  # "mention", "context" or "see"
    weight: float


# ------------------------------------------------------------------------ nodes
@dataclass(slots=True)
class _Node:
    table: int
    level: int
    term: str
    req: tuple[frozenset[str], ...]  # alternative sets of stems that select this entry
    opt: frozenset[str]  # qualifier stems (other comma parts)
    nemod: frozenset[str]  # nonessential-modifier stems
    negated: bool  # a "without ..." entry
    see: str
    see_also: str
    codes: tuple[str, ...]
    parent: int
    children: list[int] = field(default_factory=list)
    size: int = 1
    #: Every stem of ``req`` (the union of its alternatives): a bag without any of them
    #: cannot select this entry, so the walk skips it without trying each alternative.
    keys: frozenset[str] = frozenset()


def _term_keys(term: str) -> tuple[tuple[frozenset[str], ...], frozenset[str], bool]:
    """(alternative required stem sets, qualifier stems, negated) of an index term."""
    term = arabic(term)
    bracketed = " ".join(_BRACKETS.findall(term))  # "[ECG] [EKG]": optional synonyms
    parts = [p.strip() for p in _COMMA.split(_clean(_BRACKETS.sub(" ", term))) if p.strip()]
    if not parts:
        return (), frozenset(), False
    first_words = [w for w in words(parts[0]) if w not in _STOP]
    negated = bool(words(parts[0])[:1] == ["without"])
    first = frozenset(stem(w) for w in first_words)
    alternatives = [first]
    optional: set[str] = {stem(w) for w in words(bracketed) if w not in _STOP}
    for part in parts[1:]:
        part_words = [w for w in words(part) if w not in _STOP]
        if (
            len(part_words) == 1 and len(first_words) == 1
            and part_words[0][:3] == first_words[0][:3]
        ):
            alternatives.append(frozenset({stem(part_words[0])}))
        else:
            optional.update(stem(w) for w in part_words)
    if negated:
        alternatives = [a | {"without"} for a in alternatives]
    return tuple(a for a in alternatives if a), frozenset(optional - first), negated


def _nemod_stems(text: str) -> frozenset[str]:
    """Stems of the nonessential modifiers, except negative ones ("(without vomiting)")."""
    groups = re.findall(r"\(([^()]*)\)", text) or [text]
    kept = [g for g in groups if not g.strip().lower().startswith(("without", "no "))]
    return frozenset(stem(w) for g in kept for w in words(g) if w not in _STOP)
