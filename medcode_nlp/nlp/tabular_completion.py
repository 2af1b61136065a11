"""Finish an Index code in the Tabular: the billable child whose wording fits the note.

A dash or category from the Alphabetic Index becomes the billable code the note's words fit
best (laterality, limb, spine region, episode of care, displaced/nondisplaced, open/closed,
consciousness in head injuries), with the Official Guidelines' defaults when the note is
silent (fracture: displaced, closed; injury: initial encounter while under active treatment).
"""

from __future__ import annotations

import re

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.kb.store import CodeKnowledgeBase

_OPEN_FRACTURE_7TH = frozenset("BCEFHJMNQR")
_EPISODES = (
    ("S", re.compile(r"\bsequela", re.I)),
    ("D", re.compile(r"\b(subsequent encounter|follow[- ]?up|healing|recheck|status post)\b", re.I)),
)


def episode(context: str) -> str:
    """7th character of the episode of care the sentence documents (A by default)."""
    for character, pattern in _EPISODES:
        if pattern.search(context):
            return character
    return "A"


def _fit(description: str, code: str, words: set[str], seventh: str, needs_seventh: bool) -> float:
    """How well a billable code's wording fits the note's words (higher is better)."""
    text = description.lower()
    found = set(re.findall(r"[a-z]+", text))
    score = 0.0
    for side in ("right", "left", "bilateral"):
        if side in found:
            score += 3.0 if side in words else -4.0
    if "unspecified" in found or "without mention" in text:
        score += 0.5
    if "nondisplaced" in found:
        score += 2.0 if "nondisplaced" in words else -1.0
    elif "displaced" in found:
        score += 0.7
    if "open" in found or (needs_seventh and code[-1] in _OPEN_FRACTURE_7TH):
        score += 2.0 if "open" in words else -2.0
    if needs_seventh:
        score += 2.0 if code[-1] == seventh else -3.0
    score += 0.3 * len(found & words - {"of", "the", "and", "with", "in", "unspecified"})
    return score


_UNSPECIFIED_SITE = re.compile(r"\b(?:site|region|part) unspecified\b|\bunspecified (?:site|region)\b",
                               re.I)
_SPINE_LEVELS = ((re.compile(r"\bL5-S1\b|\blumbosacral\b", re.I), "lumbosacral"),
                 (re.compile(r"\bL[1-5](?:-[1-5])?\b"), "lumbar"),
                 (re.compile(r"\bT(?:[1-9]|1[0-2])(?:-\d{1,2})?\b"), "thoracic"),
                 (re.compile(r"\bC[1-7](?:-[1-7])?\b"), "cervical"))


#: "lower extremity" is the Tabular's leg, "upper extremity" its arm.
_LIMBS = ((re.compile(r"\blower\s+(?:extremit|limb|ext\b)", re.I), "leg"),
          (re.compile(r"\bupper\s+(?:extremit|limb|ext\b)", re.I), "arm"))


def _spine_regions(text: str) -> set[str]:
    """Region words of the vertebral levels a note writes ("L4-5" -> lumbar)."""
    for pattern, region in _SPINE_LEVELS:
        if pattern.search(text):
            return {region}
    return set()


def _site_said(description: str, unspecified: str, words: set[str]) -> bool:
    """Whether every word that sets a sibling's title apart from the unspecified one's is
    said ("thoracic region" for M47.814 beside M47.819)."""
    own = set(re.findall(r"[a-z]+", description.lower()))
    apart = own - set(re.findall(r"[a-z]+", unspecified.lower())) - {"region", "site", "part"}
    return bool(apart) and apart <= words


def complete(kb: CodeKnowledgeBase, index_code: str, text: str) -> str | None:
    """The billable FY2026 code under ``index_code`` that fits ``text`` (mention + sentence)."""
    key = code_key(index_code.rstrip("-").rstrip("."))
    entry = kb.get("icd10cm", key)
    if entry is None:
        return None
    words = set(re.findall(r"[a-z]+", text.lower())) | _spine_regions(text)
    words |= {limb for pattern, limb in _LIMBS if pattern.search(text)}
    if "both" in words:
        words.add("bilateral")
    if entry.billable:
        if not _UNSPECIFIED_SITE.search(entry.description) or entry.parent is None:
            return entry.code
        # "Syndrome, facet joint M47.819" (site unspecified): the note's site picks the sibling
        siblings = [c for c in kb.billable_descendants("icd10cm", entry.parent, limit=60)
                    if (kb.get("icd10cm", c) or entry).description.split(",")[0]
                    == entry.description.split(",")[0]]
        said = [c for c in siblings if c != entry.code and _site_said(
            (kb.get("icd10cm", c) or entry).description, entry.description, words)]
        return said[0] if len(said) == 1 else entry.code
    pool = kb.billable_descendants("icd10cm", entry.code, limit=600)
    if not pool:
        return None
    seventh = episode(text)
    descriptions = {c: (kb.get("icd10cm", c) or entry).description for c in pool}
    pool = _consciousness(pool, descriptions, text)
    needs = {c: len(code_key(c)) == 7 and code_key(c)[-1].isalpha() and code_key(c)[0] in "ST"
             for c in pool}
    return max(pool, key=lambda c: _fit(descriptions[c], c, words, seventh, needs[c]))


_NO_LOC = re.compile(r"\b(?:no|without|denie[sd]|did not (?:lose|have)|never lost)\s+(?:\w+\s+){0,2}?"
                     r"(?:loss of consciousness|LOC|lose consciousness)\b", re.I)
_LOC = re.compile(r"\bloss of consciousness\b|\bLOC\b|\blost consciousness\b|\bunconscious"
                  r"|\bpassed out\b|\bknocked out\b|\bunresponsive\b", re.I)


def _consciousness(pool: list[str], descriptions: dict[str, str], text: str) -> list[str]:
    """Head injuries (S06) by what the note says of consciousness: 'without loss of
    consciousness' when it denies one, 'status unknown' when it is silent (FY2023 on)."""
    if not any("loss of consciousness" in d for d in descriptions.values()):
        return pool
    if _NO_LOC.search(text):
        wanted = "without loss of consciousness"
    elif _LOC.search(text):
        return pool
    else:
        wanted = "loss of consciousness status unknown"
    chosen = [c for c in pool if wanted in descriptions[c].lower()]
    return chosen or pool
