"""ICD-10-CM FY2026 tabular list, read from the PyPI package ``simple-icd-10-cm``."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from importlib import metadata
from types import ModuleType

from medcode_nlp.codesets.base import Alias, CodeEntry
from medcode_nlp.codesets.registry import code_key

SYSTEM = "icd10cm"
PACKAGE = "simple-icd-10-cm"
_NOS = re.compile(r"\s*\bNOS\b\s*", re.IGNORECASE)
_PARENTHESES = re.compile(r"\s*\([^)]*\)")
_NOTE_CODE = re.compile(r"\(([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z-]{1,4})?)\)")


def _module() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import simple_icd_10_cm

    return simple_icd_10_cm


def source_version() -> str:
    """Version of the installed ``simple-icd-10-cm`` package."""
    return metadata.version(PACKAGE)


def head_term(description: str) -> str | None:
    """The part of a title before ``, unspecified``-style qualifiers, if it is shorter."""
    head = description.split(",", 1)[0].strip()
    if head and head != description and len(head.split()) <= 6:
        return head
    return None


def referenced_codes(note: str) -> list[str]:
    """Codes cited in parentheses inside a tabular note, e.g. ``(E08.-)`` -> ``E08.-``."""
    return _NOTE_CODE.findall(note)


_CITED = re.compile(r"([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{0,4})?)-?\s*(?:-\s*([A-Z][0-9][0-9A-Z]"
                    r"(?:\.[0-9A-Z]{0,4})?))?")


def cited_ranges(note: str) -> list[tuple[str, str]]:
    """Code ranges a tabular note cites in parentheses, as (first, last) dotless prefixes.

    ``(I12.-, I13.-)`` gives ``[("I12", "I12"), ("I13", "I13")]``; ``(N18.1-N18.4, N18.9)``
    gives ``[("N181", "N184"), ("N189", "N189")]``.
    """
    ranges = []
    for group in re.findall(r"\(([^()]*)\)", note):
        for part in group.split(","):
            match = _CITED.fullmatch(part.strip().rstrip(".-").strip())
            if match is None:
                continue
            first = match.group(1).replace(".", "").rstrip("-")
            last = (match.group(2) or match.group(1)).replace(".", "").rstrip("-")
            ranges.append((first, last))
    return ranges


def cites(note: str, code: str) -> bool:
    """Whether ``code`` falls inside a code or range the note cites."""
    key = code_key(code)
    return any(key[:len(first)] >= first and key[:len(last)] <= last
               for first, last in cited_ranges(note))


def iter_icd10cm() -> Iterator[CodeEntry]:
    """Yield every ICD-10-CM category, subcategory and code (7th characters included)."""
    cm = _module()

    def grouping_only(code: str) -> bool:
        # a block holding one category has that category's name (B20, C50, R99...): it is a code
        return bool(cm.is_chapter_or_block(code)) and not cm.is_category(code)

    seen: set[str] = set()
    for code in cm.get_all_codes(with_dots=True):
        if grouping_only(code) or code in seen:
            continue
        seen.add(code)
        description = cm.get_description(code)
        parent = cm.get_parent(code)
        if parent and (cm.is_category(code) or grouping_only(parent)):
            parent = None  # a category's parent is its block
        aliases = [Alias(description, "description")]
        head = head_term(description)
        if head:
            aliases.append(Alias(head, "head"))
        for text in (description, head):
            plain = _PARENTHESES.sub("", text or "").strip()
            if text and plain and plain != text:
                aliases.append(Alias(plain, "head"))
        for term in cm.get_inclusion_term(code):
            cleaned = _NOS.sub(" ", term).strip(" ,")
            if cleaned and cleaned.lower() != description.lower():
                aliases.append(Alias(cleaned, "inclusion"))
        seventh = cm.get_seven_chr_def(code) or {}
        yield CodeEntry(
            code=code,
            system=SYSTEM,
            description=description,
            billable=cm.is_leaf(code),
            parent=parent or None,
            aliases=aliases,
            excludes1=list(cm.get_excludes1(code)),
            excludes2=list(cm.get_excludes2(code)),
            code_first=[n for n in [cm.get_code_first(code)] if n],
            use_additional=[n for n in [cm.get_use_additional_code(code)] if n],
            seventh_characters={str(k): str(v) for k, v in seventh.items()},
        )


def load_icd10cm() -> list[CodeEntry]:
    """All ICD-10-CM entries as a list."""
    return list(iter_icd10cm())
