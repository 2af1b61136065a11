"""One HCPCS drug code per drug mention: the codes naming the mention's drug, the dose written
near it, and the code that dose fits.

One drug mention gives one drug code (:func:`choose_drug_code`): the codes whose titles
name the mention's drug (its lexicon generic: "Solu-Medrol" -> methylprednisolone sodium
succinate) share the best similarity among them, and the route the sentence gives, the salt
or brand form ("Solu-Medrol" sodium succinate, "Depo-Medrol" acetate), then the documented
dose pick one (an "up to N" code: the smallest N at or above the dose; a "per N" code: the
largest N at or below it that divides it; a concentration band: the band holding the number
written after the drug, "Omnipaque 350" -> 300-399 mg/ml); the others are multiplied by
``OTHER_DRUG_CODE_FACTOR``, and the chosen code by ``NO_DOSE_FACTOR`` when the note gives
no dose near the mention (the billed units, or the code itself, are unknown: "Versed IV"
goes below the main list, still first in the ranking) or a dose none of them fits
(:mod:`medcode_nlp.ranking.unranked` applies the factors).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from medcode_nlp.ranking.hcpcs_documentation import WORD, clause, hcpcs_documented
from medcode_nlp.schema import Candidate

if TYPE_CHECKING:
    from medcode_nlp.nlp.lexicon import Lexicon

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


def dose_near(mention: str, sentence: str) -> tuple[float, str, float | None] | None:
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
        words = [w for w in WORD.findall(name) if w not in _SALT_WORDS]
        if words:
            generics.append((" ".join(words), set(WORD.findall(name)) & _SALT_WORDS))
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
    said = {w for w in WORD.findall(sentence.lower())} & _SALT_WORDS
    forms |= said
    dose = dose_near(mention, clause(mention, sentence))

    def key(i: int) -> tuple[float, ...]:
        candidate = candidates[i]
        words = set(WORD.findall(_drug_part(candidate.description)))
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


