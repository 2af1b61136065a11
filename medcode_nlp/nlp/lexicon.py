"""The project's clinical abbreviation and synonym lexicon.

``resources/lexicon.json`` maps short forms ("CHF", "s/p") and lay terms ("heart attack") to
long forms phrased like ICD-10-CM / ICD-10-PCS / HCPCS titles, so that a mention can be
searched under names the code sets actually use. Case-sensitive entries (ambiguous short
abbreviations such as "PE") only match their exact spelling.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from medcode_nlp.errors import Errors, InputError

LABELS = ("PROBLEM", "PROCEDURE", "DRUG")
KINDS = ("abbreviation", "synonym")
_FMT = "medcode lexicon JSON"
_REQUIRED = {"term": str, "expansions": list, "kind": str, "label": str, "case_sensitive": bool}


@dataclass(frozen=True)
class LexiconEntry:
    """One lexicon term and the long forms it stands for."""

    term: str
    expansions: tuple[str, ...]
    kind: str
    label: str
    case_sensitive: bool


def _norm(text: str) -> str:
    return " ".join(text.replace("’", "'").split())


_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_GLUED_AFTER = re.compile(r"-\w")

Key = tuple[str, ...]


def _tokens(text: str) -> list[tuple[int, int, str]]:
    """Word and punctuation tokens with offsets; hyphens are dropped (so "A-fib" = "A fib")."""
    text = text.replace("’", "'")
    return [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text) if m.group() != "-"]


def _fold(key: Key) -> Key:
    return tuple(token.casefold() for token in key)


class Lexicon:
    """Lookup and expansion over a list of :class:`LexiconEntry`."""

    def __init__(self, entries: Iterable[LexiconEntry]) -> None:
        self.entries: tuple[LexiconEntry, ...] = tuple(entries)
        self._exact: dict[Key, LexiconEntry] = {}
        self._folded: dict[Key, LexiconEntry] = {}
        plurals: list[tuple[Key, LexiconEntry]] = []
        for entry in self.entries:
            key = tuple(token for _, _, token in _tokens(entry.term))
            if entry.case_sensitive:
                self._exact.setdefault(key, entry)
            else:
                self._folded.setdefault(_fold(key), entry)
            if entry.kind == "abbreviation" and entry.term[-1].isupper():
                plurals.append(((*key[:-1], key[-1] + "s"), entry))
        for key, entry in plurals:  # "UTIs", "PVCs": after the real terms, never over them
            if entry.case_sensitive:
                self._exact.setdefault(key, entry)
            else:
                self._folded.setdefault(_fold(key), entry)
        self._longest = max((len(k) for k in (*self._exact, *self._folded)), default=0)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LexiconEntry]:
        return iter(self.entries)

    def _get(self, key: Key) -> LexiconEntry | None:
        return self._exact.get(key) or self._folded.get(_fold(key))

    def lookup(self, term: str) -> LexiconEntry | None:
        """The entry whose term is ``term`` (exact spelling first, then case-insensitive)."""
        return self._get(tuple(token for _, _, token in _tokens(term)))

    def matches(self, text: str) -> list[tuple[int, int, LexiconEntry]]:
        """Non-overlapping (start, end, entry) lexicon terms in ``text``, leftmost-longest.

        A term glued to a neighbouring word by a hyphen ("COVID" in "COVID-19") is skipped.
        """
        tokens = _tokens(text)
        found: list[tuple[int, int, LexiconEntry]] = []
        i = 0
        while i < len(tokens):
            for n in range(min(self._longest, len(tokens) - i), 0, -1):
                entry = self._get(tuple(token for _, _, token in tokens[i : i + n]))
                if entry is None:
                    continue
                start, end = tokens[i][0], tokens[i + n - 1][1]
                if text[max(start - 1, 0) : start] == "-" and text[start - 2 : start - 1].isalnum():
                    continue
                if _GLUED_AFTER.match(text, end):
                    continue
                found.append((start, end, entry))
                i += n
                break
            else:
                i += 1
        return found

    def expand(self, text: str) -> list[str]:
        """Variants of ``text`` with each lexicon term replaced by its long forms.

        The k-th variant uses every matched term's k-th expansion (or its last one when it
        has fewer), so ``"hx of HTN"`` gives ``["history of essential (primary)
        hypertension", "personal history of hypertension"]``. Returns ``[]`` when no term of
        the lexicon occurs in ``text``.
        """
        found = self.matches(text)
        if not found:
            return []
        width = max(len(entry.expansions) for _, _, entry in found)
        variants: list[str] = []
        seen = {text.strip().casefold()}
        for k in range(width):
            pieces: list[str] = []
            position = 0
            for start, end, entry in found:
                pieces.append(text[position:start])
                pieces.append(entry.expansions[min(k, len(entry.expansions) - 1)])
                position = end
            pieces.append(text[position:])
            variant = " ".join("".join(pieces).split())
            if variant.casefold() not in seen:
                seen.add(variant.casefold())
                variants.append(variant)
        return variants


def _invalid(path: object, detail: str) -> InputError:
    return InputError(Errors.E009.format(path=path, fmt=_FMT, detail=detail))


def parse_lexicon(data: Any, path: object = "<lexicon>") -> Lexicon:
    """Validate the decoded JSON of a lexicon file and build the :class:`Lexicon`."""
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise _invalid(path, "expected an object with an 'entries' list")
    if not isinstance(data.get("version"), str):
        raise _invalid(path, "expected a string 'version'")
    entries: list[LexiconEntry] = []
    seen: set[tuple[str, bool]] = set()
    for index, raw in enumerate(data["entries"]):
        where = f"entry {index}"
        if not isinstance(raw, dict):
            raise _invalid(path, f"{where} is not an object")
        for field, kind in _REQUIRED.items():
            if not isinstance(raw.get(field), kind):
                raise _invalid(path, f"{where} needs {field!r} of type {kind.__name__}")
        term = _norm(raw["term"])
        expansions = raw["expansions"]
        if not term:
            raise _invalid(path, f"{where} has an empty term")
        if not expansions or not all(isinstance(e, str) and e.strip() for e in expansions):
            raise _invalid(path, f"{where} ({term!r}) needs non-empty string expansions")
        if raw["kind"] not in KINDS:
            raise _invalid(path, f"{where} ({term!r}) has kind {raw['kind']!r}, not in {KINDS}")
        if raw["label"] not in LABELS:
            raise _invalid(path, f"{where} ({term!r}) has label {raw['label']!r}, not in {LABELS}")
        case_sensitive = raw["case_sensitive"]
        identity = (term if case_sensitive else term.casefold(), case_sensitive)
        if identity in seen:
            raise _invalid(path, f"{where} duplicates the term {term!r}")
        seen.add(identity)
        entries.append(
            LexiconEntry(
                term=term,
                expansions=tuple(_norm(e) for e in expansions),
                kind=raw["kind"],
                label=raw["label"],
                case_sensitive=case_sensitive,
            )
        )
    return Lexicon(entries)


@lru_cache(maxsize=1)
def _packaged() -> Lexicon:
    resource = files("medcode_nlp.resources").joinpath("lexicon.json")
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _invalid(resource, str(err)) from err
    return parse_lexicon(data, resource)


def load_lexicon(path: Path | None = None) -> Lexicon:
    """Load a lexicon file; without ``path``, the one packaged with medcode_nlp (cached)."""
    if path is None:
        return _packaged()
    path = Path(path)
    if not path.is_file():
        raise InputError(Errors.E010.format(path=path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _invalid(path, str(err)) from err
    return parse_lexicon(data, path)
