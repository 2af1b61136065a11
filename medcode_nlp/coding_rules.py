"""Coding guidelines applied to a finished document.

Each rule is a small function and every decision is visible in the result: a dropped code
goes to ``excluded`` with its reason, a doubtful one carries a ``prompts`` entry, and code
pairs that may not be reported together carry ``conflicts`` entries.

- negated and hypothetical problems are not coded;
- uncertain diagnoses are not coded in the outpatient setting (ICD-10-CM Official Guidelines
  IV.H; signs and symptoms documented in the note are coded instead) and are coded as
  established in the inpatient setting (Section II.H);
- family history maps to a Z80-Z84 code, personal history of a resolved condition to a
  Z85-Z87 code (or I25.2 for an old myocardial infarction) where one exists;
- final codes are billable: a non-billable category is replaced by a billable child, with a
  prompt naming the missing detail;
- codes that need a 7th character get the episode of care from the note, or a default and a
  prompt;
- Excludes1 pairs among the final codes are flagged as conflicts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from medcode_nlp.codesets.icd10cm import cites
from medcode_nlp.kb.store import CodeKnowledgeBase, code_key
from medcode_nlp.ranking.document_features import CodeSignals, partial_description, partial_pcs_code
from medcode_nlp.schema import Candidate, CodeSuggestion, Entity, Evidence, ExcludedCode

SETTINGS = ("outpatient", "inpatient")
#: Whole-note probability a code needs to be suggested without any mention evidence.
NOTE_ONLY_FLOOR = 0.05
CANDIDATES_PER_ENTITY = 3
#: Candidates per entity that vote when a document scorer weighs the evidence.
SCORED_CANDIDATES_PER_ENTITY = 10
PARTIAL_PROMPT = ("partial ICD-10-PCS code (section, body system, root operation, body part): "
                  "choose approach, device and qualifier from the note")
#: Scores each code of a note from its signals (and the note's mention count).
DocumentScorer = Callable[[list[CodeSignals], int], Sequence[float]]

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


@dataclass(slots=True)
class Mention:
    """One entity with what the rules need to know about it."""

    entity: Entity
    context: str = ""  # the sentence around the entity (for the episode of care)
    flags: dict[str, bool] = field(default_factory=dict)


@dataclass(slots=True)
class CodingOptions:
    """Options of a coding run."""

    setting: str = "outpatient"
    systems: tuple[str, ...] | None = None
    top_k: int = 20
    min_score: float = 0.2
    partial_codes: bool = False  # also suggest 4-character ICD-10-PCS partial codes


@dataclass(slots=True)
class _Vote:
    system: str
    description: str
    billable: bool
    probabilities: list[float] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    similarities: list[float] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)
    assertions: list[str] = field(default_factory=list)
    partial: bool = False
    sibling: bool = False  # a frequent training code of a supported category, no evidence
    expanded: list[bool] = field(default_factory=list)  # vote came from a category made billable
    # (start, end, text) of ``evidence``: a membership test on the list made a code mentioned
    # thousands of times (a long problem list) cost quadratic time
    seen: set[tuple[int, int, str]] = field(default_factory=set)


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


_RESOLVED = re.compile(r"\bresol(?:ved|ution)\b", re.I)
_TREATED_NOW = re.compile(
    r"\b(?:continues?|continuing|continued on|resume[sd]?|refill(?:ed)?|taking|takes|"
    r"maintained on|managed with|controlled (?:on|with)|stable on|treated with|currently on|"
    r"remains on|on (?:\w+ )?\d+(?:\.\d+)? ?(?:mg|mcg|units?))\b", re.I)


def treated_now(sentence: str) -> bool:
    """Whether the sentence says the condition is treated now ('continue atorvastatin')."""
    return _TREATED_NOW.search(sentence) is not None


def assertion_exclusion(mention: Mention, setting: str) -> str | None:
    """The reason a mention is not coded as itself, or None.

    Signs and symptoms (chapter R) near an uncertain diagnosis are documented findings and
    stay coded in the outpatient setting, as the guideline asks.
    """
    entity = mention.entity
    if entity.assertion == "negated" and _RESOLVED.search(mention.context):
        return ("resolved: documented as a past condition, not coded as current (a personal "
                "history code may apply)")
    if entity.assertion == "negated":
        return "negated in the note"
    if entity.assertion == "hypothetical":
        return "hypothetical (conditional or future) mention"
    symptom = bool(entity.candidates) and entity.candidates[0].code.startswith("R")
    if (entity.assertion == "uncertain" and setting == "outpatient"
            and entity.label == "PROBLEM" and not symptom):
        return ("uncertain diagnosis (probable/suspected/rule out): not coded in the outpatient "
                "setting, code the documented signs and symptoms (ICD-10-CM Guidelines IV.H)")
    return None


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


def noisy_or(probabilities: list[float]) -> float:
    """P(at least one mention is right), mentions taken as independent."""
    remaining = 1.0
    for p in probabilities:
        remaining *= 1.0 - p
    return 1.0 - remaining


NOTE_ONLY_PROMPT = ("suggested from the note as a whole (document classifier): no single "
                    "mention supports it; check the note")


#: How many times ``top_k`` codes the document stage passes to the conventions review.
REVIEW_ROOM = 3


def _note_only_vote(kb: CodeKnowledgeBase, system: str, code: str, probability: float,
                    options: CodingOptions, scored: bool) -> _Vote | None:
    """A vote for a code only the whole-note classifier supports, if it may be suggested."""
    entry = kb.get(system, code)
    if entry is not None:
        if not entry.billable or (not scored and probability < NOTE_ONLY_FLOOR):
            return None
        return _Vote(system, entry.description, True, [] if scored else [probability], [],
                     [NOTE_ONLY_PROMPT])
    if not (scored and options.partial_codes and system == "icd10pcs" and len(code) == 4):
        return None
    child = kb.first_with_prefix(system, code)
    child_entry = kb.get(system, child) if child else None
    if child_entry is None:
        return None
    return _Vote(system, partial_description(child_entry.description), False, [], [],
                 [NOTE_ONLY_PROMPT, PARTIAL_PROMPT], partial=True)


def _scores(votes: dict[tuple[str, str], _Vote], note_probability: dict[tuple[str, str], float],
            combine: Callable[[list[float]], float], scorer: DocumentScorer | None,
            mentions: Sequence[Mention]) -> dict[tuple[str, str], float]:
    """Each voted code's document confidence: the scorer's, or ``combine`` of its votes."""
    if scorer is None:
        return {key: round(combine(v.probabilities), 4) for key, v in votes.items()}
    keys = list(votes)
    extent = max((m.entity.end for m in mentions), default=0) or 1
    signals = []
    for system, code in keys:
        v = votes[(system, code)]
        signals.append(CodeSignals(
            system, code, v.partial, v.probabilities, v.similarities, v.ranks, v.assertions,
            note_probability.get((system, code)), v.expanded,
            [min(e.start / extent, 1.0) for e in v.evidence],
            [len(e.text.split()) for e in v.evidence], v.sibling))
    n_mentions = len(mentions)
    probabilities = scorer(signals, n_mentions) if signals else []
    return {key: round(float(p), 4) for key, p in zip(keys, probabilities, strict=True)}


#: Frequent training codes proposed per ICD-10-CM category the note supports (scorer only).
SIBLINGS_PER_CATEGORY = 3
SIBLING_PROMPT = ("suggested because the note supports its category and training notes often "
                  "coded it there: no mention names this code; check the note")


def _sibling_votes(kb: CodeKnowledgeBase, votes: dict[tuple[str, str], _Vote],
                   ruled_out: set[tuple[str, str]],
                   category_codes: Callable[[str], list[str]]) -> dict[tuple[str, str], _Vote]:
    """Votes for the most frequent billable training codes of each voted ICD-10-CM category
    that no mention or note score proposed (the second stage decides if they stay)."""
    voted = {code_key(code) for system, code in votes if system == "icd10cm"}
    added: dict[tuple[str, str], _Vote] = {}
    for category in sorted({key[:3] for key in voted}):
        taken = 0
        for key in category_codes(category):
            if taken >= SIBLINGS_PER_CATEGORY:
                break
            if key in voted:
                continue
            entry = kb.get("icd10cm", key)
            if entry is None or not entry.billable:
                continue
            taken += 1
            if ("icd10cm", entry.code) not in ruled_out:
                added[("icd10cm", entry.code)] = _Vote(
                    "icd10cm", entry.description, True, prompts=[SIBLING_PROMPT], sibling=True)
    return added


#: HCPCS coverage codes that mean Medicare does not pay (CMS record layout).
NOT_PAID_BY_MEDICARE = ("I", "M", "S")


def coverage_prompts(kb: CodeKnowledgeBase, code: str) -> list[str]:
    """A prompt when the CMS HCPCS file says Medicare does not pay for the code."""
    entry = kb.get("hcpcs", code)
    if entry is None or entry.extra.get("coverage_code") not in NOT_PAID_BY_MEDICARE:
        return []
    return [f"Medicare coverage: {entry.extra.get('coverage', 'not covered')} (CMS HCPCS file)"]


def ranked_per_system(candidates: Sequence[Candidate], limit: int) -> list[tuple[int, Candidate]]:
    """(rank within its code system, candidate) for the first ``limit`` candidates of each
    system, in the given order (an HCPCS candidate never takes an ICD-10-PCS code's place)."""
    taken: dict[str, int] = {}
    ranked = []
    for candidate in candidates:
        rank = taken.get(candidate.system, 0)
        if rank < limit:
            taken[candidate.system] = rank + 1
            ranked.append((rank, candidate))
    return ranked


def code_document(
    kb: CodeKnowledgeBase,
    mentions: list[Mention],
    options: CodingOptions,
    combine: Callable[[list[float]], float] = noisy_or,
    note_scores: dict[tuple[str, str], float] | None = None,
    scorer: DocumentScorer | None = None,
    category_codes: Callable[[str], list[str]] | None = None,
) -> tuple[list[CodeSuggestion], list[ExcludedCode]]:
    """Combine the mentions' candidates into document codes, applying the guidelines.

    ``combine`` turns a code's probabilities into its document confidence (the ranker
    supplies a calibrated one). ``note_scores`` are whole-note probabilities of codes (the
    document classifier): they join a code's mention probabilities, and a code the note as a
    whole supports without any single mention is suggested with a prompt saying so. A
    ``scorer`` (the ranker's second stage) replaces ``combine``: it weighs all of a code's
    signals at once, over more candidates per mention and every code the note model knows;
    ``category_codes`` (a category's training codes, most frequent first) then also proposes
    the frequent codes of each supported ICD-10-CM category (``SIBLINGS_PER_CATEGORY``).
    """
    votes: dict[tuple[str, str], _Vote] = {}
    excluded: dict[tuple[str, str, str], ExcludedCode] = {}

    def exclude(candidate: Candidate, reason: str, evidence: Evidence) -> None:
        key = (candidate.system, candidate.code, reason)
        if key not in excluded:
            excluded[key] = ExcludedCode(candidate.code, candidate.system, reason, [])
        excluded[key].evidence.append(evidence)

    def vote(candidate: Candidate, probability: float, evidence: Evidence,
             prompts: list[str], rank: int = 0, assertion: str = "present",
             partial: bool = False, expanded: bool = False) -> None:
        key = (candidate.system, candidate.code)
        if key not in votes:
            votes[key] = _Vote(candidate.system, candidate.description, candidate.billable,
                               partial=partial)
        v = votes[key]
        v.probabilities.append(probability)
        v.similarities.append(candidate.similarity)
        v.ranks.append(rank)
        v.assertions.append(assertion)
        v.expanded.append(expanded)
        if (evidence.start, evidence.end, evidence.text) not in v.seen:
            v.seen.add((evidence.start, evidence.end, evidence.text))
            v.evidence.append(evidence)
        v.prompts.extend(p for p in prompts if p not in v.prompts)

    for mention in mentions:
        entity = mention.entity
        candidates = [c for c in entity.candidates
                      if options.systems is None or c.system in options.systems]
        if not candidates:
            continue
        evidence = _evidence(entity)
        reason = assertion_exclusion(mention, options.setting)
        if reason is not None:
            exclude(candidates[0], reason, evidence)
            continue
        if entity.assertion in ("family", "historical") and entity.label == "PROBLEM":
            top = candidates[0]
            kind = "family" if entity.assertion == "family" else "personal"
            target = history_code(kind, top.code) if top.system == "icd10cm" else None
            if top.system == "icd10cm" and is_history_code(kind, top.code):
                target = top.code  # the mention already links to its history code
            target_entry = kb.get("icd10cm", target) if target else None
            if target_entry is not None:
                exclude(top, f"{'family' if kind == 'family' else 'personal'} history: "
                        f"coded as {target_entry.code}", evidence)
                # the history code is as sure as the condition's mention is: its similarity,
                # not the ranker's (low) probability that the condition itself is coded
                confidence = max(top.score, top.similarity)
                history = Candidate(target_entry.code, "icd10cm", target_entry.description,
                                    confidence, target_entry.billable)
                history, prompts = make_billable(kb, history, mention.context)
                history.similarity = confidence
                vote(history, confidence, evidence, prompts, assertion=entity.assertion)
                continue
            if kind == "family":
                exclude(top, "family member's condition, no family-history code for it", evidence)
                continue
        per_entity = SCORED_CANDIDATES_PER_ENTITY if scorer else CANDIDATES_PER_ENTITY
        for rank, candidate in ranked_per_system(candidates, per_entity):
            billable, prompts = make_billable(kb, candidate, mention.context)
            if candidate.system == "hcpcs":
                prompts = [*prompts, *coverage_prompts(kb, candidate.code)]
            if entity.assertion == "historical" and rank == 0:
                prompts = [*prompts, "documented as history: code only if the condition is "
                           "current or affects care"]
            if entity.assertion == "uncertain":
                prompts = [*prompts, "uncertain diagnosis coded as established (inpatient "
                           "setting, ICD-10-CM Guidelines II.H)"]
            vote(billable, candidate.score, evidence, prompts, rank, entity.assertion,
                 expanded=billable.code != candidate.code)
            stem = partial_pcs_code(candidate.code) if candidate.system == "icd10pcs" else None
            if scorer and options.partial_codes and stem:
                vote(Candidate(stem, "icd10pcs", partial_description(candidate.description),
                               candidate.score, False, similarity=candidate.similarity),
                     candidate.score, evidence, [PARTIAL_PROMPT], rank, entity.assertion,
                     partial=True)

    ruled_out = {(key[0], key[1]) for key in excluded}
    note_probability: dict[tuple[str, str], float] = {}
    for (system, code), p in (note_scores or {}).items():
        if options.systems is not None and system not in options.systems:
            continue
        if (system, code) in ruled_out:  # a guideline dropped it: the note model cannot revive it
            continue
        if (system, code) in votes:
            if scorer is None:
                votes[(system, code)].probabilities.append(p)
            note_probability[(system, code)] = p
            continue
        note_vote = _note_only_vote(kb, system, code, p, options, scored=scorer is not None)
        if note_vote is not None:
            votes[(system, code)] = note_vote
            note_probability[(system, code)] = p

    if scorer is not None and category_codes is not None:
        votes.update(_sibling_votes(kb, votes, ruled_out, category_codes))
    scores = _scores(votes, note_probability, combine, scorer, mentions)
    codes = []
    for (system, code), v in votes.items():
        score = scores[(system, code)]
        if v.partial and options.partial_codes:
            if score >= options.min_score:
                codes.append(CodeSuggestion(code, system, v.description, score, False,
                                            v.evidence, v.prompts, []))
            continue
        if v.partial:
            continue
        if not v.billable:
            exclude(Candidate(code, system, v.description, score, False),
                    "not billable and no billable child found", v.evidence[0])
            continue
        if score < options.min_score:
            continue
        codes.append(CodeSuggestion(code, system, v.description, score, v.billable,
                                    v.evidence, v.prompts, []))
    codes.sort(key=lambda c: (-c.score, c.system, c.code))
    # the conventions drop and merge codes after this: keep room, the caller cuts at top_k
    codes = codes[: options.top_k * REVIEW_ROOM]
    conflicts(kb, codes)
    final = {(c.system, c.code) for c in codes}
    dropped = [x for key, x in excluded.items() if (key[0], key[1]) not in final]
    return codes, dropped
