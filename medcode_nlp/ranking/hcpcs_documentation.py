"""Whether a note documents an HCPCS code: a drug given or dispensed in the encounter, an item
ordered or dispensed, a code's title said.

:mod:`medcode_nlp.ranking.unranked` multiplies the confidence of an HCPCS candidate the
mention's sentence does not document (:func:`hcpcs_documented`) by ``UNSAID_TITLE_FACTOR``.
A code is documented when:

* a drug code: the sentence gives its route in the encounter: an injection given (IV, IM,
  subcu, "given", sedation), an oral drug dispensed, an inhalation solution nebulised
  ("Lasix 40 mg daily" is a home medicine); a title naming a special route or form
  (epidural, intravitreal, implant, loading dose) needs the sentence to say it too;
* a supply or equipment code (A4-A9, E, K, L): the sentence orders or dispenses it (or it
  sits in an orders/plan section) and names the head of its title ("Oxygen concentrator");
* any other code: the note says its title: every content word of it in the mention's
  sentence, at most a third missing for a long title ("EKG" is no "routine ECG ... as a
  screening for the initial preventive physical examination", "surgery" no "Emergency
  surgery"); a blood product (P90xx) needs a transfusion word;
* a drug's route is read in its own clause ("enoxaparin 40 mg subcu" gives no route to
  "furosemide 40 mg daily" in the same list); a drug the sentence dates before the encounter
  ("last time", "previously", "over-the-counter") was not given here; a dosed drug in a
  procedure's own section (procedure details, technique, anesthesia) was; a code "for
  intravenous infusion" needs IV said (1% lidocaine infiltrated is no lidocaine infusion);
  a device code whose title says "infusion" (C1751 "Catheter, infusion, ...") is no drug;
* an orthotic or prosthetic code (L) needs a device word in the sentence (orthosis, brace,
  prosthesis, splint, halo, vest...): "a combination of sharp and blunt dissection" is no
  hip orthosis; a supply (A4-A8) needs dispensing words unless it sits in an orders/plan
  section (a needle placed during a biopsy is no needle supply); equipment in a procedure or
  on the ward needs an order, dispensing or application word; an item followed by
  "therapy", "treatment" or a dosing frequency names a service or a drug's regimen
  ("whirlpool therapy", "DuoNeb nebulizer every six hours"), not the equipment.
"""

from __future__ import annotations

import re

from medcode_nlp.schema import Candidate

_TITLE_FILLER = frozenset("""each any size per unit units other type not otherwise specified with
    without and the for includes including all used one two only this that by or of in to
    from as on at an a is be are non any ea item""".split())
_TRANSFUSION = re.compile(r"\btransfus", re.I)
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




#: A word of a title or a sentence (lower case; hyphenated words are one).
WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
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


def route(text: str) -> str | None:
    injected, oral = _INJECTED.search(text) is not None, _ORAL.search(text) is not None
    return "injected" if injected and not oral else "oral" if oral and not injected else None




def _stem(word: str) -> str:
    return word[:5]


def title_said(candidate: Candidate, mention: str, sentence: str) -> bool:
    """Whether the sentence says the code's title (the words, not just the mention)."""
    if candidate.code.startswith("P90") and not _TRANSFUSION.search(sentence):
        return False
    said = {_stem(w) for w in WORD.findall(f"{sentence} {mention}".lower())}
    content = [w for w in WORD.findall(candidate.description.lower())
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
        special = set(WORD.findall(title)) & _SPECIAL_ROUTES
        return not special or bool(special & set(WORD.findall(sentence.lower())))
    if candidate.code.startswith(("A4", "A5", "A6", "A7", "A8", "A9", "E", "K", "L")):
        if _names_a_service(mention, sentence):
            return False
        if candidate.code.startswith("L") and not _DEVICE_WORDS.search(f"{sentence} {mention}"):
            return False
        head = candidate.description.split(",", 1)[0]
        said = {_stem(w) for w in WORD.findall(f"{sentence} {mention}".lower())}
        named = all(_stem(w) in said for w in WORD.findall(head.lower())
                    if len(w) > 2 and w not in _TITLE_FILLER and w not in _HEAD_FILLER)
        if candidate.code.startswith(("A4", "A5", "A6", "A7", "A8")) and (
                section in _PROCEDURE_SECTIONS or section not in _ITEM_ORDER_SECTIONS):
            return named and _DISPENSED.search(sentence) is not None
        return named and (section in _ITEM_ORDER_SECTIONS
                          or _SUPPLIED.search(sentence) is not None)
    return title_said(candidate, mention, sentence)


