"""Convention rules on sites and mentions: one code per mention, procedure words, generic codes, laterality, one episode per injury."""

from __future__ import annotations

import re

from medcode_nlp.codesets.icd10cm import cites
from medcode_nlp.codesets.registry import code_key
from medcode_nlp.nlp.components.matcher import singular
from medcode_nlp.rules.review import _SIDES, ReviewBase
from medcode_nlp.schema import CodeSuggestion, Evidence


class SiteRules(ReviewBase):
    """Rules on what a mention names: its site, side and episode."""

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
        for weaker in [c for c in cm if c in self.codes]:
            self._split_between(weaker, {(e.start, e.end) for e in weaker.evidence},
                                [c for c in self.cm() if c is not weaker])

    def _split_between(self, weaker: CodeSuggestion, spans: set[tuple[int, int]],
                       others: list[CodeSuggestion]) -> None:
        """A code of several mentions, each of which a better code already names ('Disorder
        of kidney' from 'polycystic kidney disease' and 'renal transplant'), goes."""
        if len(spans) < 2 or self._index_linked(weaker):
            return
        owners = []
        for span in spans:
            owner = next((c for c in others if len(c.evidence) < len(spans) and not self._paired(c.code, weaker.code)
                          and span in {(e.start, e.end) for e in c.evidence}), None)
            if owner is None:
                return
            owners.append(owner.code)
        self.drop(weaker, f"each of its mentions is coded more exactly ({', '.join(sorted(set(owners)))}): "
                  "one mention, one code")

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
                   or self._anatomy(e) or self._exam_label(e) for e in suggestion.evidence):
                said = self.note.text[suggestion.evidence[0].start:suggestion.evidence[0].end]
                self.drop(suggestion, f"'{said.lower()}' names a procedure, its care or anatomy "
                          "here, not a condition: code the condition the note documents")

    def _exam_label(self, evidence: Evidence) -> bool:
        """'MS: A & O x 3' in an exam is the label of a system examined (mental status), not a
        condition's abbreviation."""
        said = evidence.text.strip()
        return (said.isupper() and len(said) <= 4
                and self.note.text[evidence.end:evidence.end + 2].lstrip().startswith(":")
                and self.note.section_at(evidence.start) in ("physical_exam", "review_of_systems"))

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
