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
  (P90xx) needs a transfusion word;
* one drug mention gives one drug code (:func:`choose_drug_code`): the codes whose titles
  name the mention's drug (its lexicon generic: "Solu-Medrol" -> methylprednisolone sodium
  succinate) share the best similarity among them, and the route the sentence gives, the salt
  or brand form ("Solu-Medrol" sodium succinate, "Depo-Medrol" acetate), then the documented
  dose pick one (an "up to N" code: the smallest N at or above the dose; a "per N" code: the
  largest N at or below it that divides it; a concentration band: the band holding the number
  written after the drug, "Omnipaque 350" -> 300-399 mg/ml); the others are multiplied by
  ``OTHER_DRUG_CODE_FACTOR``, and the chosen code by ``NO_DOSE_FACTOR`` when the note gives
  no dose near the mention (the billed units, or the code itself, are unknown: "Versed IV"
  goes below the main list, still first in the ranking) or a dose none of them fits;
* a drug's route is read in its own clause ("enoxaparin 40 mg subcu" gives no route to
  "furosemide 40 mg daily" in the same list); a drug the sentence dates before the encounter
  ("last time", "previously", "over-the-counter") was not given here; a dosed drug in a
  procedure's own section (procedure details, technique, anesthesia) was; a code "for
  intravenous infusion" needs IV said (1% lidocaine infiltrated is no lidocaine infusion);
  a device code whose title says "infusion" (C1751 "Catheter, infusion, ...") is no drug;
* an orthotic or prosthetic code (L) needs a device word in the sentence (orthosis, brace,
  prosthesis, splint, halo, vest...): "a combination of sharp and blunt dissection" is no hip orthosis; a
  supply (A4-A8) needs dispensing words unless it sits in an orders/plan section (a needle
  placed during a biopsy is no needle supply); equipment in a procedure or on the ward
  needs an order, dispensing or application word; an item followed by "therapy",
  "treatment" or a dosing frequency names a service or a drug's regimen ("whirlpool
  therapy", "DuoNeb nebulizer every six hours"), not the equipment.

A code's note confidence (:func:`combine`) is the noisy-or of the mentions documenting it
(confidence at least ``DOCUMENTED_FLOOR``), else its best mention's: five undocumented
"needle" mentions do not add up to a suggestion.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from medcode_nlp.ranking.document_features import noisy_or
from medcode_nlp.schema import Candidate

if TYPE_CHECKING:
    from medcode_nlp.nlp.lexicon import Lexicon

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
                       r"placed in|applied|application|use of|uses)\b", re.I)


#: Code ranges of devices, supplies and equipment (their titles may say "infusion").
_DEVICE_PREFIXES = ("A4", "A5", "A6", "A7", "A8", "C1", "C2", "E", "K", "L")
#: A sentence dating a drug before this encounter, or naming a home or over-the-counter one.
_BEFORE_HERE = re.compile(r"\b(?:last time|previously|in the past|prior visit|"
                          r"over[- ]the[- ]counter|otc)\b", re.I)
#: Sections describing a procedure done in the encounter (a dosed drug there was given).
_PROCEDURE_SECTIONS = frozenset({"procedures", "procedure_details", "description_of_procedure",
                                 "technique", "anesthesia", "medications_administered"})
#: Sections where a supply or equipment item reads as ordered or dispensed (not used in a
#: procedure or on the ward).
_ITEM_ORDER_SECTIONS = frozenset({"plan", "assessment_and_plan", "orders",
                                  "discharge_instructions", "discharge_medications",
                                  "disposition"})
_DISPENSED = re.compile(r"\b(?:dispens\w*|prescri\w*|suppl(?:y|ied)|issued|sent home|"
                        r"for home|home use|rent\w*|purchas\w*|ordered)\b", re.I)
#: What an orthotic or prosthetic (L code) is called in a note.
_DEVICE_WORDS = re.compile(r"\b(?:orthos[ie]s|orthotics?|brace[sd]?|prosthe\w*|splints?|collars?|"
                           r"vests?|halo|jackets?|sockets?|shoes?|inserts?|insoles?|slings?|"
                           r"corsets?|binders?|boots?|[ks]?afo|tlso|lso|cto|cervical|limb|"
                           r"pylon|truss)\b", re.I)
