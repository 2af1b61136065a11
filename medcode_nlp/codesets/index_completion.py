"""Index codes completed to FY2026 codes with the Tabular of a knowledge base."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medcode_nlp.codesets.registry import code_key

if TYPE_CHECKING:
    from medcode_nlp.kb.store import CodeKnowledgeBase

SYSTEM = "icd10cm"


def _index_key(code: str) -> str:
    """:func:`~medcode_nlp.codesets.registry.code_key` without an index code's trailing dash."""
    return code_key(code).rstrip("-")


def _preference(code: str, description: str) -> float:
    text = description.lower()
    score = 0.0
    if "unspecified" in text and "with unspecified" not in text:
        score += 2.0
    if text.startswith("other") or " other " in f" {text} ":
        score -= 1.0
    if code.endswith("9"):
        score += 1.0
    elif code.endswith("0"):
        score += 0.5
    return score


def complete_code(kb: CodeKnowledgeBase, code: str) -> str | None:
    """An index code as an FY2026 code: the dash dropped, then down to the unspecified child.

    Returns a billable code, or a code that only lacks its 7th character (``S52.509``; the
    caller chooses it), with placeholder ``X`` added when the Tabular needs one
    (``S33.5`` -> ``S33.5XX``). None when the code is not in the knowledge base.
    """
    key = _index_key(code)
    if not key:
        return None
    entry = kb.get(SYSTEM, key)
    if entry is None:
        return None
    current = entry.code
    for _ in range(8):
        entry = kb.get(SYSTEM, current)
        if entry is None:
            return None
        if entry.billable:
            return entry.code
        children = kb.children(SYSTEM, current)
        if not children:
            return None
        current_key = _index_key(current)
        if all(len(_index_key(child)) == 7 for child in children) and len(current_key) < 7:
            if len(current_key) == 6:
                return current
            padded = current_key.ljust(6, "X")
            return f"{padded[:3]}.{padded[3:]}"
        described = []
        for child in children:
            child_entry = kb.get(SYSTEM, child)
            described.append((child, child_entry.description if child_entry else ""))
        current = max(described, key=lambda item: (_preference(*item), -children.index(item[0])))[0]
    return None
