"""Convention rules for a pregnant or postpartum patient: Chapter 15 codes first.

ICD-10-CM Guidelines I.C.15.a: a condition of a pregnant (or puerperal) patient is taken to
complicate the pregnancy unless the provider says it is incidental; the Chapter 15 code
("Diseases of the skin ... complicating pregnancy, second trimester") comes first and the
condition's own code follows it as the use-additional code."""

from __future__ import annotations

import re

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.rules.review import _suggestion
from medcode_nlp.rules.symptom_rules import SymptomRules
from medcode_nlp.schema import Evidence

_WEEKS = re.compile(r"\b(\d{1,2})(?:\s*(?:\+|and)?\s*\d/7)?\s*(?:-\s*)?(?:weeks?|wks?)\b"
                    r"[^.\n]{0,30}?\b(?:pregnan|gestation|gestational|intrauterine)\w*", re.I)
_PREGNANT = re.compile(r"\b(?:is|currently|she's|now|being)\s+(?:\w+\s+)?pregnant\b"
                       r"|\bintrauterine pregnancy\b|\b(?:first|second|third|1st|2nd|3rd)\s+"
                       r"trimester\b|\bweeks?\s+(?:of\s+)?(?:gestation|pregnan)|\bgestational age\b"
                       r"|\bEGA\b|\bpregnant (?:female|woman|patient)\b", re.I)
_MONTHS = re.compile(r"\b(\d{1,2})\s*(?:-\s*)?months?'?\s+(?:pregnant|gestation|of pregnancy)", re.I)
_NOT_PREGNANT = re.compile(r"\b(?:not|never|no longer)\s+(?:\w+\s+)?pregnant\b", re.I)
_POSTPARTUM = re.compile(r"\bpost-?\s?partum\b|\bpuerperium\b|\bpuerperal\b|\b\d+\s*(?:weeks?|days?)"
                         r"\s+(?:after|following|since|status post|s/p)\s+(?:\w+\s+){0,2}"
                         r"(?:delivery|birth|c-section|cesarean)", re.I)
_TRIMESTER_WORDS = {"first": "1", "1st": "1", "second": "2", "2nd": "2", "third": "3", "3rd": "3"}
_TRIMESTER = re.compile(r"\b(first|second|third|1st|2nd|3rd)\s+trimester\b", re.I)


def obstetric_state(text: str) -> tuple[str, str, Evidence] | None:
    """("pregnancy", trimester digit or "9", evidence) or ("puerperium", "", evidence) when the
    note documents a current pregnancy or the puerperium; else None."""
    post = _POSTPARTUM.search(text)
    if post is not None:
        return "puerperium", "", Evidence(post.start(), post.end(), post.group(0))
    if _NOT_PREGNANT.search(text):
        return None
    weeks = _WEEKS.search(text)
    said = _TRIMESTER.search(text)
    found = weeks or said or _MONTHS.search(text) or _PREGNANT.search(text)
    if found is None:
        return None
    trimester = "9"
    if said is not None:
        trimester = _TRIMESTER_WORDS[said.group(1).lower()]
    elif weeks is not None:
        week = int(weeks.group(1))
        trimester = "1" if week < 14 else "2" if week < 28 else "3" if week <= 44 else "9"
    elif (months := _MONTHS.search(text)) is not None:
        month = int(months.group(1))
        trimester = "1" if month <= 3 else "2" if month <= 6 else "3" if month <= 10 else "9"
    return "pregnancy", trimester, Evidence(found.start(), found.end(), found.group(0))


class PregnancyRules(SymptomRules):
    """Chapter 15 codes for the conditions of a pregnant or postpartum patient."""

    def pregnancy_chapter(self) -> None:
        """Each condition a Chapter 15 category covers gets that code, listed first; the
        condition's code stays beside it (hemorrhoids are replaced: O22.4 / O87.2 name them)."""
        if any(c.code.startswith("O") for c in self.cm()):
            return  # the note is already coded in Chapter 15: leave its choice alone
        state = obstetric_state(self.note.text)
        if state is None:
            return
        kind, trimester, said = state
        for suggestion in list(self.cm()):
            rule = next((r for r in self.rules.pregnancy
                         if code_key(suggestion.code).startswith(
                             tuple(code_key(p) for p in r["prefixes"]))), None)
            if rule is None:
                continue
            code = rule[kind] if kind == "puerperium" else self._trimester_code(rule[kind],
                                                                                 trimester)
            if code is None:
                continue
            obstetric = _suggestion(
                self.kb, code, suggestion.score, [said, *suggestion.evidence],
                f"the patient is {'postpartum' if kind == 'puerperium' else 'pregnant'}: a "
                "condition is taken to complicate it unless the provider says it is incidental "
                "(ICD-10-CM Guidelines I.C.15.a)")
            if obstetric is None:
                continue
            if rule.get("replaces"):
                self.drop(suggestion, f"{obstetric.code} ({obstetric.description}) names it")
            obstetric.score = round(min(1.0, suggestion.score + 0.001), 4)  # listed before it
            self.add(obstetric)

    def _trimester_code(self, stem: str, trimester: str) -> str | None:
        """The billable code of a pregnancy stem for the trimester ('O99.71' + '2')."""
        for candidate in (f"{stem}{trimester}", f"{stem}9"):
            entry = self.kb.get("icd10cm", candidate)
            if entry is not None and entry.billable:
                return entry.code
        return None
