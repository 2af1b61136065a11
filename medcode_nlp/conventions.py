"""ICD-10-CM Tabular conventions and Official Guidelines applied to a ranked code list.

The ranker proposes codes mention by mention; a certified coder then reads the note as a
whole. This module is that second reading, one small rule per convention, each decision
visible in the result (a dropped code goes to ``excluded`` with its reason, a changed code
carries a prompt saying why):

- evidence first: a code no span of the note supports leaves the main list for ``consider``;
- FY2026 expansions: a mention linked to a category (R05 "cough") keeps its billable
  completion (R05.9) when the document stage dropped it;
- laterality: an "unspecified side" code becomes its right/left/bilateral sibling when the
  evidence says so;
- tobacco: current use -> F17.2x, former use -> Z87.891 (never both);
- use-additional long-term drug codes the note documents (Z79.4, Z79.84, Z79.01); chronic
  kidney disease on dialysis is N18.6 with Z99.2;
- combination codes ("with" convention: E11.65, E11.22, I12.x, I11.0, I13.x, J44.0/J44.1,
  J96.x1/x2 ...) replace their parts;
- codes that name no condition (R69, B99.9) and R52 for pain with a site are dropped, and so
  are codes read only from a word that names the procedure ("anesthesia", "wound");
- signs and symptoms are dropped when the note's diagnostic statement (impression,
  assessment, final diagnoses) codes a definitive diagnosis and does not list them
  (Guidelines I.B.4-I.B.5);
- ICD-10-PCS codes leave the main list of an outpatient note for ``consider`` (PCS is the
  inpatient procedure system), unless the caller asked for ICD-10-PCS by name;
- the first-listed diagnosis (from the diagnostic statement, else the reason for the
  encounter) goes first.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from medcode_nlp.codesets.icd10cm import cites
from medcode_nlp.coding_rules import Mention, assertion_exclusion
from medcode_nlp.kb.store import CodeKnowledgeBase, code_key
from medcode_nlp.nlp.components.matcher import singular
from medcode_nlp.nlp.index_linking import link, shipped_tree, site_words
from medcode_nlp.rules.guidelines import conflicts, history_code, make_billable
from medcode_nlp.schema import Candidate, CodeSuggestion, Evidence, ExcludedCode

if TYPE_CHECKING:
    from medcode_nlp.codesets.icd10cm_index_tree import IndexTree

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


class _Review:
    """One pass of the conventions over a note's codes."""

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

    # ------------------------------------------------------------------ rules
    def restore_expansions(self, mentions: Sequence[Mention]) -> None:
        """A mention linked to a category keeps the category's billable completion."""
        for mention in mentions:
            entity = mention.entity
            if entity.label != "PROBLEM" or not entity.candidates:
                continue
            if entity.assertion not in ("present", "uncertain"):
                continue
            if assertion_exclusion(mention, self.setting) is not None:
                continue
            top = entity.candidates[0]
            if top.system != "icd10cm" or top.billable or top.score < EXPANSION_FLOOR:
                continue
            billable, prompts = make_billable(self.kb, top, mention.context)
            if not billable.billable or self.find(billable.code[:3]):
                continue
            self.add(CodeSuggestion(
                billable.code, "icd10cm", billable.description,
                round(top.score * EXPANSION_WEIGHT, 4), True,
                [Evidence(entity.start, entity.end, entity.text)],
                [*prompts, f"the mention names category {top.code}; completed to a billable "
                 "FY2026 code"], []))

    def index_links(self, mentions: Sequence[Mention], tree: IndexTree) -> None:
        """Each codable diagnosis mention gets the code the Alphabetic Index gives it; the
        ranker's codes that only that mention supports give way to it."""
        for mention in mentions:
            entity = mention.entity
            if entity.label != "PROBLEM" or not self._codable(mention):
                continue
            found = link(tree, self.kb, self._reading(entity.text), mention.context)
            if found is None:
                continue
            span = (entity.start, entity.end)
            rivals = [c for c in self.cm() if {(e.start, e.end) for e in c.evidence} == {span}]
            if entity.assertion == "historical" and any(
                    r.code.startswith("Z8") or r.code == history_code("personal", found.code)
                    for r in rivals):
                continue  # a past condition keeps its personal-history code (Z8x, I25.2)
            if not rivals and (entity.section in self.rules.history_sections
                               or entity.section in NOT_CODED_FROM):
                continue  # a coder does not code a history, review or exam line on its own
            for rival in rivals:
                if rival.code != found.code and not self._paired(rival.code, found.code):
                    self.drop(rival, f"the Alphabetic Index gives {found.code} for this mention")
            self.linked.add((found.code, span))
            self.add(CodeSuggestion(
                found.code, "icd10cm", found.description,
                max([found.confidence, *(r.score for r in rivals if r.code == found.code)]),
                True, [Evidence(entity.start, entity.end, entity.text)], found.prompts(), []))

    def _reading(self, said: str) -> str:
        """The full term a bare word stands for in this note ('reflux' in a urinary tract
        study is vesicoureteral reflux), else the words as said."""
        for bare, note_says, read_as in self.rules.implied_readings:
            if said.lower().strip() == bare and note_says.search(self.note.text):
                return read_as
        return said

    def _codable(self, mention: Mention) -> bool:
        assertion = mention.entity.assertion
        if assertion in ("negated", "hypothetical", "family"):
            return False
        if assertion == "uncertain" and self.setting == "outpatient":
            return False
        return assertion_exclusion(mention, self.setting) is None

    def one_code_per_mention(self) -> None:
        """A code whose every piece of evidence better supports another code goes: a
        mention names one condition (combination codes are added later, on purpose)."""
        cm = sorted(self.cm(), key=lambda c: -c.score)
        for i, weaker in enumerate(cm):
            spans = {(e.start, e.end) for e in weaker.evidence}
            for stronger in cm[:i]:
                if self._paired(stronger.code, weaker.code):
                    continue  # "use additional code" / "code first": both are reported
                if self._index_linked(weaker) and not self._index_linked(stronger):
                    continue  # the Index's code for a mention outranks the ranker's
                if stronger in self.codes and spans <= {(e.start, e.end) for e in stronger.evidence}:
                    self.drop(weaker, f"same evidence as {stronger.code}, which fits it better: "
                              "one mention, one code")
                    break

    def _index_linked(self, suggestion: CodeSuggestion) -> bool:
        return any((suggestion.code, (e.start, e.end)) in self.linked
                   for e in suggestion.evidence)

    def _paired(self, first: str, second: str) -> bool:
        """Whether the Tabular asks for ``second`` beside ``first`` (or the reverse)."""
        for code, other in ((first, second), (second, first)):
            for ancestor in (code, *self.kb.ancestors("icd10cm", code)):
                entry = self.kb.get("icd10cm", ancestor)
                if entry is None:
                    continue
                if any(cites(note, other) for note in (*entry.use_additional, *entry.code_first)):
                    return True
        return False

    def drop_procedure_words(self) -> None:
        """A code found only in words that, alone, name the procedure ('ANESTHESIA: general',
        'the wound was closed') and not a condition of the patient."""
        for suggestion in list(self.cm()):
            if all(self.note.text[e.start:e.end].lower().strip() in self.rules.procedure_words
                   or self._anatomy(e) for e in suggestion.evidence):
                said = self.note.text[suggestion.evidence[0].start:suggestion.evidence[0].end]
                self.drop(suggestion, f"'{said.lower()}' names a procedure, its care or anatomy "
                          "here, not a condition: code the condition the note documents")

    def _anatomy(self, evidence: Evidence) -> bool:
        """'nasal cavities': the word before the evidence makes it a part of the body."""
        said = singular(evidence.text.lower().strip())
        before = re.findall(r"[a-z]+", self.note.text[max(0, evidence.start - 30):evidence.start]
                            .lower())
        return bool(before) and before[-1] in self.rules.anatomy_before.get(said, ())

    def drop_allergy_reactions(self) -> None:
        """A condition named only under Allergies ('heparin causing thrombocytopenia') is the
        reaction of an allergy, not a diagnosis of this encounter."""
        for suggestion in list(self.cm()):
            if suggestion.code.startswith("Z88") or not suggestion.evidence:
                continue
            if self.sections_of(suggestion) == {"allergies"}:
                self.drop(suggestion, "named under Allergies: the reaction of an allergy, not a "
                          "condition treated in this encounter")

    def drop_generic(self) -> None:
        """Codes that name no condition, and codes whose sense the note's words near the
        evidence do not bear out ('transient' aphasia is no homelessness)."""
        for suggestion in list(self.cm()):
            needs = self.rules.needs_words.get(suggestion.code)
            if needs is not None and not any(needs.search(self.note.window(e, 60))
                                             for e in suggestion.evidence):
                self.drop(suggestion, f"the words near the evidence do not say what "
                          f"{suggestion.code} ({suggestion.description}) means")
                continue
            reason = self.rules.generic_codes.get(suggestion.code)
            if reason is None:
                continue
            if suggestion.code == "R52" and any(
                    re.search(r"\b(generali[sz]ed|diffuse|all over|whole body|body aches?)\b",
                              self.note.window(e, 30)) for e in suggestion.evidence):
                continue
            if suggestion.code == "G89.18" and any(
                    re.search(r"post-?(operative|procedural|op)\w* pain", self.note.window(e))
                    for e in suggestion.evidence):
                continue
            self.drop(suggestion, reason)

    def lateralize(self) -> None:
        """Replace an 'unspecified side' code by the side its evidence names."""
        for i, suggestion in enumerate(self.codes):
            if suggestion.system != "icd10cm" or "unspecified" not in suggestion.description.lower():
                continue
            side = self._side(suggestion)
            if side is None:
                continue
            sibling = self._sibling_for_side(suggestion.code, side)
            if sibling is None and side == "bilateral":
                self._right_and_left(i, suggestion)
                continue
            if sibling is None:
                continue
            entry = self.kb.get("icd10cm", sibling)
            assert entry is not None
            self.codes[i] = CodeSuggestion(
                entry.code, "icd10cm", entry.description, suggestion.score, True,
                suggestion.evidence, [*suggestion.prompts,
                                      f"laterality from the note ({side}): was {suggestion.code}"],
                suggestion.conflicts)

    def _right_and_left(self, i: int, suggestion: CodeSuggestion) -> None:
        """Both sides documented and no bilateral code: the right and the left code
        (Guidelines I.B.13)."""
        right = self._sibling_for_side(suggestion.code, "right")
        left = self._sibling_for_side(suggestion.code, "left")
        if right is None or left is None:
            return
        prompt = (f"both sides documented and no bilateral code: right and left coded "
                  f"(was {suggestion.code})")
        for position, code in ((i, right), (None, left)):
            entry = self.kb.get("icd10cm", code)
            assert entry is not None
            sided = CodeSuggestion(entry.code, "icd10cm", entry.description, suggestion.score,
                                   True, suggestion.evidence, [*suggestion.prompts, prompt],
                                   suggestion.conflicts)
            if position is not None:
                self.codes[position] = sided
            elif not self.has(code):
                self.codes.append(sided)

    def one_episode(self) -> None:
        """One 7th character per injury: codes that differ only in it keep the best scored."""
        best: dict[str, CodeSuggestion] = {}
        for suggestion in self.cm():
            key = code_key(suggestion.code)
            if len(key) != 7 or key[0] not in "ST" or not key[-1].isalpha():
                continue
            other = best.get(key[:6])
            if other is None:
                best[key[:6]] = suggestion
                continue
            keep, lose = (other, suggestion) if other.score >= suggestion.score else (suggestion, other)
            best[key[:6]] = keep
            self.drop(lose, f"one episode of care per injury: coded as {keep.code}")

    def _side(self, suggestion: CodeSuggestion) -> str | None:
        found: set[str] = set()
        for evidence in suggestion.evidence:
            words = set(re.findall(r"[a-z]+", evidence.text.lower()))
            near = set(re.findall(r"[a-z]+", self.note.window(evidence, 40)))
            for pool in (words, near):
                sides = {s for s in _SIDES if s in pool} | ({"bilateral"} if "both" in pool else set())
                if sides:
                    found |= sides
                    break
        if "bilateral" in found or {"right", "left"} <= found:
            return "bilateral"
        return found.pop() if len(found) == 1 else None

    def _sibling_for_side(self, code: str, side: str) -> str | None:
        entry = self.kb.get("icd10cm", code)
        if entry is None or entry.parent is None:
            return None
        text = entry.description.lower()
        targets = set()
        for match in re.finditer(r"unspecified", text):
            targets.add(text[:match.start()] + side + text[match.end():])
        siblings = self.kb.children("icd10cm", entry.parent)
        parent = self.kb.get("icd10cm", entry.parent)
        if len(code_key(code)) == 7 and parent is not None and parent.parent is not None:
            # the side is the 6th character, the 7th the episode: cousins, not siblings
            siblings = self.kb.billable_descendants("icd10cm", parent.parent, limit=300)
        for sibling in siblings:
            other = self.kb.get("icd10cm", sibling)
            if other is not None and other.billable and other.description.lower() in targets:
                return other.code
        return None

    def tobacco(self) -> None:
        """One tobacco code from what the note says about use: current, former or never."""
        text = self.note.text
        table = self.rules.tobacco
        taken: list[tuple[int, int]] = []
        hits: dict[str, list[re.Match[str]]] = {}
        for kind in ("exposure", "negative", "former", "current"):
            for match in _phrase_pattern(table[kind]).finditer(text):
                if any(s < match.end() and match.start() < e for s, e in taken):
                    continue
                if kind == "current" and _NEGATION_BEFORE.search(text[max(0, match.start() - 40):match.start()]):
                    continue
                taken.append((match.start(), match.end()))
                hits.setdefault(kind, []).append(match)
        hits.pop("exposure", None)  # someone else's smoking is not the patient's use
        if not hits:
            return
        existing = [c for c in self.cm() if c.code.startswith(("F17", "Z72.0", "Z87.891"))]
        if "current" in hits:
            match = hits["current"][0]
            window = text[max(0, match.start() - 60): match.end() + 60].lower()
            code = ("F17.220" if re.search(r"\b(chew|snuff|dip)", window) else
                    "F17.290" if re.search(r"\b(cigars?|pipe|vap\w*|e-cig\w*)\b", window) else
                    "F17.210")
            reason = "current tobacco use documented: coded as nicotine dependence (F17.2-)"
        elif "former" in hits:
            match, code = hits["former"][0], "Z87.891"
            reason = "former tobacco use documented: personal history of nicotine dependence"
        else:
            for suggestion in existing:
                self.drop(suggestion, "the note documents no tobacco use")
            return
        for suggestion in existing:
            if suggestion.code != code:
                self.drop(suggestion, reason)
        evidence = [Evidence(match.start(), match.end(), match.group())]
        self.add(_suggestion(self.kb, code, TOBACCO_CONFIDENCE, evidence, reason))

    def long_term_drugs(self) -> None:
        """Use-additional Z79 codes for long-term drugs the note documents."""
        text = self.note.text
        for rule in self.rules.long_term_drugs:
            needed = [c for prefix in rule["requires_prefix"] for c in self.find(prefix)]
            if rule["requires_prefix"] and not needed:
                continue
            for match in _phrase_pattern(rule["drugs"]).finditer(text):
                if self.note.section_at(match.start()) == "allergies":
                    continue
                if _NEGATION_BEFORE.search(text[max(0, match.start() - 40):match.start()]):
                    continue
                confidence = max((c.score for c in needed), default=DRUG_CONFIDENCE)
                self.add(_suggestion(
                    self.kb, rule["code"], min(confidence, 0.95),
                    [Evidence(match.start(), match.end(), match.group())],
                    f"use-additional code: long-term drug '{match.group()}' documented"))
                break

    def dialysis_status(self) -> None:
        """Chronic kidney disease on chronic dialysis is N18.6 (its inclusion term), with the
        use-additional dialysis status Z99.2."""
        text = self.note.text
        kidney = [c for c in self.cm() if c.code.startswith(("N18", "N19"))]
        found = None
        for match in _DIALYSIS.finditer(text):
            before = text[max(0, match.start() - 40):match.start()]
            if _NEGATION_BEFORE.search(before) or _DIALYSIS_TOPIC_BEFORE.search(before) or \
                    _DIALYSIS_TOPIC_AFTER.match(text[match.end():match.end() + 30]):
                continue  # "dialysis education", "discussed dialysis": not on dialysis
            found = match
            break
        if not kidney or found is None:
            return
        evidence = [Evidence(found.start(), found.end(), found.group())]
        for suggestion in kidney:
            if suggestion.code != "N18.6":
                esrd = _suggestion(self.kb, "N18.6", suggestion.score,
                                   [*suggestion.evidence, *evidence],
                                   f"'{found.group()}' documented: chronic kidney disease "
                                   "requiring chronic dialysis is N18.6 (Tabular inclusion term)")
                if esrd is not None:
                    self.drop(suggestion, "dialysis documented: coded as N18.6")
                    self.add(esrd)
        self.add(_suggestion(self.kb, "Z99.2", max(c.score for c in kidney), evidence,
                             "use-additional code at N18.6: dependence on renal dialysis"))

    def diabetes_type(self) -> None:
        """A note that documents type 1 diabetes (and no type 2) codes its diabetic
        complications in E10: E11 is only the Index's default when the type is not said."""
        text = self.note.text
        if not _TYPE_1.search(text) or _TYPE_2.search(text):
            return
        for suggestion in self.find("E11"):
            twin = _suggestion(self.kb, "E10" + suggestion.code[3:], suggestion.score,
                               suggestion.evidence, "the note documents type 1 diabetes: "
                               f"{suggestion.code} (type not said) coded in E10")
            if twin is not None:
                self.drop(suggestion, f"type 1 diabetes documented: coded as {twin.code}")
                self.add(twin)

    def combinations(self) -> None:
        """Combination codes replace the codes they combine ("with" convention)."""
        for rule in self.rules.combinations:
            bases = [c for code in rule["if"] for c in self.find(code) if c.code == code]
            if not bases:
                continue
            partners = [c for p in rule.get("and_any", []) for c in self.find(p)]
            if any(self.find(p) for p in rule.get("and_not", [])):
                continue
            if rule.get("and_all_any") and not any(self.find(p) for p in rule["and_all_any"]):
                continue
            words = rule.get("context", [])
            evidence = [e for c in bases for e in c.evidence]
            said = [w for w in words for e in evidence if w in self.note.window(e)]
            if rule.get("and_any") and not partners and not said:
                continue
            if not rule.get("and_any") and not said:
                continue
            pieces = bases + partners
            combined = _suggestion(
                self.kb, rule["code"], max(c.score for c in pieces),
                [e for c in pieces for e in c.evidence],
                "combination code: " + " + ".join(sorted({c.code for c in pieces} | set(said[:1])))
                + f" -> {rule['code']} (ICD-10-CM 'with' convention)")
            if combined is None:
                continue
            for code in rule.get("drop", []):
                for suggestion in self.find(code):
                    if suggestion.code == code and suggestion.code != rule["code"]:
                        self.drop(suggestion, f"combined into {rule['code']}")
            self.add(combined)

    def combination_consistency(self) -> None:
        """A combination code whose partner code is not on the list gives way to the one the
        list supports (I12.0 without N18.5/N18.6 -> I12.9)."""
        for rule in self.rules.needs_codes:
            for suggestion in [c for c in self.cm() if c.code == rule["code"]]:
                if any(self.has(code) for code in rule["needs_any"]):
                    continue
                self.drop(suggestion, rule["why"])
                if not self.has(rule["else"]):
                    self.add(_suggestion(self.kb, rule["else"], suggestion.score,
                                         suggestion.evidence, f"{rule['why']}: coded as "
                                         f"{rule['else']}"))

    def named_in_combination(self) -> None:
        """A code whose words another code's title already carries ('with hyperglycemia')
        goes, and so does an unspecified code beside a specific one of its category."""
        cm = self.cm()
        for suggestion in list(cm):
            spoken = {e.text.lower().strip() for e in suggestion.evidence}
            for other in cm:
                if other is suggestion or other not in self.codes:
                    continue
                title = other.description.lower()
                if suggestion.code[0] == "R" and other.code[0] != "R" and any(
                        len(s) > 4 and re.search(rf"\bwith {re.escape(s)}\b", title) for s in spoken):
                    self.drop(suggestion, f"{other.code} already says it: {other.description}")
                    break
                if (other.code[:3] == suggestion.code[:3]
                        and (other.code[:5] == suggestion.code[:5] or (
                            not other.code.startswith(_MANY_PER_CATEGORY)
                            and self._shares_words(suggestion, other)))
                        and suggestion.description.lower().count("unspecified")
                        > title.count("unspecified")):
                    self.drop(suggestion, f"{other.code} in the same category is more specific")
                    break

    def excluded_unspecified(self) -> None:
        """Of two codes the Tabular's Excludes1 keeps apart, the unspecified one goes
        ('Depression, unspecified' beside 'Major depressive disorder, recurrent')."""
        for suggestion in list(self.cm()):
            title = suggestion.description.lower()
            if "unspecified" not in title:
                continue
            chain = [suggestion.code, *self.kb.ancestors("icd10cm", suggestion.code)]
            notes = [n for a in chain if (e := self.kb.get("icd10cm", a)) for n in e.excludes1]
            for other in self.cm():
                if other is suggestion or other.code[0] != suggestion.code[0] or \
                        other.description.lower().count("unspecified") >= title.count("unspecified"):
                    continue
                if any(cites(note, other.code) for note in notes):
                    self.drop(suggestion, f"Excludes1: the note documents {other.code} "
                              f"({other.description}), which this unspecified code excludes")
                    break

    def _shares_words(self, first: CodeSuggestion, second: CodeSuggestion) -> bool:
        """Whether the evidence of two codes names the same thing (a shared word that is not
        a stop word): 'ischemic cardiac disease' and 'myocardial infarction' do not."""
        def said(c: CodeSuggestion) -> set[str]:
            return {w for e in c.evidence for w in re.findall(r"[a-z]{4,}", e.text.lower())}
        return bool(said(first) & said(second))

    def integral_symptoms(self) -> None:
        """Symptoms go when they are routine in a diagnosis coded for the note (table
        ``integral_to``), or when the diagnostic statement codes a definitive diagnosis."""
        self._integral_to_diagnosis()
        self._explained_by_statement()

    def _integral_to_diagnosis(self) -> None:
        for rule in self.rules.integral_to:
            diagnoses = [c for c in self.cm() if c.code.startswith(tuple(rule["diagnoses"]))]
            if not diagnoses:
                continue
            for suggestion in list(self.cm()):
                if not suggestion.code.startswith(tuple(rule["symptoms"])):
                    continue
                cause = next((d for d in diagnoses if d is not suggestion and (
                    not rule.get("same_site") or self._same_site(d, suggestion))), None)
                if cause is not None:
                    self.drop(suggestion, f"{rule['why']}: integral to {cause.code}, not coded "
                              "separately (ICD-10-CM Guidelines I.B.5)")

    def _same_site(self, first: CodeSuggestion, second: CodeSuggestion) -> bool:
        sites = site_words(self.kb)
        words = [set(re.findall(r"[a-z]+", c.description.lower())) & sites
                 for c in (first, second)]
        return bool(words[0] & words[1])

    def _explained_by_statement(self) -> None:
        diagnosis = self.rules.diagnosis_sections
        definitive = [c for c in self.cm() if c.code[0] not in "RZ"
                      and self.sections_of(c) & diagnosis]
        if not definitive:
            return
        for suggestion in list(self.cm()):
            symptom = suggestion.code[0] == "R" or suggestion.code.startswith(SYMPTOM_CODES)
            if not symptom or suggestion.code.startswith(self.rules.finding_prefixes):
                continue
            if self.sections_of(suggestion) & diagnosis:
                continue
            self.drop(suggestion, "sign or symptom explained by the diagnosis in the note's "
                      f"diagnostic statement ({definitive[0].code}); ICD-10-CM Guidelines I.B.5")

    def modifying_symptoms(self) -> None:
        """A symptom word that only ever modifies the diagnosis after it ('febrile urinary
        tract infection') is part of that diagnosis, not a condition of its own."""
        starts = {e.start: c for c in self.cm() if c.code[0] != "R" for e in c.evidence}
        for suggestion in list(self.cm()):
            if suggestion.code[0] != "R" or not suggestion.evidence:
                continue
            heads = []
            for e in suggestion.evidence:
                gap = self.note.text[e.end:e.end + 3]
                after = e.end + len(gap) - len(gap.lstrip(" "))
                if after == e.end or after not in starts:
                    break
                heads.append(starts[after])
            else:
                self.drop(suggestion, f"describes the diagnosis it qualifies ({heads[0].code}), "
                          "not a separate condition")

    def statement_first(self) -> list[CodeSuggestion]:
        """When the note has a diagnostic statement that codes a condition, a condition found
        only in its narrative (HPI, exam, course, plan, medications) leaves the main list for
        ``consider``: the coder codes from the statement and reads the body for detail."""
        stated = [c for c in self.cm() if self.sections_of(c) & self.rules.diagnosis_sections
                  and c.code[0] != "Z"]
        if not stated:
            return []
        moved = []
        for suggestion in list(self.cm()):
            sections = self.sections_of(suggestion)
            if suggestion.code[0] in "UVWXYZ" or not sections <= self.rules.narrative_sections:
                continue
            self.codes.remove(suggestion)
            suggestion.prompts.append("found only in the note's narrative, not in its diagnostic "
                                      "statement: code it if it affects this encounter's care")
            moved.append(suggestion)
        return moved

    def _coded_first(self, chosen: CodeSuggestion, candidates: list[CodeSuggestion]
                     ) -> CodeSuggestion:
        """The code the Tabular says to code first before ``chosen`` (I12.9 before N18.4,
        G30.9 before F02.B0), else ``chosen``."""
        for ancestor in (chosen.code, *self.kb.ancestors("icd10cm", chosen.code)):
            entry = self.kb.get("icd10cm", ancestor)
            for note in entry.code_first if entry is not None else ():
                for other in candidates:
                    if other is not chosen and cites(note, other.code):
                        return other
        return chosen

    def first_listed(self) -> None:
        """Move the first-listed diagnosis to the top of the list."""
        priority = self.rules.section_priority

        def key(c: CodeSuggestion) -> tuple[int, int, float]:
            ranks = [(priority.get(self.note.section_at(e.start) or "", 9), e.start)
                     for e in c.evidence] or [(9, 10**9)]
            best = min(ranks)
            return best[0], best[1], -c.score

        def symptom(c: CodeSuggestion) -> bool:
            return c.code[0] == "R" or c.code.startswith((*SYMPTOM_CODES, "M54.5", "M54.9"))

        candidates = [c for c in self.cm() if not c.code.startswith(("Z79", "Z87", "Z88", "Z86",
                                                                       "Z80", "Z82", "Z83", "Z84",
                                                                       "F17", "Z91", "Z92"))]
        if not candidates:
            return
        # a symptom is not first-listed when the note states a definitive diagnosis
        # (Guidelines IV.D, II.A)
        diagnosis = self.rules.diagnosis_sections
        stated = [c for c in candidates if not symptom(c) and self.sections_of(c) & diagnosis]
        if stated:  # symptoms the diagnostic statement itself lists stay in the running
            candidates = [c for c in candidates
                          if not symptom(c) or self.sections_of(c) & diagnosis]
        first = min(candidates, key=key)
        if key(first)[0] == 9:
            first = max(candidates, key=lambda c: c.score)
        first = self._coded_first(first, candidates)
        self.codes.remove(first)
        self.codes.insert(0, first)


