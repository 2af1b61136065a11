"""The review of a note's codes: convention tables, the note view, and the review state with its helpers."""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.coding_rules import Mention
from medcode_nlp.kb.store import CodeKnowledgeBase
from medcode_nlp.schema import Candidate, CodeSuggestion, Evidence, ExcludedCode

#: Sections whose mentions are coded only when the ranker already coded them.
NOT_CODED_FROM = frozenset({"physical_exam", "vital_signs", "review_of_systems", "laboratory",
                            "procedure_details", "anesthesia", "estimated_blood_loss", "fluids",
                            "specimens", "drains", "implants", "complications"})
#: Confidence of a mention's billable completion restored after the document stage.
EXPANSION_WEIGHT = 0.9
#: Lowest mention probability whose category is completed and restored.
EXPANSION_FLOOR = 0.5
#: Confidence of a long-term drug code with no diagnosis it depends on.
DRUG_CONFIDENCE = 0.8
TOBACCO_CONFIDENCE = 0.8
_SIDES = ("right", "left", "bilateral")
_NEGATION_BEFORE = re.compile(
    r"\b(no|not|denies|denied|without(?! complications?\b)|stopped|discontinued|off|held|hold|"
    r"allerg\w*)\b[^.;\n]{0,25}$", re.I)
OUTPATIENT_PCS_PROMPT = ("ICD-10-PCS codes inpatient hospital procedures: an outpatient note "
                         "reports the procedure in CPT/HCPCS; use it if this was an inpatient stay")
_DIALYSIS = re.compile(r"\b(?:hemodialysis|dialysis|peritoneal dialysis|dialyzed|on hd)\b", re.I)
#: Words that make dialysis a topic or a plan rather than the patient's treatment.
_DIALYSIS_TOPIC_BEFORE = re.compile(r"\b(?:about|discuss\w*|consider\w*|future|will|may|might|"
                                    r"eventual\w*|prepar\w*|plan\w*|need for|options? of|"
                                    r"avoid\w*|delay\w*|before|toward\w*)\b[^.;]*$", re.I)
_DIALYSIS_TOPIC_AFTER = re.compile(r"\s*(?:education|class(?:es)?|options?|planning|teaching|"
                                   r"access planning|evaluation)\b", re.I)
#: Symptom codes outside chapter R: pain in a joint, in a limb.
SYMPTOM_CODES = ("M25.5", "M79.6")
WINDOW = 120  # characters around a code's evidence searched for its context words


@dataclass(frozen=True)
class ConventionRules:
    """The rule tables of ``resources/conventions.json``."""

    section_priority: dict[str, int]
    diagnosis_sections: frozenset[str]
    history_sections: frozenset[str]
    long_term_drugs: tuple[dict[str, Any], ...]
    tobacco: dict[str, tuple[str, ...]]
    combinations: tuple[dict[str, Any], ...]
    generic_codes: dict[str, str]
    finding_prefixes: tuple[str, ...]
    procedure_words: frozenset[str]
    implied_readings: tuple[tuple[str, re.Pattern[str], str], ...]
    integral_to: tuple[dict[str, Any], ...] = ()
    anatomy_before: dict[str, frozenset[str]] = field(default_factory=dict)
    narrative_sections: frozenset[str] = frozenset()
    needs_words: dict[str, re.Pattern[str]] = field(default_factory=dict)
    needs_codes: tuple[dict[str, Any], ...] = ()
    pregnancy: tuple[dict[str, Any], ...] = ()
    organism_as_cause: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def rules() -> ConventionRules:
    """The packaged convention tables."""
    raw = json.loads(resources.files("medcode_nlp.resources").joinpath("conventions.json")
                     .read_text("utf-8"))
    return ConventionRules(
        section_priority={**raw["reason_sections"], **raw["diagnosis_sections"]},
        diagnosis_sections=frozenset(raw["diagnosis_sections"]),
        history_sections=frozenset(raw["history_sections"]),
        long_term_drugs=tuple(raw["long_term_drugs"]),
        tobacco={k: tuple(v) for k, v in raw["tobacco"].items()},
        combinations=tuple(raw["combinations"]),
        generic_codes=dict(raw["generic_codes"]),
        finding_prefixes=tuple(raw["finding_prefixes"]),
        procedure_words=frozenset(raw["procedure_words"]),
        implied_readings=tuple((r["mention"], re.compile(r["note_says"], re.I), r["read_as"])
                               for r in raw["implied_readings"]),
        integral_to=tuple(raw.get("integral_to", ())),
        anatomy_before={k: frozenset(v) for k, v in raw.get("anatomy_before", {}).items()},
        narrative_sections=frozenset(raw.get("narrative_sections", ())),
        needs_words={k: re.compile(v, re.I) for k, v in raw.get("needs_words", {}).items()},
        needs_codes=tuple(raw.get("needs_codes", ())),
        pregnancy=tuple(raw.get("pregnancy", ())),
        organism_as_cause=dict(raw.get("organism_as_cause", {})),
    )


