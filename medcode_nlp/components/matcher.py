"""``medcode_dictionary_matcher``: mentions found by looking up code-set names and the lexicon.

A fast longest-match over word n-grams of the note (up to ``max_words`` words). Terms come
from short knowledge-base aliases (title heads, inclusion terms, short titles) and the
project's clinical lexicon. It is the mention finder of last resort and a recall aid next to
the trained NER: with ``mode="fill"`` it only adds mentions where the NER found none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import filter_spans

import medcode_nlp.extensions  # noqa: F401  (registers extensions)
from medcode_nlp.codesets.base import mention_label
from medcode_nlp.lexicon import load_lexicon

_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
_GENERIC = frozenset(
    """
    disease disorder disorders injury injuries other others condition conditions problem
    problems finding findings complication complications encounter procedure procedures
    examination symptoms symptom syndrome abnormal abnormality unspecified status history
    care use type stage acute chronic left right bilateral single multiple mild moderate
    severe failure infection mass lesion pain test screening person persons
    contact counseling observation follow-up therapy illness blood pressure sugar sleep study
    fall home diet weight exam examination normal negative positive patient history general
    """.split()
)
#: Label of the terms naming HCPCS Level II items and services (a longer such match replaces
#: the NER mentions inside it in ``fill`` mode: "oxygen" -> "oxygen concentrator").
ITEM = "\x01"
_ALIAS_KINDS_FOR_MATCHING = ("head", "inclusion", "description", "short", "index", "custom")


def words(text: str) -> list[tuple[int, int, str]]:
    """Word and punctuation pieces of ``text`` with their character offsets (lower case)."""
    return [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]


def term_key(text: str) -> str:
    """Normalised lookup key of a term."""
    return " ".join(piece for _, _, piece in words(text))


def is_useful_term(text: str, max_words: int) -> bool:
    """Whether an alias is a plausible way to write a mention in a note."""
    pieces = [p for _, _, p in words(text) if p.isalnum()]
    if not pieces or len(pieces) > max_words:
        return False
    if len(pieces) == 1 and (pieces[0] in _GENERIC or len(pieces[0]) < 5):
        return False
    return not all(p in _GENERIC for p in pieces)


def build_terms(
    alias_rows: Iterable[tuple[str, str, str]], max_words: int, lexicon_path: Path | None = None
) -> dict[str, str]:
    """Lookup key -> label from (alias text, system, code) rows and the lexicon.

    Terms of HCPCS items and services (not drugs) carry the label prefixed with ``ITEM``.
    """
    terms: dict[str, str] = {}
    items: set[str] = set()
    for text, system, code in alias_rows:
        if is_useful_term(text, max_words):
            label = mention_label(system, code)
            if system == "hcpcs" and label == "PROCEDURE":
                items.add(term_key(text))
            terms.setdefault(term_key(text), label)
    for entry in load_lexicon(lexicon_path).entries:
        key = term_key(entry.term)
        if entry.case_sensitive:
            terms[f"\x00{entry.term}"] = entry.label
        else:
            terms[key] = entry.label
    for key in items:
        terms[key] = ITEM + terms[key].lstrip(ITEM)
    return terms


@lru_cache(maxsize=4)
def _terms_for(kb_path: str | None, max_words: int, lexicon_path: str | None) -> dict[str, str]:
    from medcode_nlp.runtime import shared_kb

    kb = shared_kb(kb_path)

    def rows() -> Iterable[tuple[str, str, str]]:
        for system in kb.systems:
            for _, code, text, kind in kb.iter_aliases(system):
                if kind not in _ALIAS_KINDS_FOR_MATCHING:
                    continue
                yield text, system, code
                parts = text.split()
                if kind == "index" and len(parts) == 2:
                    # an Index alias reads subterm first ("bladder neurogenic" from Neurogenic,
                    # bladder); a note may say it either way round
                    yield f"{parts[1]} {parts[0]}", system, code

    return build_terms(rows(), max_words, Path(lexicon_path) if lexicon_path else None)


class DictionaryMatcher:
    """Longest-match dictionary lookup writing ``doc.ents``."""

    def __init__(
        self,
        nlp: Language,
        name: str,
        *,
        kb_path: str | None,
        max_words: int,
        mode: str,
        lexicon_path: str | None,
    ) -> None:
        self.name = name
        self.kb_path = kb_path
        self.max_words = max_words
        self.mode = mode
        self.lexicon_path = lexicon_path
        self._terms: dict[str, str] | None = None
        self._case_sensitive: dict[str, str] = {}
        self._first_words: set[str] = set()

    def initialize(self, get_examples: object = None, nlp: Language | None = None) -> None:
        """Load the terms (knowledge-base aliases + lexicon), once per process."""
        terms = _terms_for(self.kb_path, self.max_words, self.lexicon_path)
        self._case_sensitive = {k[1:]: v for k, v in terms.items() if k.startswith("\x00")}
        self._terms = {k: v for k, v in terms.items() if not k.startswith("\x00")}
        self._first_words = {key.split(" ", 1)[0] for key in self._terms} | {
            term_key(term).split(" ", 1)[0] for term in self._case_sensitive}

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """(start_char, end_char, label) of the longest non-overlapping matches (an item
        term's label starts with ``ITEM``). An HCPCS item term wins over the other matches it
        overlaps when it is at least as long ("home oxygen | concentrator" -> "oxygen
        concentrator")."""
        if self._terms is None:
            self.initialize()
        assert self._terms is not None
        pieces = words(text)
        found = self._greedy(text, pieces, items_only=False)
        items = [m for m in self._greedy(text, pieces, items_only=True) if m not in found]
        for start, end, label in items:
            overlapping = [m for m in found if m[0] < end and start < m[1]]
            if all(end - start >= m[1] - m[0] for m in overlapping):
                found = [m for m in found if m not in overlapping]
                found.append((start, end, label))
        return sorted(found)

    def _greedy(self, text: str, pieces: list[tuple[int, int, str]], items_only: bool
                ) -> list[tuple[int, int, str]]:
        """Longest matches, left to right (only item terms when ``items_only``)."""
        assert self._terms is not None
        found = []
        i = 0
        while i < len(pieces):
            if pieces[i][2] not in self._first_words:  # no term starts with this word
                i += 1
                continue
            match = None
            for n in range(min(self.max_words * 2, len(pieces) - i), 0, -1):
                start, end = pieces[i][0], pieces[i + n - 1][1]
                label = None if items_only else self._case_sensitive.get(text[start:end])
                if label is None:
                    label = self._terms.get(" ".join(p for _, _, p in pieces[i : i + n]))
                if items_only and label is not None and not label.startswith(ITEM):
                    label = None
                if label is not None and pieces[i][2].isalnum():
                    match = (start, end, label, n)
                    break
            if match:
                found.append(match[:3])
                i += match[3]
            else:
                i += 1
        return found

    def __call__(self, doc: Doc) -> Doc:
        spans = []
        items = set()
        for start, end, label in self.find(doc.text):
            span = doc.char_span(start, end, label=label.lstrip(ITEM), alignment_mode="expand")
            if span is not None:
                spans.append(span)
                if label.startswith(ITEM):
                    items.add((span.start, span.end))
        existing = list(doc.ents)
        if self.mode == "fill":
            # an item term covering whole NER mentions and more replaces them
            wider = [s for s in spans if (s.start, s.end) in items and any(
                s.start <= e.start and e.end <= s.end and e.end - e.start < len(s)
                for e in existing) and all(
                (s.start <= e.start and e.end <= s.end) or e.end <= s.start or e.start >= s.end
                for e in existing)]
            existing = [e for e in existing
                        if not any(s.start <= e.start and e.end <= s.end for s in wider)]
            taken = {i for ent in existing for i in range(ent.start, ent.end)}
            spans = [s for s in spans if not any(i in taken for i in range(s.start, s.end))]
        doc.ents = filter_spans(existing + spans) if self.mode == "fill" else filter_spans(spans)
        return doc


@Language.factory(
    "medcode_dictionary_matcher",
    assigns=["doc.ents"],
    default_config={"kb_path": None, "max_words": 6, "mode": "replace", "lexicon_path": None},
)
def make_dictionary_matcher(
    nlp: Language,
    name: str,
    kb_path: str | None,
    max_words: int,
    mode: str,
    lexicon_path: str | None,
) -> DictionaryMatcher:
    """Factory of the dictionary matcher (``mode``: ``replace`` or ``fill``)."""
    return DictionaryMatcher(
        nlp, name, kb_path=kb_path, max_words=max_words, mode=mode, lexicon_path=lexicon_path
    )

