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

The rule groups live beside this module (``review``: state and tables; ``site_rules``,
``status_rules``, ``symptom_rules``); this module runs them in order (:func:`apply_conventions`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from medcode_nlp.codesets.icd10cm import cites
from medcode_nlp.coding_rules import Mention, assertion_exclusion
from medcode_nlp.kb.store import CodeKnowledgeBase
from medcode_nlp.nlp.index_linking import link, shipped_tree
from medcode_nlp.nlp.lexicon import load_lexicon
from medcode_nlp.rules.guidelines import conflicts, history_code, make_billable
from medcode_nlp.schema import CodeSuggestion, Evidence, ExcludedCode

if TYPE_CHECKING:
    from medcode_nlp.codesets.icd10cm_index_tree import IndexTree

from medcode_nlp.rules.etiology_rules import EtiologyRules
from medcode_nlp.rules.review import (
    _MANY_PER_CATEGORY,
    EXPANSION_FLOOR,
    EXPANSION_WEIGHT,
    NOT_CODED_FROM,
    OUTPATIENT_PCS_PROMPT,
    SYMPTOM_CODES,
    ConventionResult,
    NoteView,
    _suggestion,
)


class _Review(EtiologyRules):
    """One pass of the conventions over a note's codes (every rule group)."""

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
            if found is None:  # "LBBB": walk the Index with what the abbreviation stands for
                found = next((hit for expansion in _expansions(entity.text)
                              if (hit := link(tree, self.kb, expansion, mention.context))), None)
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
        seen = {first.code}
        while (earlier := self._coded_first(first, candidates)).code not in seen:
            first = earlier  # D63.1 -> N18.4 -> I12.9: follow the code-first chain
            seen.add(first.code)
        self.codes.remove(first)
        self.codes.insert(0, first)



def _expansions(said: str) -> tuple[str, ...]:
    """What an abbreviation of the lexicon stands for (nothing for other words)."""
    entry = load_lexicon().lookup(said.strip())
    return entry.expansions if entry is not None and entry.kind == "abbreviation" else ()


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
        review.organism_as_cause()
        review.one_neoplasm()
        review.named_in_combination()
        review.combination_consistency()
        review.excluded_unspecified()
        review.integral_symptoms()
        review.modifying_symptoms()
        consider.extend(review.statement_first())
        review.pregnancy_chapter()
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
