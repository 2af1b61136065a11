"""Convention rules on what causes a condition: the organism of an infection coded at its
site, and one neoplasm coded once (no unspecified tumour or history code beside a current one)."""

from __future__ import annotations

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.rules.guidelines import history_code
from medcode_nlp.rules.pregnancy_rules import PregnancyRules
from medcode_nlp.rules.review import _suggestion

#: A neoplasm code that names neither behaviour nor site: the tumour another code names.
_UNSPECIFIED_NEOPLASMS = ("D49.9", "D48.9", "D36.9")


class EtiologyRules(PregnancyRules):
    """Organisms as causes, and a neoplasm coded once."""

    def organism_as_cause(self) -> None:
        """'MRSA' beside a coded infection site (bacteremia, UTI, cellulitis ...) is the cause
        of that condition (B95.62), not an infection of unspecified site (A49.02, whose
        Excludes1 lists B95-B96 and bacteremia NOS)."""
        table = self.rules.organism_as_cause
        sites = tuple(code_key(p) for p in table.get("sites", ()))
        if not any(code_key(c.code).startswith(sites) for c in self.cm()):
            return
        for suggestion in list(self.cm()):
            cause = table.get("codes", {}).get(suggestion.code)
            if cause is None:
                continue
            replacement = _suggestion(self.kb, cause, suggestion.score, suggestion.evidence,
                                      "the organism of an infection coded at its site "
                                      "(B95-B96, 'use additional code to identify the agent')")
            if replacement is None:
                continue
            self.drop(suggestion, f"the note codes the infection's site: the organism is "
                      f"coded as its cause, {cause}")
            self.add(replacement)

    def one_neoplasm(self) -> None:
        """An unspecified tumour beside a coded neoplasm is that neoplasm; a personal history
        of a malignancy the note codes as current is not history (Guidelines I.C.2.d)."""
        neoplasms = [c for c in self.cm() if c.code[0] == "C"
                     or (c.code[0] == "D" and c.code[1:3].isdigit() and int(c.code[1:3]) <= 48)]
        for suggestion in list(self.cm()):
            others = [n for n in neoplasms if n is not suggestion and n in self.codes]
            if suggestion.code in _UNSPECIFIED_NEOPLASMS and others:
                self.drop(suggestion, f"the tumour is coded as {others[0].code}")
            elif suggestion.code.startswith("Z85") and any(
                    history_code("personal", n.code) == suggestion.code for n in others
                    if n.code[0] == "C" and n.code[:3] not in ("C77", "C78", "C79", "C80")):
                self.drop(suggestion, "the note codes this malignancy as current: no personal "
                          "history code beside it")
