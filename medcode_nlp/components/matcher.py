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
SYSTEM_LABELS = {"icd10cm": "PROBLEM", "icd10pcs": "PROCEDURE", "cpt": "PROCEDURE",
                 "hcpcs": "PROCEDURE", "custom": "PROBLEM"}
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
    alias_rows: Iterable[tuple[str, str]], max_words: int, lexicon_path: Path | None = None
) -> dict[str, str]:
    """Lookup key -> label from (alias text, system) pairs and the lexicon."""
    terms: dict[str, str] = {}
    for text, system in alias_rows:
        if is_useful_term(text, max_words):
            terms.setdefault(term_key(text), SYSTEM_LABELS.get(system, "PROBLEM"))
    for entry in load_lexicon(lexicon_path).entries:
        key = term_key(entry.term)
        if entry.case_sensitive:
            terms[f"\x00{entry.term}"] = entry.label
        else:
            terms[key] = entry.label
    return terms


@lru_cache(maxsize=4)
def _terms_for(kb_path: str | None, max_words: int, lexicon_path: str | None) -> dict[str, str]:
    from medcode_nlp.runtime import shared_kb

    kb = shared_kb(kb_path)
    rows = (
        (text, system)
        for system in kb.systems
        for _, _, text, kind in kb.iter_aliases(system)
        if kind in _ALIAS_KINDS_FOR_MATCHING
    )
    return build_terms(rows, max_words, Path(lexicon_path) if lexicon_path else None)


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
        """(start_char, end_char, label) of the longest non-overlapping matches."""
        if self._terms is None:
            self.initialize()
        assert self._terms is not None
        pieces = words(text)
        found = []
        i = 0
        while i < len(pieces):
            if pieces[i][2] not in self._first_words:  # no term starts with this word
                i += 1
                continue
            match = None
            for n in range(min(self.max_words * 2, len(pieces) - i), 0, -1):
                start, end = pieces[i][0], pieces[i + n - 1][1]
                original = text[start:end]
                label = self._case_sensitive.get(original)
                if label is None:
                    label = self._terms.get(" ".join(p for _, _, p in pieces[i : i + n]))
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
        for start, end, label in self.find(doc.text):
            span = doc.char_span(start, end, label=label, alignment_mode="expand")
            if span is not None:
                spans.append(span)
        existing = list(doc.ents)
        if self.mode == "fill":
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

