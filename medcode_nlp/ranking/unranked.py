"""Confidence of candidates from code systems the ranker was not trained on (HCPCS, CPT, custom).

The shipped ranker learns from ICD-10-CM and ICD-10-PCS data only. A candidate of another
system gets a rule-based confidence from its n-gram similarity instead:

* 0 up to a similarity of 0.6, rising linearly to 0.9 for an exact alias match; a match on a
  derived head alias ("Walker" for "Walker, folding, wheeled, ...") counts 0.05 less than a
  match on the code's own title, a route the sentence contradicts (an oral form for "IV")
  0.3 less, a route it confirms 0.05 more, and up to 0.1 more for the title's other words
  the sentence also says ("basic life support" for an ambulance);
* lowered by ``exp(-20 * gap)`` where ``gap`` is how much closer the mention's best candidate
  of the same system is, and shared among equally close candidates (divided by the square
  root of their number): "nebulizer" names five HCPCS codes equally well;
* for a DRUG mention, HCPCS drug codes are billed for a drug given or dispensed: without a
  dose ("4 mg") or an administration word in the sentence, nor an orders/plan section, the
  confidence is multiplied by ``NO_ADMINISTRATION_FACTOR`` ("diabetes on insulin" is no
  insulin supply);
* a catch-all code ("..., miscellaneous", "not otherwise specified/classified", "unlisted")
  is multiplied by ``CATCH_ALL_FACTOR``: a named item has a code of its own;
* an HCPCS code the mention's sentence does not document
  (:func:`medcode_nlp.ranking.hcpcs_documentation.hcpcs_documented`: a drug given or
  dispensed in the encounter, an item ordered or dispensed, the title said) is multiplied by
  ``UNSAID_TITLE_FACTOR``; a temporary S code counts ``TEMPORARY_CODE_FACTOR`` times
  (private payers' codes, where a permanent code usually exists);
* one drug mention gives one drug code
  (:func:`medcode_nlp.ranking.drug_codes.choose_drug_code`, picked by route, salt or brand
  form and dose): the others are multiplied by ``OTHER_DRUG_CODE_FACTOR``, and the chosen
  code by ``NO_DOSE_FACTOR`` when the note gives no dose near the mention (the billed units,
  or the code itself, are unknown: "Versed IV" goes below the main list, still first in the
  ranking) or a dose none of them fits.

A code's note confidence (:func:`combine`) is the noisy-or of the mentions documenting it
(confidence at least ``DOCUMENTED_FLOOR``), else its best mention's: five undocumented
"needle" mentions do not add up to a suggestion.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from medcode_nlp.ranking.document_features import noisy_or
from medcode_nlp.ranking.drug_codes import choose_drug_code
from medcode_nlp.ranking.hcpcs_documentation import WORD, administered, hcpcs_documented, route
from medcode_nlp.schema import Candidate

HEAD_PENALTY = 0.05
NO_ADMINISTRATION_FACTOR = 0.2
CATCH_ALL_FACTOR = 0.3
ROUTE_BONUS = 0.05
ROUTE_PENALTY = 0.3
CONTEXT_BONUS = 0.1
UNSAID_TITLE_FACTOR = 0.1
TEMPORARY_CODE_FACTOR = 0.5
OTHER_DRUG_CODE_FACTOR = 0.1
NO_DOSE_FACTOR = 0.2
_CATCH_ALL = re.compile(r"\bmiscellaneous\b|\bnot otherwise\b|\bunlisted\b|\bnos\b|\bnoc\b",
                        re.I)


def _effective(candidate: Candidate, mention: str, sentence: str) -> float:
    """Similarity, less for a head alias or a route the sentence contradicts, more for title
    words the sentence repeats (besides the mention's own)."""
    value = candidate.similarity - (HEAD_PENALTY if candidate.alias_kind == "head" else 0.0)
    said, title = route(sentence), route(candidate.description)
    if said and title:
        value += ROUTE_BONUS if said == title else -ROUTE_PENALTY
    own = set(WORD.findall(mention.lower()))
    words = {w for w in WORD.findall(candidate.description.lower()) if len(w) > 3} - own
    if words:
        context = set(WORD.findall(sentence.lower()))
        value += CONTEXT_BONUS * len(words & context) / len(words)
    return value


#: Below this a mention's confidence says the note does not document the code (a factor of
#: ``UNSAID_TITLE_FACTOR`` at most leaves 0.09): such mentions do not add up.
DOCUMENTED_FLOOR = 0.1


def combine(probabilities: Sequence[float]) -> float:
    """A code's note confidence from its mentions' ones: the noisy-or of the mentions that
    document it, else the best mention's (five undocumented "needle" mentions stay one)."""
    strong = [p for p in probabilities if p >= DOCUMENTED_FLOOR]
    if not strong:
        return max(probabilities, default=0.0)
    return noisy_or(strong)


def confidences(candidates: Sequence[Candidate], mention: str, label: str, sentence: str,
                section: str | None) -> list[float]:
    """A confidence per candidate (all of one system; see the module docstring)."""
    if not candidates:
        return []
    values = [_effective(c, mention, sentence) for c in candidates]
    group: list[int] = []
    chosen: int | None = None
    needs_dose = False
    if label == "DRUG" and candidates[0].system == "hcpcs":
        group, chosen, needs_dose = choose_drug_code(candidates, mention, sentence, section)
        if chosen is not None:  # the codes of one drug name the mention equally well
            values[chosen] = max(values[i] for i in group)
    best = max(values)
    ties = sum(1 for i, v in enumerate(values)
               if best - v < 1e-6 and (i == chosen or i not in group))
    factor = 1.0 / math.sqrt(ties)
    if label == "DRUG" and not administered(sentence, section):
        factor *= NO_ADMINISTRATION_FACTOR
    found = []
    for index, (candidate, value) in enumerate(zip(candidates, values, strict=True)):
        base = 0.9 * min(1.0, max(0.0, (value - 0.6) / 0.4))
        if _CATCH_ALL.search(candidate.description):
            base *= CATCH_ALL_FACTOR
        if (candidate.system == "hcpcs"
                and not hcpcs_documented(candidate, mention, sentence, section)):
            base *= UNSAID_TITLE_FACTOR
        if candidate.system == "hcpcs" and candidate.code.startswith("S"):
            base *= TEMPORARY_CODE_FACTOR  # a private payers' code; a J or G code usually exists
        if index in group and index != chosen:
            base *= OTHER_DRUG_CODE_FACTOR  # one drug mention, one drug code
        elif index == chosen and needs_dose:
            base *= NO_DOSE_FACTOR  # no dose documented: units (or the code) unknown
        found.append(round(base * math.exp(-20.0 * (best - value)) * factor, 4))
    return found