#: Head words a note leaves out ("Halo procedure" is applied as a "halo").
_HEAD_FILLER = frozenset({"procedure", "device", "system", "item"})
_SERVICE_AFTER = re.compile(r"\s+(?:therapy|treatments?|bath|session|(?:\w+\s+){0,2}?"
                            r"(?:every|q\.?\s?\d|q\.?[hd]|daily|b\.?i\.?d|t\.?i\.?d|"
                            r"q\.?i\.?d|p\.?r\.?n|twice|once))\b", re.I)
_IV_SAID = re.compile(r"\b(?:iv|intravenous(?:ly)?|infus\w*|drip)\b", re.I)


def clause(mention: str, sentence: str) -> str:
    """The part of the sentence about the mention: its clause between commas or semicolons,
    with a lead-in before a colon ("Given: ..."), so one drug's route in a list ("enoxaparin
    40 mg subcu") is not another's ("furosemide 40 mg daily")."""
    where = sentence.lower().find(mention.lower())
    if where < 0:
        return sentence
    start = max(sentence.rfind(mark, 0, where) for mark in ",;") + 1
    ends = [i for i in (sentence.find(mark, where + len(mention)) for mark in ",;") if i >= 0]
    lead = sentence[: sentence.find(":") + 1] if 0 <= sentence.find(":") < start else ""
    return f"{lead} {sentence[start: min(ends) if ends else len(sentence)]}".strip()


def _names_a_service(mention: str, sentence: str) -> bool:
    """Whether the sentence writes the item as a service ("whirlpool therapy") or as a drug's
    regimen ("DuoNeb nebulizer every six hours")."""
    return bool(mention) and re.search(re.escape(mention) + _SERVICE_AFTER.pattern, sentence,
                                       re.I) is not None


def hcpcs_documented(candidate: Candidate, mention: str, sentence: str,
                     section: str | None = None) -> bool:
    """A drug code's route is what the sentence gives (an injection given in the encounter, a
    dispensed oral drug, a nebulised solution); supplies and equipment (A4-A9, E, K, L) are
    ordered or dispensed and named by their title's head; any other code's title is said."""
    routes = [said for title, said in _TITLE_ROUTES if title.search(candidate.description)]
    if candidate.code.startswith(_DEVICE_PREFIXES) and not re.match(
            r"injection\b", candidate.description, re.I):
        routes = []  # "Catheter, infusion, ..." is a device, not an infused drug
    drug = bool(routes) or candidate.code.startswith(("J", "Q"))
    if drug and _BEFORE_HERE.search(sentence):
        return False
    own = clause(mention, sentence) if drug else sentence
    procedure_dose = section in _PROCEDURE_SECTIONS and _DOSE.search(own) is not None
    if routes and not routes[0](own) and not procedure_dose:
        return False
    if drug:
        title = candidate.description.lower()
        if "for intravenous" in title and not _IV_SAID.search(sentence):
            return False  # "lidocaine for intravenous infusion" is no local anaesthetic
        special = set(_WORD.findall(title)) & _SPECIAL_ROUTES
        return not special or bool(special & set(_WORD.findall(sentence.lower())))
    if candidate.code.startswith(("A4", "A5", "A6", "A7", "A8", "A9", "E", "K", "L")):
        if _names_a_service(mention, sentence):
            return False
        if candidate.code.startswith("L") and not _DEVICE_WORDS.search(f"{sentence} {mention}"):
            return False
        head = candidate.description.split(",", 1)[0]
        said = {_stem(w) for w in _WORD.findall(f"{sentence} {mention}".lower())}
        named = all(_stem(w) in said for w in _WORD.findall(head.lower())
                    if len(w) > 2 and w not in _TITLE_FILLER and w not in _HEAD_FILLER)
        if candidate.code.startswith(("A4", "A5", "A6", "A7", "A8")) and (
                section in _PROCEDURE_SECTIONS or section not in _ITEM_ORDER_SECTIONS):
            return named and _DISPENSED.search(sentence) is not None
        return named and (section in _ITEM_ORDER_SECTIONS
                          or _SUPPLIED.search(sentence) is not None)
    return title_said(candidate, mention, sentence)


