"""Sentence ranges for ConText scopes when the doc has no sentence boundaries.

A punctuation and line-break heuristic: a sentence ends at ``.``/``!``/``?`` followed by a
capital, at a blank line, or before a list bullet; a sentence cut at a query mark that opens
the next words ("stones, ? cholecystitis") is joined back.
"""

from __future__ import annotations

import re

from spacy.tokens import Doc

_SENT_END = {".", "!", "?"}
_BULLET = re.compile(r"^(?:[-*•·]|\d{1,2}[.)]|[a-z][.)])$", re.IGNORECASE)


def split_sentences(doc: Doc) -> list[tuple[int, int]]:
    """Sentence token ranges by punctuation and line breaks (for docs without boundaries).

    A sentence ends after ``.``, ``!`` or ``?`` when the next word does not start in lower
    case, at a blank line, and at a single line break unless the next line goes on in lower
    case (a wrapped line).
    """
    n = len(doc)
    if n == 0:
        return []
    texts = [t.text for t in doc]
    space = [t.is_space for t in doc]
    starts = [0]
    for i in range(n - 1):
        text = texts[i]
        j = i + 1
        while j < n and space[j] and "\n" not in texts[j]:
            j += 1
        k = j
        while k < n and space[k]:
            k += 1
        if k >= n:
            break
        following = texts[k]
        if text in _SENT_END:
            if "\n" in texts[j] or not following[:1].islower():
                starts.append(k)
        elif space[i] and "\n" in text:
            breaks = sum(texts[m].count("\n") for m in range(i, k))
            if breaks >= 2 or not following[:1].islower() or _BULLET.match(following):
                starts.append(k)
    starts = sorted(set(starts))
    return [(s, e) for s, e in zip(starts, starts[1:] + [n], strict=True) if e > s]


def join_query_marks(doc: Doc, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Rejoin a sentence cut at a query mark that opens the next words ("stones, ? cholecystitis"):
    a sentence ending in ``?`` whose next sentence goes on in lower case on the same line."""
    out: list[tuple[int, int]] = []
    for start, end in ranges:
        if out and doc[out[-1][1] - 1].text == "?" and doc[start].text[:1].islower() \
                and "\n" not in doc[out[-1][1] - 1].whitespace_:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out