def apply_conventions(
    kb: CodeKnowledgeBase,
    text: str,
    mentions: Sequence[Mention],
    codes: list[CodeSuggestion],
    excluded: list[ExcludedCode],
    setting: str = "outpatient",
    systems: Sequence[str] | None = None,
    index: bool = True,
) -> ConventionResult:
    """Review ranked codes the way a coder reads the note; see the module docstring.

    ``systems`` limits the result as in ``CodingOptions``: without ICD-10-CM only the
    evidence check applies; ``index=False`` turns Index linking off."""
    supported = {(c.system, c.code) for c in codes if c.evidence}
    consider = [c for c in codes if not c.evidence and (c.system, c.code) not in supported]
    for suggestion in consider:
        suggestion.prompts.append("no span of the note supports this code: consider it only "
                                  "if the note as a whole does")
    review = _Review(kb, NoteView(text, mentions), [c for c in codes if c.evidence], excluded,
                     setting)
    if systems is None or "icd10cm" in systems:
        tree = shipped_tree() if index else None
        if tree is not None:
            review.index_links(mentions, tree)
        review.restore_expansions(mentions)
        review.one_code_per_mention()
        review.drop_procedure_words()
        review.drop_allergy_reactions()
        review.drop_generic()
        review.lateralize()
        review.one_episode()
        review.tobacco()
        review.long_term_drugs()
        review.dialysis_status()
        review.diabetes_type()
        review.combinations()
        review.named_in_combination()
        review.combination_consistency()
        review.excluded_unspecified()
        review.integral_symptoms()
        review.modifying_symptoms()
        consider.extend(review.statement_first())
    if setting == "outpatient" and systems is None:  # asked for by name, PCS stays
        for suggestion in [c for c in review.codes if c.system == "icd10pcs"]:
            review.codes.remove(suggestion)
            suggestion.prompts.append(OUTPATIENT_PCS_PROMPT)
            consider.append(suggestion)
    review.codes.sort(key=lambda c: -c.score)
    review.first_listed()
    for suggestion in review.codes:
        suggestion.conflicts.clear()
    conflicts(kb, review.codes)
    final = {(c.system, c.code) for c in review.codes}
    consider = [c for c in consider if (c.system, c.code) not in final]
    kept_excluded = [x for x in review.excluded if (x.system, x.code) not in final]
    _true_reasons(kept_excluded, final)
    return ConventionResult(review.codes, consider, kept_excluded)


_CODED_AS = re.compile(r"coded as ([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)")


def _true_reasons(excluded: list[ExcludedCode], final: set[tuple[str, str]]) -> None:
    """A reason that says 'coded as X' names a code of the result, else says what became of X."""
    why = {(x.system, x.code): x.reason for x in excluded}
    for entry in excluded:
        match = _CODED_AS.search(entry.reason)
        if match is None or ("icd10cm", match.group(1)) in final:
            continue
        target = match.group(1)
        fate = why.get(("icd10cm", target))
        detail = f"{target} was dropped too: {fate}" if fate else f"{target} was not kept"
        entry.reason = f"{entry.reason[:match.start()]}{target} would apply ({detail})"


def make_candidate(kb: CodeKnowledgeBase, code: str, score: float) -> Candidate | None:
    """A Candidate for an ICD-10-CM code of the knowledge base (None when unknown)."""
    entry = kb.get("icd10cm", code)
    if entry is None:
        return None
    return Candidate(entry.code, "icd10cm", entry.description, score, entry.billable)
