"""Convention rules on signs and symptoms: integral to a coded diagnosis, explained by the diagnostic statement, modifying symptoms."""

from __future__ import annotations

import re

from medcode_nlp.nlp.index_linking import site_words
from medcode_nlp.rules.review import SYMPTOM_CODES
from medcode_nlp.rules.status_rules import StatusRules
from medcode_nlp.schema import CodeSuggestion


class SymptomRules(StatusRules):
    """Rules dropping signs and symptoms a diagnosis explains."""

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
