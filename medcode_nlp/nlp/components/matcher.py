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
from typing import Any

import srsly
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import filter_spans

import medcode_nlp.nlp.extensions  # noqa: F401  (registers extensions)
from medcode_nlp.codesets.base import mention_label
from medcode_nlp.nlp.components.serial import directory_from_bytes, directory_to_bytes
from medcode_nlp.nlp.lexicon import load_lexicon

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
TERMS_FILE = "terms.msgpack"
_ALIAS_KINDS_FOR_MATCHING = ("head", "inclusion", "description", "short", "index", "custom")


def words(text: str) -> list[tuple[int, int, str]]:
    """Word and punctuation pieces of ``text`` with their character offsets (lower case)."""
    return [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]


def singular(word: str) -> str:
    """The singular of a plural English noun (contusions -> contusion), else the word."""
    if len(word) < 5 or not word.endswith("s") or word.endswith(("ss", "us", "is", "ous")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    return word[:-1]


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


#: Modules whose code decides the terms (their source is part of the derived-cache key).
TERM_SOURCES = ("medcode_nlp.nlp.components.matcher", "medcode_nlp.codesets.base",
                "medcode_nlp.nlp.lexicon", "medcode_nlp.codesets.index_entries",
                "medcode_nlp.codesets.index_words", "medcode_nlp.codesets.icd10cm_index_tree")


@lru_cache(maxsize=4)
def _terms_for(kb_path: str | None, max_words: int, lexicon_path: str | None) -> dict[str, str]:
    """The terms of a knowledge base, from the derived cache when it has them (reading every
    alias takes seconds; the cached table a fraction of one)."""
    from importlib.resources import files

    from medcode_nlp.codesets.icd10cm_index_tree import DATA_FILE
    from medcode_nlp.kb import derived
    from medcode_nlp.kb.cache import shared_kb
    from medcode_nlp.kb.store import kb_identity

    kb = shared_kb(kb_path)
    lexicon = (Path(lexicon_path) if lexicon_path
               else Path(str(files("medcode_nlp.resources").joinpath("lexicon.json"))))
    key = [kb_identity(kb.path), str(max_words), derived.file_digest(lexicon),
           derived.file_digest(DATA_FILE), derived.source_digest(TERM_SOURCES)]
    terms: dict[str, str] = derived.cached(
        "matcher_terms", key, lambda: _build_terms_for(kb, max_words, lexicon_path))
    return terms


def _build_terms_for(kb: Any, max_words: int, lexicon_path: str | None) -> dict[str, str]:
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

    terms = build_terms(rows(), max_words, Path(lexicon_path) if lexicon_path else None)
    for term in index_main_terms(kb):
        terms.setdefault(term, "PROBLEM")
    for term in finding_terms():  # "abnormal EKG" wins over the NER's "EKG"
        if terms.get(term, "PROBLEM").lstrip(ITEM) == "PROBLEM":
            terms[term] = ITEM + "PROBLEM"
    return terms


#: Index main terms whose subterms a note writes after them ("abnormal EKG", "elevated PSA").
_FINDING_MAIN_TERMS = {"abnormal": ("abnormal",), "elevated": ("elevated", "high"),
                       "positive": ("positive",)}


def finding_terms() -> set[str]:
    """Lookup keys of findings the Index files as main term + subterm ("Abnormal,
    electrocardiogram [ECG] [EKG]" -> "abnormal electrocardiogram", "abnormal ekg")."""
    from medcode_nlp.nlp.index_linking import shipped_tree

    tree = shipped_tree()
    if tree is None:
        return set()
    found: set[str] = set()
    for node in tree.nodes:
        head = node.term.split(",")[0].strip().lower()
        if node.level or node.table or head not in _FINDING_MAIN_TERMS:
            continue
        for child in node.children:
            term = tree.nodes[child].term
            names = [re.sub(r"\(.*?\)|\[.*?\]", " ", term).split(",")[0],
                     *re.findall(r"\[([^\]]+)\]", term)]
            for name in names:
                for word in _FINDING_MAIN_TERMS[head]:
                    key = term_key(f"{word} {name}")
                    if 2 <= len(key.split()) <= 4 and "NEC" not in name:
                        found.add(key)
    return found


#: Endings of condition nouns ("tendinitis", "spondylosis", "lipoma") and the injury and
#: lesion heads a note writes bare ("lacerations", "torsion"): Index main terms with them are
#: mentions on their own; other main terms ("Chest", "Fluid", "Borderline") are not.
_CONDITION_ENDINGS = ("itis", "osis", "oma", "omas", "emia", "pathy", "algia", "ectasis",
                      "plasia", "trophy", "rrhea", "rrhage", "cele", "iasis", "megaly", "lithiasis")
_CONDITION_HEADS = frozenset("""laceration contusion abrasion avulsion torsion fracture
    dislocation sprain strain abscess ulcer hernia burn bite puncture cyst polyp stenosis
    obstruction effusion calculus tear infection cellulitis gangrene thrombosis embolism
    aneurysm fistula prolapse foreign body hematoma blister crush amputation""".split())


def index_main_terms(kb: object) -> set[str]:
    """Lookup keys of the Index's condition main terms ("laceration", "torsion", "foreign
    body", "choledocholithiasis"): a main term whose last word has a condition ending
    (:data:`_CONDITION_ENDINGS`), or is a lesion head (:data:`_CONDITION_HEADS`) opening a
    Tabular title outside chapters R, V-Z, so a note's bare "lacerations" reaches the Index
    walk."""
    from medcode_nlp.nlp.index_linking import shipped_tree

    tree = shipped_tree()
    if tree is None:
        return set()
    openings: set[str] = set()
    for code in kb.codes("icd10cm"):  # type: ignore[attr-defined]
        entry = kb.get("icd10cm", code)  # type: ignore[attr-defined]
        if code[0] in "RVWXYZ" or entry is None:
            continue
        pieces = term_key(entry.description).split()
        openings.update(" ".join(pieces[:n]) for n in (1, 2, 3))
    found = set()
    for node in tree.nodes:
        if node.level or node.table:
            continue
        key = term_key(re.sub(r"\bNEC\b", "", node.term.split(",")[0]))
        last = key.rsplit(" ", 1)[-1]
        if not is_useful_term(key, 6):
            continue
        if last.endswith(_CONDITION_ENDINGS) or (key in openings and (
                last in _CONDITION_HEADS or key in _CONDITION_HEADS)):
            found.add(key)
    return found


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
        self._set_terms(_terms_for(self.kb_path, self.max_words, self.lexicon_path))

    def _set_terms(self, terms: dict[str, str]) -> None:
        self._case_sensitive = {k[1:]: v for k, v in terms.items() if k.startswith("\x00")}
        self._terms = {k: v for k, v in terms.items() if not k.startswith("\x00")}
        self._first_words = {key.split(" ", 1)[0] for key in self._terms} | {
            term_key(term).split(" ", 1)[0] for term in self._case_sensitive}

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """(start_char, end_char, label) of the longest non-overlapping matches (an item
        term's label starts with ``ITEM``: HCPCS items, Index findings). An item term wins over the other matches it
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
            first = pieces[i][2]
            if first not in self._first_words and singular(first) not in self._first_words:
                i += 1  # no term starts with this word
                continue
            match = None
            for n in range(min(self.max_words * 2, len(pieces) - i), 0, -1):
                start, end = pieces[i][0], pieces[i + n - 1][1]
                label = None if items_only else self._case_sensitive.get(text[start:end])
                if label is None:
                    key = [p for _, _, p in pieces[i : i + n]]
                    label = self._terms.get(" ".join(key))
                    if label is None and singular(key[-1]) != key[-1]:  # "foot contusions"
                        label = self._terms.get(" ".join([*key[:-1], singular(key[-1])]))
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

    # Serialization: the terms (worked out from the knowledge base in seconds, read back in a
    # tenth of one) and a reference to the knowledge base they come from (medcode_nlp.kb.ref).
    def _all_terms(self) -> dict[str, str]:
        if self._terms is None:
            self.initialize()
        assert self._terms is not None
        return {**self._terms, **{"\x00" + k: v for k, v in self._case_sensitive.items()}}

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        from medcode_nlp.kb.ref import write_reference

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_reference(path, self.kb_path)
        if "terms" not in exclude:
            srsly.write_msgpack(path / TERMS_FILE, self._all_terms())

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> DictionaryMatcher:
        from medcode_nlp.kb.ref import read_reference

        path = Path(path)
        found, kb_path = read_reference(path, self.kb_path, self.name)
        if found:
            self.kb_path = kb_path
        if (path / TERMS_FILE).is_file() and "terms" not in exclude:
            self._set_terms(dict(srsly.read_msgpack(path / TERMS_FILE)))
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return directory_to_bytes(lambda path: self.to_disk(path, exclude=exclude))

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> DictionaryMatcher:
        directory_from_bytes(data, lambda path: self.from_disk(path, exclude=exclude))
        return self


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

