"""``medcode_sections``: find the section headers of a clinical note.

Headers are recognised from the project's JSON rules (``resources/sections.json``):

* at the start of a line, in any case, followed by a colon (``PMH: HTN``, ``Allergies: none``);
* alone on a line (``PAST MEDICAL HISTORY`` / ``Assessment``), when it starts with a capital;
* numbered (``1. Assessment:``, ``II) PLAN``) and with a short qualifier (``DIAGNOSIS(ES):``,
  ``HISTORY OF PRESENT ILLNESS/HOSPITAL COURSE:``, ``BRIEF HOSPITAL COURSE:``);
* optionally inside a line, starting with a capital and followed by a colon, after two
  spaces or a sentence end (notes whose line breaks were flattened to spaces).

A section runs from its header to the next header. Text before the first header has no
section. ``doc._.sections`` gets ``(start_char, end_char, section_type, header_text)`` tuples
(``header_text`` as written in the note, without numbering or colon)
and every span of ``doc.ents`` and ``doc.spans`` gets ``span._.section``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import srsly
from spacy.language import Language
from spacy.tokens import Doc, Span

import medcode_nlp.nlp.extensions  # noqa: F401  (registers extensions)
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.resources import read_json

RULES_FILE = "sections.json"
SectionTuple = tuple[int, int, str, str]


@dataclass(frozen=True)
class SectionRules:
    """Section types, their header wordings and their default assertion hints."""

    headers: dict[str, str]  # normalised header wording -> section type
    colon_required: frozenset[str]  # wordings only recognised when followed by a colon
    hints: dict[str, str | None]  # section type -> assertion hint
    modifiers: tuple[str, ...]  # words that may precede a header ("brief", "interval", ...)

    @property
    def types(self) -> list[str]:
        """Section types, in file order."""
        return list(self.hints)


def normalise_header(text: str) -> str:
    """Lower-case a header wording and collapse its white space."""
    return " ".join(text.lower().split())


def parse_section_rules(data: Any, source: str = RULES_FILE) -> SectionRules:
    """Validate the JSON structure of a sections rule file."""

    def bad(detail: str) -> InputError:
        return InputError(Errors.E009.format(path=source, fmt="sections rules JSON", detail=detail))

    if not isinstance(data, dict) or not isinstance(data.get("sections"), list):
        raise bad("expected an object with a 'sections' list")
    headers: dict[str, str] = {}
    colon: set[str] = set()
    hints: dict[str, str | None] = {}
    for i, entry in enumerate(data["sections"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise bad(f"section {i} has no 'type'")
        stype = entry["type"]
        hint = entry.get("assertion")
        if hint is not None and hint not in medcode_nlp.nlp.extensions.ASSERTIONS:
            raise bad(f"section {stype!r} has unknown assertion {hint!r}")
        hints[stype] = hint
        wordings = entry.get("headers")
        if not isinstance(wordings, list) or not all(isinstance(w, str) for w in wordings):
            raise bad(f"section {stype!r} needs a 'headers' list of strings")
        for wording in wordings:
            key = normalise_header(wording)
            if key.endswith(":"):
                key = key[:-1].rstrip()
                colon.add(key)
            if key:
                headers.setdefault(key, stype)
    modifiers = data.get("modifiers", [])
    if not isinstance(modifiers, list) or not all(isinstance(m, str) for m in modifiers):
        raise bad("'modifiers' must be a list of strings")
    return SectionRules(
        headers, frozenset(colon), hints, tuple(normalise_header(m) for m in modifiers)
    )


def load_section_rules(path: str | Path | None = None) -> SectionRules:
    """Rules from ``path``, or the packaged ``resources/sections.json``."""
    return parse_section_rules(read_json(path, RULES_FILE), str(path or RULES_FILE))


def phrase_trie_regex(
    phrases: Iterable[str], space: str = r"\s+", word_bounds: bool = False
) -> str:
    """One regex matching any of ``phrases`` (lower case), longest first, as a character trie.

    A trie keeps Python's regex engine from trying hundreds of alternatives at every position.
    A space in a phrase matches ``space``. With ``word_bounds``, a phrase that starts (ends)
    with a word character only matches at a word start (end).
    """
    if not word_bounds:
        return _trie_to_regex(_build_trie(phrases), space, ends=False)
    words = [p for p in phrases if re.match(r"\w", p)]
    others = [p for p in phrases if not re.match(r"\w", p)]
    parts = []
    if words:
        parts.append(r"(?<!\w)" + _trie_to_regex(_build_trie(words), space, ends=True))
    if others:
        parts.append(_trie_to_regex(_build_trie(others), space, ends=True))
    return "|".join(f"(?:{part})" for part in parts) if parts else r"(?!x)x"


_END = ""  # trie key marking the end of a phrase


def _build_trie(phrases: Iterable[str]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for phrase in phrases:
        words = phrase.lower().split()
        if not words:
            continue
        node = root
        for ch in " ".join(words):
            node = node.setdefault(ch, {})
        node[_END] = True
    return root


def _trie_to_regex(node: dict[str, Any], space: str, ends: bool, prev: str = "") -> str:
    alts = []
    for ch in sorted(k for k in node if k != _END):
        piece = space if ch == " " else re.escape(ch)
        alts.append(piece + _trie_to_regex(node[ch], space, ends, ch))
    if _END in node:
        alts.append(r"(?!\w)" if ends and re.match(r"\w", prev) else "")
    if len(alts) == 1:
        return alts[0]
    return "(?:" + "|".join(alts) + ")"


_NUMBER = r"(?:(?:\(?\d{1,2}[.)]|\(?[ivx]{1,4}[.)]|\(?[a-h][.)])[ \t]*)?"
_QUALIFIER = r"(?:[ \t]*\((?:s|es|[^)\n]{1,30})\))?"
_COMBINED = r"(?:[ \t]*(?:/|&|\+|\band\b)[ \t]*[^\n:]{1,40}?)?"


class SectionDetector:
    """Regex header finder built once from :class:`SectionRules`."""

    def __init__(self, rules: SectionRules, *, inline_headers: bool = True) -> None:
        self.rules = rules
        self.inline_headers = inline_headers
        mods = phrase_trie_regex(rules.modifiers, space=r"[ \t]+")
        mod_group = rf"(?:(?:{mods})[ \t]+)??" if mods else ""
        wordings = phrase_trie_regex(rules.headers, space=r"[ \t]+")
        core = rf"(?P<header>{mod_group}(?P<wording>{wordings}))"
        self._line = re.compile(
            rf"^(?P<lead>[ \t]*){_NUMBER}{core}{_QUALIFIER}"
            rf"(?:(?P<combo>{_COMBINED})[ \t]*(?P<colon>:)|[ \t]*(?P<eol>\r?$))",
            re.IGNORECASE | re.MULTILINE,
        )
        self._inline = re.compile(
            rf"(?:(?<=[ \t][ \t])|(?<=[.!?;][ \t])){core}{_QUALIFIER}{_COMBINED}[ \t]*:",
            re.IGNORECASE,
        )

    def find(self, text: str) -> list[SectionTuple]:
        """Sections of ``text`` as (start_char, end_char, section_type, header_text)."""
        found: dict[int, tuple[str, str]] = {}
        header_starts: set[int] = set()
        for match in self._line.finditer(text):
            wording = normalise_header(match.group("wording"))
            header = match.group("header")
            if match.group("colon") is None:
                if wording in self.rules.colon_required or not header[:1].isupper():
                    continue
            found[match.end("lead")] = (self.rules.headers[wording], header)
            header_starts.add(match.start("header"))
        if self.inline_headers:
            for match in self._inline.finditer(text):
                header = match.group("header")
                if match.start("header") in header_starts or not header[:1].isupper():
                    continue
                wording = normalise_header(match.group("wording"))
                found[match.start("header")] = (self.rules.headers[wording], header)
        starts = sorted(found)
        sections: list[SectionTuple] = []
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(text)
            stype, header = found[start]
            sections.append((start, end, stype, header))
        return sections


def section_at(sections: list[SectionTuple], starts: list[int], char: int) -> SectionTuple | None:
    """The section containing character offset ``char`` (``starts`` = section starts)."""
    i = bisect.bisect_right(starts, char) - 1
    if i < 0:
        return None
    section = sections[i]
    return section if char < section[1] else None


def iter_doc_spans(doc: Doc) -> Iterable[Span]:
    """Every span of ``doc.ents`` and of each ``doc.spans`` group."""
    yield from doc.ents
    for group in doc.spans.values():
        yield from group


class SectionsComponent:
    """spaCy component setting ``doc._.sections`` and ``span._.section``."""

    def __init__(
        self,
        nlp: Language,
        name: str = "medcode_sections",
        *,
        rules_path: str | None = None,
        inline_headers: bool = True,
    ) -> None:
        self.name = name
        self.rules_path = rules_path
        self.inline_headers = inline_headers
        self._data: Any = read_json(rules_path, RULES_FILE)
        self._build()

    def _build(self) -> None:
        self.rules = parse_section_rules(self._data, str(self.rules_path or RULES_FILE))
        self.detector = SectionDetector(self.rules, inline_headers=self.inline_headers)

    @property
    def hints(self) -> dict[str, str | None]:
        """Section type -> default assertion hint."""
        return dict(self.rules.hints)

    def __call__(self, doc: Doc) -> Doc:
        sections = self.detector.find(doc.text)
        doc._.sections = sections
        starts = [s[0] for s in sections]
        for span in iter_doc_spans(doc):
            section = section_at(sections, starts, span.start_char) if sections else None
            span._.section = section[2] if section else None
        return doc

    # Serialization: the rules travel with a saved pipeline.
    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return srsly.json_dumps(self._data).encode("utf8")

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> SectionsComponent:
        self._data = srsly.json_loads(data.decode("utf8"))
        self._build()
        return self

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / RULES_FILE, self._data)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> SectionsComponent:
        file = Path(path) / RULES_FILE
        if file.exists():
            self._data = srsly.read_json(file)
            self._build()
        return self


@Language.factory(
    "medcode_sections",
    assigns=["doc._.sections", "span._.section"],
    default_config={"rules_path": None, "inline_headers": True},
)
def make_sections(
    nlp: Language, name: str, *, rules_path: str | None, inline_headers: bool
) -> SectionsComponent:
    """Create the section detector (``rules_path`` = a custom rules JSON, None = packaged)."""
    return SectionsComponent(nlp, name, rules_path=rules_path, inline_headers=inline_headers)
