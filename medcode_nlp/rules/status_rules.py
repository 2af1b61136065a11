"""Convention rules on status codes: tobacco use, long-term drugs, dialysis, diabetes type."""

from __future__ import annotations

import re

from medcode_nlp.rules.review import (
    _DIALYSIS,
    _DIALYSIS_TOPIC_AFTER,
    _DIALYSIS_TOPIC_BEFORE,
    _NEGATION_BEFORE,
    _TYPE_1,
    _TYPE_2,
    DRUG_CONFIDENCE,
    TOBACCO_CONFIDENCE,
    _phrase_pattern,
    _suggestion,
)
from medcode_nlp.rules.site_rules import SiteRules
from medcode_nlp.schema import Evidence


class StatusRules(SiteRules):
    """Rules adding or fixing the status codes a note documents."""

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
