"""ICD-10-CM Alphabetic Index rows as clinical-style mentions (ranker training, benchmarks).

An index entry is the path from its main term (level 0) to the row, e.g. main term "Anemia" >
"deficiency" > "iron". Parenthesised text and the markers NEC/NOS are removed; one-word comma
variants that repeat the term's stem ("Abdomen, abdominal") are dropped, other comma parts are
qualifiers put in front ("Abruption, placenta" -> "placenta abruption") or, when they start
with a connecting word, after the main term. Subterms go in front of the main term, deepest
first ("iron deficiency anemia"), until the first subterm that starts with a connecting word
(with, due to, in, following, ...): it and every deeper subterm follow the main term
("anemia in chronic kidney disease").
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Words that start a subterm placed after the main term ("... with bleeding", "... due to X").
CONNECTORS = (
    "associated with", "complicated by", "induced by", "resulting from", "resulting in",
    "secondary to", "due to", "with", "without", "in", "following", "during", "not", "of",
    "from", "after", "by", "complicating", "causing", "as", "involving", "affecting", "and",
    "or", "on", "at", "to", "for", "into", "within", "except", "when", "than", "under",
)
_CONNECTOR_RE = re.compile(r"^(?:" + "|".join(map(re.escape, CONNECTORS)) + r")\b", re.I)
_COMMA = re.compile(r",(?!\d)")  # not the comma of "1,2-dioxygenase"
_PARENS = re.compile(r"\([^()]*\)")
_MARKERS = re.compile(r"\b(?:NEC|NOS)\b")

# ------------------------------------------------------------------ index rows
@dataclass(frozen=True, slots=True)
class IndexRow:
    """One row of the Alphabetic Index CSV with the terms of its ancestors."""

    row_id: int
    level: int
    term: str
    see: str
    code: str
    path: tuple[str, ...]  # main term, subterm, ..., this row's term


def read_index_rows(path: Path) -> Iterator[IndexRow]:
    """Rows of ``ICD10CM_*_Index.csv`` (RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code).

    The hierarchy is given by ``Level`` and row order: a row's ancestors are the closest
    preceding rows of each lower level.
    """
    stack: list[str] = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for record in csv.DictReader(handle):
            level = int(record["Level"])
            if level > len(stack):  # a skipped level (not in the FY2025 file): keep going
                stack.extend([""] * (level - len(stack)))
            del stack[level:]
            stack.append(record["Term"].strip())
            yield IndexRow(
                row_id=int(record["RowID"]),
                level=level,
                term=record["Term"].strip(),
                see=(record.get("See") or "").strip(),
                code=(record.get("Code") or "").strip(),
                path=tuple(stack),
            )


def clean_term(text: str) -> str:
    """Term text without parenthesised modifiers and NEC/NOS markers, spaces collapsed."""
    previous = None
    while previous != text:  # nested parentheses
        previous, text = text, _PARENS.sub(" ", text)
    text = _MARKERS.sub(" ", text).replace("(", " ").replace(")", " ")
    return re.sub(r"\s+,", ",", " ".join(text.split())).strip(" ,;-")


def _term_parts(text: str) -> tuple[str, str]:
    """(words before the main term, words after it) of one cleaned term.

    Comma parts that only repeat the head's stem ("Abdomen, abdominal") are dropped; parts
    starting with a connecting word ("hypoglycemic, due to insulin") go after the main term;
    other parts are qualifiers put in front of the head ("back, lower" -> "lower back").
    """
    parts = [p.strip() for p in _COMMA.split(clean_term(text)) if p.strip()]
    if not parts:
        return "", ""
    head, rest = parts[0], parts[1:]
    stem = head.split()[0].lower()[:3]
    after = [p for p in rest if _CONNECTOR_RE.match(p)]
    qualifiers = [
        p for p in rest
        if not _CONNECTOR_RE.match(p) and not (" " not in p and p.lower()[:3] == stem)
    ]
    return " ".join([*reversed(qualifiers), head]), " ".join(after)


def _lower_initial(text: str) -> str:
    """Lower-case a capitalised first word ("Anemia" -> "anemia"), not eponyms or acronyms
    ("Darwin's", "Merzbacher-Pelizaeus", "HIV")."""
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first[0].isupper() and first[1:].islower() and "'" not in first:
        return text[0].lower() + text[1:]
    return text


def mention_text(path: Iterable[str]) -> str:
    """A clinical-style mention from an index path (main term, subterms...); see module doc."""
    terms = list(path)
    if not terms:
        return ""
    main, main_after = _term_parts(_lower_initial(clean_term(terms[0])))
    before: list[str] = []
    after: list[str] = [main_after]
    for term in terms[1:]:
        cleaned = clean_term(term)
        if not cleaned:
            continue
        if any(after) or _CONNECTOR_RE.match(cleaned):
            after.append(" ".join(p.strip() for p in _COMMA.split(cleaned)))
        else:
            pre, post = _term_parts(cleaned)
            before.append(pre)
            after.append(post)
    words = [*reversed(before), main, *after]
    return " ".join(" ".join(w for w in words if w).split())


def full_term(path: Iterable[str]) -> str:
    """The index entry as printed: terms joined with ", " ("Anemia, deficiency, iron")."""
    return ", ".join(t for t in path if t)


def alias_key(text: str) -> str:
    """Comparison form of a text: lower case, letters and digits only, single spaces."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


