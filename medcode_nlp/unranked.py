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
* an HCPCS drug code is multiplied by ``UNSAID_TITLE_FACTOR`` unless the sentence gives
  its route in the encounter: an injection given (IV, IM, subcu, "given", sedation), an oral
  drug dispensed, an inhalation solution nebulised; "Lasix 40 mg daily" is a home medicine;
* a supply or equipment code (A4-A9, E, K, L) is multiplied by ``UNSAID_TITLE_FACTOR`` unless
  the sentence orders or dispenses it (or it sits in an orders/plan section) and names the
  head of its title ("Oxygen concentrator");
* a drug code whose title names a special route or form (epidural, intravitreal, implant,
  loading dose) needs the sentence to say it; a temporary S code counts ``TEMPORARY_CODE_FACTOR``
  times (private payers' codes, where a permanent code usually exists);
* any other HCPCS code is multiplied by ``UNSAID_TITLE_FACTOR`` unless the note says its title: every content word of it in the mention's sentence, at most a
  third missing for a long title ("EKG" is no "routine ECG ... as a screening for the initial
  preventive physical examination", "surgery" no "Emergency surgery"); a blood product
  (P90xx) needs a transfusion word.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from medcode_nlp.schema import Candidate

HEAD_PENALTY = 0.05
NO_ADMINISTRATION_FACTOR = 0.2
CATCH_ALL_FACTOR = 0.3
ROUTE_BONUS = 0.05
ROUTE_PENALTY = 0.3
CONTEXT_BONUS = 0.1
UNSAID_TITLE_FACTOR = 0.1
TEMPORARY_CODE_FACTOR = 0.5
_TITLE_FILLER = frozenset("""each any size per unit units other type not otherwise specified with
    without and the for includes including all used one two only this that by or of in to
    from as on at an a is be are non any ea item""".split())
_TRANSFUSION = re.compile(r"\btransfus", re.I)
_CATCH_ALL = re.compile(r"\bmiscellaneous\b|\bnot otherwise\b|\bunlisted\b|\bnos\b|\bnoc\b",
                        re.I)
_DOSE = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:mg|mcg|µg|g|gm|units?|iu|ml|mL|l|meq|mmol|%)(?:/\w+)?\b", re.I)
_GIVEN = re.compile(
    r"\b(?:given|administered|administer|injected|injection|infused|infusion|dispensed|"
    r"dispense|received|ordered|order|prescribed|started|iv|im|subcutaneous(?:ly)?|"
    r"intravenous(?:ly)?|intramuscular(?:ly)?|inhaled|nebuli[sz]ed|bolus|push|drip)\b", re.I)
_ORDER_SECTIONS = frozenset({"plan", "assessment_and_plan", "orders", "procedures",
                             "medications_administered", "hospital_course"})


def administered(sentence: str, section: str | None) -> bool:
    """Whether a drug in this sentence reads as given or dispensed (dose, route or verb)."""
    return (section in _ORDER_SECTIONS or _DOSE.search(sentence) is not None
            or _GIVEN.search(sentence) is not None)


_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_INJECTED = re.compile(r"\b(?:iv|im|intravenous(?:ly)?|intramuscular(?:ly)?|inject(?:ed|ion)|"
                       r"infus(?:ed|ion)|subcutaneous(?:ly)?|sc|sq|subcu|subq|push|drip)\b", re.I)
#: What a sentence says when a drug was given in the encounter (a parenteral route, a verb of
#: giving, or sedation) and what an oral or inhaled HCPCS drug code needs said.
_GIVEN_HERE = re.compile(r"\b(?:given|administered|received|sedation|sedated|premedicat\w*|"
                         r"preop(?:eratively)?|bolus)\b", re.I)
_TITLE_ROUTES = (
    (re.compile(r"^injection\b|\binjection\b|\binfusion\b", re.I),
     lambda sentence: bool(_INJECTED.search(sentence) or _GIVEN_HERE.search(sentence))),
    (re.compile(r"\binhalation\b", re.I),
     lambda sentence: bool(re.search(r"\b(?:neb\w*|inhal\w*|mdi)\b", sentence, re.I))),
    (re.compile(r"\boral\b", re.I),
     lambda sentence: bool(re.search(r"\bdispens\w*|\bgiven\b|\badministered\b",
                                     sentence, re.I))),
)
_ORAL = re.compile(r"\b(?:po|oral(?:ly)?|by mouth|tablets?|capsules?)\b", re.I)


def _route(text: str) -> str | None:
    injected, oral = _INJECTED.search(text) is not None, _ORAL.search(text) is not None
    return "injected" if injected and not oral else "oral" if oral and not injected else None


def _effective(candidate: Candidate, mention: str, sentence: str) -> float:
    """Similarity, less for a head alias or a route the sentence contradicts, more for title
    words the sentence repeats (besides the mention's own)."""
    value = candidate.similarity - (HEAD_PENALTY if candidate.alias_kind == "head" else 0.0)
    said, title = _route(sentence), _route(candidate.description)
    if said and title:
        value += ROUTE_BONUS if said == title else -ROUTE_PENALTY
    own = set(_WORD.findall(mention.lower()))
    words = {w for w in _WORD.findall(candidate.description.lower()) if len(w) > 3} - own
    if words:
        context = set(_WORD.findall(sentence.lower()))
        value += CONTEXT_BONUS * len(words & context) / len(words)
    return value


def _stem(word: str) -> str:
    return word[:5]


def title_said(candidate: Candidate, mention: str, sentence: str) -> bool:
    """Whether the sentence says the code's title (the words, not just the mention)."""
    if candidate.code.startswith("P90") and not _TRANSFUSION.search(sentence):
        return False
    said = {_stem(w) for w in _WORD.findall(f"{sentence} {mention}".lower())}
    content = [w for w in _WORD.findall(candidate.description.lower())
               if len(w) > 2 and w not in _TITLE_FILLER and not w[0].isdigit()]
    missing = [w for w in content if _stem(w) not in said]
    return not missing or (len(content) >= 4 and len(missing) <= len(content) // 3)


#: Routes and forms a drug code's title names that the note must say too.
_SPECIAL_ROUTES = frozenset("""epidural intrathecal intravitreal intravesical intradermal
    ophthalmic otic implant intra-articular intraocular loading""".split())
_SUPPLIED = re.compile(r"\b(?:order\w*|dispens\w*|prescrib\w*|suppl(?:y|ied)|fitted|issued|"
                       r"provided|deliver\w*|rent\w*|purchas\w*|needs?|will need|requires?|"
                       r"placed in|applied|use of|uses)\b", re.I)


def hcpcs_documented(candidate: Candidate, mention: str, sentence: str,
                     section: str | None = None) -> bool:
    """A drug code's route is what the sentence gives (an injection given in the encounter, a
    dispensed oral drug, a nebulised solution); supplies and equipment (A4-A9, E, K, L) are
    ordered or dispensed and named by their title's head; any other code's title is said."""
    routes = [said for title, said in _TITLE_ROUTES if title.search(candidate.description)]
    if routes and not routes[0](sentence):
        return False
    if routes or candidate.code.startswith(("J", "Q")):
        special = set(_WORD.findall(candidate.description.lower())) & _SPECIAL_ROUTES
        return not special or bool(special & set(_WORD.findall(sentence.lower())))
    if candidate.code.startswith(("A4", "A5", "A6", "A7", "A8", "A9", "E", "K", "L")):
        head = candidate.description.split(",", 1)[0]
        said = {_stem(w) for w in _WORD.findall(f"{sentence} {mention}".lower())}
        named = all(_stem(w) in said for w in _WORD.findall(head.lower())
                    if len(w) > 2 and w not in _TITLE_FILLER)
        return named and (section in _ORDER_SECTIONS or _SUPPLIED.search(sentence) is not None)
    return title_said(candidate, mention, sentence)


def confidences(candidates: Sequence[Candidate], mention: str, label: str, sentence: str,
                section: str | None) -> list[float]:
    """A confidence per candidate (all of one system; see the module docstring)."""
    if not candidates:
        return []
    values = [_effective(c, mention, sentence) for c in candidates]
    best = max(values)
    ties = sum(1 for v in values if best - v < 1e-6)
    factor = 1.0 / math.sqrt(ties)
    if label == "DRUG" and not administered(sentence, section):
        factor *= NO_ADMINISTRATION_FACTOR
    found = []
    for candidate, value in zip(candidates, values, strict=True):
        base = 0.9 * min(1.0, max(0.0, (value - 0.6) / 0.4))
        if _CATCH_ALL.search(candidate.description):
            base *= CATCH_ALL_FACTOR
        if (candidate.system == "hcpcs"
                and not hcpcs_documented(candidate, mention, sentence, section)):
            base *= UNSAID_TITLE_FACTOR
        if candidate.system == "hcpcs" and candidate.code.startswith("S"):
            base *= TEMPORARY_CODE_FACTOR  # a private payers' code; a J or G code usually exists
        found.append(round(base * math.exp(-20.0 * (best - value)) * factor, 4))
    return found
