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

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.kb.store import CodeKnowledgeBase
from medcode_nlp.ranking.document_features import (
    CodeSignals,
    DocumentScorer,
    DocumentScoring,
    partial_description,
    partial_pcs_code,
)
from medcode_nlp.rules.guidelines import (
    _evidence,
    conflicts,
    coverage_prompts,
    history_code,
    is_history_code,
    make_billable,
)
from medcode_nlp.schema import Candidate, CodeSuggestion, Entity, Evidence, ExcludedCode

SETTINGS = ("outpatient", "inpatient")
#: Whole-note probability a code needs to be suggested without any mention evidence.
NOTE_ONLY_FLOOR = 0.05
CANDIDATES_PER_ENTITY = 3
#: Candidates per entity that vote when a document scorer weighs the evidence.
SCORED_CANDIDATES_PER_ENTITY = 10
PARTIAL_PROMPT = ("partial ICD-10-PCS code (section, body system, root operation, body part): "
                  "choose approach, device and qualifier from the note")


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
    scoring: DocumentScoring | None = None,
) -> tuple[list[CodeSuggestion], list[ExcludedCode]]:
    """Combine the mentions' candidates into document codes, applying the guidelines.

    ``scoring`` is what the ranker supplies (:meth:`RankerModel.document_scoring
    <medcode_nlp.ranking.model.RankerModel.document_scoring>`; the default is a plain noisy-or).
    Its ``combine`` turns a code's probabilities into its document confidence. Its
    ``note_scores`` (whole-note probabilities of codes) join a code's mention probabilities,
    and a code the note as a whole supports without any single mention is suggested with a
    prompt saying so. Its ``scorer`` (the second stage) replaces ``combine``: it weighs all of
    a code's signals at once, over more candidates per mention and every code the note model
    knows; its ``category_codes`` (a category's training codes, most frequent first) then also
    proposes the frequent codes of each supported ICD-10-CM category
    (``SIBLINGS_PER_CATEGORY``).
    """
    scoring = scoring or DocumentScoring()
    combine, note_scores = scoring.combine, scoring.note_scores
    scorer, category_codes = scoring.scorer, scoring.category_codes
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