_SALT_WORDS = frozenset("""hydrochloride hcl sodium potassium calcium sulfate acetate phosphate
    citrate tartrate maleate mesylate succinate bromide chloride fumarate acetonide tromethamine
    hyclate lactate gluconate besylate disodium decanoate enanthate cypionate palmitate
    pamoate""".split())
_UNITS = {"mg": 1.0, "mcg": 0.001, "µg": 0.001, "g": 1000.0, "gm": 1000.0, "gram": 1000.0,
          "grams": 1000.0, "unit": 1.0, "units": 1.0, "iu": 1.0, "ml": 1.0, "cc": 1.0,
          "meq": 1.0}
_KIND = {"mg": "mg", "mcg": "mg", "µg": "mg", "g": "mg", "gm": "mg", "gram": "mg",
         "grams": "mg", "unit": "unit", "units": "unit", "iu": "unit", "ml": "ml", "cc": "ml",
         "meq": "meq"}
_AMOUNT = re.compile(r"(?<![\w.%/])(\d[\d,]*(?:\.\d+)?)\s*(mg|mcg|µg|gm|grams?|g|units?|iu|ml|cc|"
                     r"meq)\b(?!\s*/\s*(?:ml|kg|hr|hour|min))", re.I)
_UP_TO = re.compile(r"\bup to\s+(\d[\d,]*(?:\.\d+)?)\s*(mg|mcg|gm?|units?|ml|meq)\b", re.I)
_BAND = re.compile(r"\b(\d+)\s*(?:-\s*(\d+)|or greater)\s*mg/ml\b", re.I)
_DOSE_NEAR = 60  # characters either side of the mention searched for its dose


def _unit(written: str) -> str:
    """A unit's key in :data:`_UNITS` (lower case; the Greek mu lower-casing gives is the
    micro sign)."""
    return written.lower().replace("\u03bc", "\u00b5")


@lru_cache(maxsize=1)
def _lexicon() -> Lexicon | None:
    try:
        from medcode_nlp.nlp.lexicon import load_lexicon

        return load_lexicon()
    except Exception:  # noqa: BLE001  (no lexicon: the mention's own words only)
        return None


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _drug_part(description: str) -> str:
    """The words of a drug code's title naming the drug ("Injection, X, 10 mg" -> "X")."""
    parts = [p.strip() for p in description.lower().split(",")]
    part = parts[1] if parts[0] == "injection" and len(parts) > 1 else parts[0]
    return re.sub(r"\s+\d.*$", "", part)


def _drug_names(mention: str, sentence: str) -> list[str]:
    """The mention, the whole word holding it in the sentence ("Solu-Medrol" for "Medrol")
    and their lexicon expansions, lower case."""
    names = [mention]
    word = re.search(r"[\w-]*" + re.escape(mention) + r"[\w-]*", sentence, re.I)
    if word and word.group().lower() != mention.lower():
        names.insert(0, word.group())
    lexicon = _lexicon()
    expanded = [e for n in names for e in (lexicon.expand(n) if lexicon else [])]
    return [n.lower() for n in dict.fromkeys([*expanded, *names])]


def _dose_near(mention: str, sentence: str) -> tuple[float, str, float | None] | None:
    """(amount in mg/units/ml/meq, kind, number written right after the drug) of the dose
    closest to the mention in the sentence."""
    where = sentence.lower().find(mention.lower())
    if where < 0:
        return None
    end = where + len(mention)
    after = re.match(r"[\w-]*\s+(\d{2,4})\b(?!\s*(?:mg|mcg|g|gm|units?|ml|cc|%))",
                     sentence[end:], re.I)
    written = float(after.group(1)) if after else None
    best: tuple[int, float, str] | None = None
    for match in _AMOUNT.finditer(sentence):
        distance = match.start() - end if match.start() >= end else where - match.end()
        if distance > _DOSE_NEAR:
            continue
        unit = _unit(match.group(2))
        amount = _number(match.group(1)) * _UNITS[unit]
        if best is None or distance < best[0]:
            best = (distance, amount, _KIND[unit])
    if best is None:
        return None if written is None else (0.0, "", written)
    return best[1], best[2], written