@dataclass
class NoteView:
    """The note's text and where its sections are, for the rules to read."""

    text: str
    mentions: Sequence[Mention]
    _starts: list[int] = field(default_factory=list)
    _sections: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        ordered = sorted(self.mentions, key=lambda m: m.entity.start)
        self._starts = [m.entity.start for m in ordered]
        self._sections = [m.entity.section for m in ordered]

    def section_at(self, offset: int) -> str | None:
        """Section of the nearest mention starting at or before ``offset``."""
        i = bisect_right(self._starts, offset) - 1
        return self._sections[i] if i >= 0 else None

    def window(self, evidence: Evidence, size: int = WINDOW) -> str:
        """Lower-case text around a piece of evidence."""
        return self.text[max(0, evidence.start - size): evidence.end + size].lower()


@dataclass
class ConventionResult:
    """The reviewed main list, the evidence-free "consider" list and the exclusions."""

    codes: list[CodeSuggestion]
    consider: list[CodeSuggestion]
    excluded: list[ExcludedCode]


#: Categories that take as many codes as the note documents complications (Guidelines I.C.4.a).
_MANY_PER_CATEGORY = ("E08", "E09", "E10", "E11", "E13")

_TYPE_1 = re.compile(r"\btype\s*(?:1|i|one)\b(?!\s*(?:and|or|/)\s*(?:2|ii|two)\b)"
                     r"(?=[^.\n]{0,30}diabet)|\bdiabet\w*[^.\n]{0,30}\btype\s*(?:1|i|one)\b"
                     r"|\bjuvenile[- ]onset diabet|\biddm\b|\bt1dm?\b", re.I)
_TYPE_2 = re.compile(r"\btype\s*(?:2|ii|two)\b(?=[^.\n]{0,30}diabet)"
                     r"|\bdiabet\w*[^.\n]{0,30}\btype\s*(?:2|ii|two)\b|\bniddm\b|\bt2dm?\b",
                     re.I)


def _phrase_pattern(phrases: Sequence[str]) -> re.Pattern[str]:
    ordered = sorted(phrases, key=len, reverse=True)
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(p) for p in ordered) + r")(?!\w)", re.I)


def _suggestion(kb: CodeKnowledgeBase, code: str, score: float, evidence: list[Evidence],
                prompt: str) -> CodeSuggestion | None:
    entry = kb.get("icd10cm", code)
    if entry is None or not entry.billable:
        return None
    return CodeSuggestion(entry.code, "icd10cm", entry.description, round(score, 4), True,
                          list(evidence), [prompt], [])



class ReviewBase:
    """One pass of the conventions over a note's codes: its state and helpers (the rule
    groups subclass it: :mod:`~medcode_nlp.rules.site_rules`, :mod:`~medcode_nlp.rules.status_rules`,
    :mod:`~medcode_nlp.rules.symptom_rules`)."""

    def __init__(self, kb: CodeKnowledgeBase, note: NoteView, codes: list[CodeSuggestion],
                 excluded: list[ExcludedCode], setting: str) -> None:
        self.kb = kb
        self.note = note
        self.setting = setting
        self.codes = list(codes)
        self.excluded = list(excluded)
        self.rules = rules()
        self.linked: set[tuple[str, tuple[int, int]]] = set()  # (code, span) the Index gave

    # ------------------------------------------------------------------ helpers
    def cm(self) -> list[CodeSuggestion]:
        return [c for c in self.codes if c.system == "icd10cm"]

    def find(self, prefix: str) -> list[CodeSuggestion]:
        key = code_key(prefix)
        return [c for c in self.cm() if code_key(c.code).startswith(key)]

    def has(self, code: str) -> bool:
        return any(c.system == "icd10cm" and c.code == code for c in self.codes)

    def drop(self, suggestion: CodeSuggestion, reason: str) -> None:
        if suggestion in self.codes:
            self.codes.remove(suggestion)
            self.excluded.append(ExcludedCode(suggestion.code, suggestion.system, reason,
                                              list(suggestion.evidence), suggestion.score))

    def add(self, suggestion: CodeSuggestion | None) -> None:
        if suggestion is None:
            return
        for existing in self.codes:
            if existing.system == suggestion.system and existing.code == suggestion.code:
                existing.score = max(existing.score, suggestion.score)
                existing.evidence.extend(e for e in suggestion.evidence
                                         if e not in existing.evidence)
                existing.prompts.extend(p for p in suggestion.prompts if p not in existing.prompts)
                return
        self.codes.append(suggestion)

    def sections_of(self, suggestion: CodeSuggestion) -> set[str | None]:
        return {self.note.section_at(e.start) for e in suggestion.evidence}



def make_candidate(kb: CodeKnowledgeBase, code: str, score: float) -> Candidate | None:
    """A Candidate for an ICD-10-CM code of the knowledge base (None when unknown)."""
    entry = kb.get("icd10cm", code)
    if entry is None:
        return None
    return Candidate(entry.code, "icd10cm", entry.description, score, entry.billable)

