"""Code-level coding guidelines: history codes, missing detail, 7th-character episodes, billable children, Excludes1 conflicts, HCPCS coverage prompts."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

from medcode_nlp.codesets.icd10cm import cites
from medcode_nlp.codesets.registry import code_key
from medcode_nlp.kb.store import CodeKnowledgeBase
from medcode_nlp.schema import Candidate, CodeSuggestion, Entity, Evidence

_EPISODES = (
    ("S", re.compile(r"\bsequela", re.I), "sequela"),
    ("D", re.compile(r"\b(subsequent|follow[- ]?up|healing|routine healing|recheck)\b", re.I),
     "subsequent encounter"),
    ("A", re.compile(r"\b(initial|acute|new|presents?|emergency|ED)\b", re.I),
     "initial encounter"),
)
_DETAIL_WORDS = (
    ("laterality (right/left)", re.compile(r"\b(right|left|bilateral)\b", re.I)),
    ("acuity (acute/chronic)", re.compile(r"\b(acute|chronic|subacute)\b", re.I)),
    ("stage", re.compile(r"\bstage\b", re.I)),
    ("type", re.compile(r"\btype\b", re.I)),
    ("episode of care", re.compile(r"\b(initial|subsequent) encounter\b|\bsequela\b", re.I)),
    ("with/without complication", re.compile(r"\bwith(out)?\b", re.I)),
    ("site", re.compile(r"\b(upper|lower|site|part)\b", re.I)),
)

@lru_cache(maxsize=1)
def _history_tables() -> dict[str, list[tuple[str, str]]]:
    raw = json.loads(
        resources.files("medcode_nlp.resources").joinpath("history_codes.json").read_text("utf-8")
    )
    tables: dict[str, list[tuple[str, str]]] = {}
    for kind in ("family", "personal"):
        pairs = [(p, code) for prefixes, code in raw[kind] for p in prefixes.split()]
        tables[kind] = sorted(pairs, key=lambda pair: -len(pair[0]))
    return tables


def is_history_code(kind: str, code: str) -> bool:
    """Whether ``code`` is itself a family or personal history code (Z80-Z87, I25.2)."""
    prefix = ("Z80", "Z81", "Z82", "Z83", "Z84") if kind == "family" else ("Z85", "Z86", "Z87")
    return code.startswith(prefix) or code in {t for _p, t in _history_tables()[kind]}


def history_code(kind: str, code: str) -> str | None:
    """Family ("family") or personal ("personal") history code for an ICD-10-CM code."""
    key = code_key(code)
    for prefix, target in _history_tables()[kind]:
        if key.startswith(code_key(prefix)):
            return target
    return None


def _evidence(entity: Entity) -> Evidence:
    return Evidence(entity.start, entity.end, entity.text)


def _description(kb: CodeKnowledgeBase, code: str) -> str:
    entry = kb.get("icd10cm", code)
    return entry.description if entry is not None else ""


def missing_detail(kb: CodeKnowledgeBase, system: str, code: str) -> str:
    """What distinguishes the billable children of a category, for a specificity prompt."""
    children = kb.children(system, code)
    texts = [_description(kb, child) for child in children]
    details = [name for name, pattern in _DETAIL_WORDS if sum(bool(pattern.search(t)) for t in texts) >= 2]
    return ", ".join(details[:2]) if details else "a more specific subtype"


def episode_of_care(context: str) -> tuple[str, str, bool]:
    """(7th character, meaning, documented?) from the sentence around the mention."""
    for character, pattern, meaning in _EPISODES:
        if pattern.search(context):
            return character, meaning, True
    return "A", "initial encounter", False


def with_episode(
    kb: CodeKnowledgeBase, candidate: Candidate, context: str
) -> tuple[Candidate, list[str]]:
    """For a code with a 7th character, the sibling whose episode of care fits the note."""
    key = code_key(candidate.code)
    if len(key) != 7 or not key[-1].isalpha() or candidate.code[-1] not in "ADS":
        return candidate, []
    character, meaning, documented = episode_of_care(context)
    prompts = [] if documented else [
        f"episode of care not documented: defaulted to {meaning} (7th character {character}); "
        "confirm initial, subsequent or sequela"]
    sibling = kb.get("icd10cm", candidate.code[:-1] + character)
    if sibling is None or sibling.code == candidate.code:
        return candidate, prompts
    return Candidate(sibling.code, "icd10cm", sibling.description, candidate.score,
                     sibling.billable, candidate.alias, candidate.alias_kind), prompts


def make_billable(
    kb: CodeKnowledgeBase, candidate: Candidate, context: str
) -> tuple[Candidate, list[str]]:
    """A billable code for a candidate, and the prompts explaining any choice made."""
    if candidate.system != "icd10cm":
        return candidate, []
    if candidate.billable:
        return with_episode(kb, candidate, context)
    entry = kb.get(candidate.system, candidate.code)
    descendants = kb.billable_descendants(candidate.system, candidate.code, limit=400)
    if entry is None or not descendants:
        return candidate, [f"{candidate.code} is not billable and has no billable child"]
    character, meaning, documented = episode_of_care(context)
    needs_seventh = any(len(code_key(c)) == 7 and code_key(c)[-1].isalpha() for c in descendants)
    pool = descendants
    if needs_seventh:
        pool = [c for c in descendants if code_key(c).endswith(character)] or descendants
    unspecified = [c for c in pool if "unspecified" in _description(kb, c).lower()]
    chosen = (unspecified or pool)[0]
    chosen_entry = kb.get("icd10cm", chosen)
    assert chosen_entry is not None
    prompts = [
        f"{candidate.code} ({entry.description}) is a category: specify "
        f"{missing_detail(kb, 'icd10cm', candidate.code)}; "
        f"options include {', '.join(descendants[:6])}"
    ]
    if needs_seventh and not documented:
        prompts.append(f"episode of care not documented: defaulted to {meaning} (7th character "
                       f"{character}); confirm initial, subsequent or sequela")
    billable = Candidate(
        code=chosen, system="icd10cm", description=chosen_entry.description,
        score=candidate.score, billable=True, alias=candidate.alias,
        alias_kind=candidate.alias_kind,
    )
    return billable, prompts

def conflicts(kb: CodeKnowledgeBase, codes: list[CodeSuggestion]) -> None:
    """Flag Excludes1 pairs among ICD-10-CM codes (notes of the code and its ancestors)."""
    cm_codes = [c for c in codes if c.system == "icd10cm"]
    for suggestion in cm_codes:
        chain = [suggestion.code, *kb.ancestors("icd10cm", suggestion.code)]
        for ancestor in chain:
            entry = kb.get("icd10cm", ancestor)
            if entry is None:
                continue
            for note in entry.excludes1:
                for other in cm_codes:
                    if other is suggestion or not cites(note, other.code):
                        continue
                    message = f"Excludes1 with {other.code}: {suggestion.code} excludes {note}"
                    if message not in suggestion.conflicts:
                        suggestion.conflicts.append(message)
                    back = f"Excludes1 with {suggestion.code} (see {suggestion.code})"
                    if back not in other.conflicts:
                        other.conflicts.append(back)

#: HCPCS coverage codes that mean Medicare does not pay (CMS record layout).
NOT_PAID_BY_MEDICARE = ("I", "M", "S")


def coverage_prompts(kb: CodeKnowledgeBase, code: str) -> list[str]:
    """A prompt when the CMS HCPCS file says Medicare does not pay for the code."""
    entry = kb.get("hcpcs", code)
    if entry is None or entry.extra.get("coverage_code") not in NOT_PAID_BY_MEDICARE:
        return []
    return [f"Medicare coverage: {entry.extra.get('coverage', 'not covered')} (CMS HCPCS file)"]