def _dose_fit(description: str, dose: tuple[float, str, float | None] | None) -> int:
    """How well a code's unit fits the documented dose (0 best, 3 no fit or no dose)."""
    if dose is None:
        return 3
    amount, kind, written = dose
    band = _BAND.search(description)
    if band:
        low = float(band.group(1))
        high = float(band.group(2)) if band.group(2) else math.inf
        return 0 if written is not None and low <= written <= high else 3
    if not kind:
        return 3
    up_to = _UP_TO.search(description)
    found = up_to or _last_amount(description)
    if found is None:
        return 3
    unit = _unit(found.group(2))
    unit = {"gm": "g"}.get(unit, unit)
    if _KIND.get(unit) != kind:
        return 3
    size = _number(found.group(1)) * _UNITS[unit]
    if up_to:
        return 0 if amount <= size else 2
    if abs(amount - size) < 1e-9:
        return 0
    if size < amount and abs(amount / size - round(amount / size)) < 1e-6:
        return 1
    return 2


def _last_amount(description: str) -> re.Match[str] | None:
    found = list(_AMOUNT.finditer(description))
    return found[-1] if found else None


def _dose_rank(description: str, dose: tuple[float, str, float | None] | None) -> float:
    """Among codes fitting equally: the smallest "up to" size, the largest "per" size."""
    if dose is None:
        return 0.0
    up_to = _UP_TO.search(description)
    if up_to:
        return _number(up_to.group(1))
    found = _last_amount(description)
    return -_number(found.group(1)) if found else 0.0


def choose_drug_code(candidates: Sequence[Candidate], mention: str, sentence: str,
                     section: str | None = None) -> tuple[list[int], int | None, bool]:
    """(indexes of the candidates naming the mention's drug, the index chosen among them,
    whether the documented dose is needed and missing). See the module docstring."""
    names = _drug_names(mention, sentence)
    generics = []
    for name in names:
        words = [w for w in _WORD.findall(name) if w not in _SALT_WORDS]
        if words:
            generics.append((" ".join(words), set(_WORD.findall(name)) & _SALT_WORDS))
    group = []
    for i, candidate in enumerate(candidates):
        if not candidate.code.startswith(("J", "Q", "S", "C", "A9")):
            continue
        part = _drug_part(candidate.description)
        if any(re.search(rf"\b{re.escape(g)}\b", part) for g, _ in generics):
            group.append(i)
    if not group:
        return [], None, False
    forms = set().union(*(salts for _, salts in generics))
    said = {w for w in _WORD.findall(sentence.lower())} & _SALT_WORDS
    forms |= said
    dose = _dose_near(mention, clause(mention, sentence))

    def key(i: int) -> tuple[float, ...]:
        candidate = candidates[i]
        words = set(_WORD.findall(_drug_part(candidate.description)))
        documented = hcpcs_documented(candidate, mention, sentence, section)
        return (-float(documented), -float(len(words & forms)) if forms else 0.0,
                float(_dose_fit(candidate.description, dose)),
                _dose_rank(candidate.description, dose), -candidate.similarity)

    chosen = min(group, key=key)
    rivals = [i for i in group if key(i)[:2] == key(chosen)[:2]
              and candidates[i].description != candidates[chosen].description]
    sizes = {_dose_rank(candidates[i].description, (1.0, "mg", None)) for i in rivals}
    sizes.add(_dose_rank(candidates[chosen].description, (1.0, "mg", None)))
    needs_dose = dose is None or (len(sizes) > 1 and _dose_fit(
        candidates[chosen].description, dose) == 3)
    return group, chosen, needs_dose


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
