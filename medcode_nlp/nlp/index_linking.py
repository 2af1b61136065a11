"""Link a mention the way a coder does: Alphabetic Index first, Tabular to finish the code.

The Index walk (``codesets.icd10cm_index_tree``) reads the mention's head noun and its
modifiers (then the sentence's) down the Index; the code it reaches is completed in the
Tabular: a dash or category becomes the billable child whose wording fits the note best
(laterality, episode of care, displaced/nondisplaced, open/closed), with the Official
Guidelines' defaults when the note is silent (fracture: displaced, closed; injury: initial
encounter while under active treatment).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from medcode_nlp.codesets.index_words import synonym_stems
from medcode_nlp.codesets.registry import code_key
from medcode_nlp.kb.store import CodeKnowledgeBase
from medcode_nlp.nlp.tabular_completion import complete
from medcode_nlp.rules.guidelines import missing_detail

if TYPE_CHECKING:
    from medcode_nlp.codesets.icd10cm_index_tree import IndexTree
    from medcode_nlp.codesets.index_entries import IndexHit

logger = logging.getLogger(__name__)

#: Confidence of an Index link that consumed every word of the mention, by depth reached.
CONFIDENCE_DEFAULT = 0.8
CONFIDENCE_SUBTERM = 0.9
_ROMAN = ((re.compile(r"\btype\s+ii\b", re.I), "type 2"), (re.compile(r"\btype\s+i\b", re.I), "type 1"),
          (re.compile(r"\bstage\s+iv\b", re.I), "stage 4"), (re.compile(r"\bstage\s+iii\b", re.I), "stage 3"),
          (re.compile(r"\bstage\s+ii\b", re.I), "stage 2"), (re.compile(r"\bstage\s+i\b", re.I), "stage 1"))
#: Words the Tabular (not the Index) reads: left unused by the walk, used by ``complete``.
TABULAR_WORDS = frozenset("""displaced nondisplaced non-displaced closed open initial subsequent
    encounter right left bilateral""".split())


@dataclass(frozen=True)
class IndexLink:
    """A mention's code by the Index, with the path a coder can check."""

    code: str
    description: str
    confidence: float
    path: tuple[str, ...]
    index_code: str
    detail: str = ""  # what the note did not say when a category was completed by default
    episode_defaulted: bool = False  # 7th character A chosen with no episode documented

    def prompts(self) -> list[str]:
        """The Index path as a reviewer reads it, and any specificity prompt."""
        prompts = [f"Index: {' > '.join(self.path)} -> {self.index_code}"]
        if self.detail:
            prompts.append(f"{self.index_code} completed to {self.code} by the Tabular's "
                           f"defaults: specify {self.detail}")
        if self.episode_defaulted:
            prompts.append("episode of care not documented: defaulted to initial encounter "
                           "(7th character A); confirm initial, subsequent or sequela")
        return prompts


@lru_cache(maxsize=1)
def shipped_tree() -> IndexTree | None:
    """The shipped Index tree, or None when the package data is absent."""
    try:
        from medcode_nlp.codesets.icd10cm_index_tree import IndexTree

        return IndexTree.load()
    except (ImportError, OSError, ValueError) as exc:  # the walk is an aid, not a requirement
        logger.warning("ICD-10-CM Index tree unavailable (%s): Index linking is off",
                       type(exc).__name__)
        return None


#: Words a note leaves implied that the Index spells out ("RUQ pain" is abdominal pain).
_IMPLIED = ((re.compile(r"(?<!abdominal )\b((?:right|left)\s+)?(upper|lower)\s+quadrant\b",
                        re.I), r"abdominal \1\2 quadrant"),
            (re.compile(r"\blower\s+back\b", re.I), "low back"),
            (re.compile(r"\blumbar\s+(?=(?:muscle\s+)?strain)", re.I), "low back "),
            # a herniated disc is, in the Index, a displaced intervertebral disc
            (re.compile(r"\b(?:intervertebral\s+)?(?:dis[ck]|discal)\s+hernia(?:tion)?\b|"
                        r"\bhernia(?:ted|tion)?\s+(?:of\s+(?:the\s+)?)?(?:intervertebral\s+)?"
                        r"(?:dis[ck])\b", re.I), "intervertebral disc displacement"))


def normalise(text: str) -> str:
    """Spell-out forms the Index uses (type II -> type 2, upper quadrant -> abdominal upper
    quadrant)."""
    for pattern, replacement in (*_ROMAN, *_IMPLIED):
        text = pattern.sub(replacement, text)
    return text


@lru_cache(maxsize=1)
def site_words(kb: CodeKnowledgeBase) -> frozenset[str]:
    """Body-site words: the words of the Tabular's site-specific pain and injury titles."""
    found: set[str] = set()
    for description in kb.descriptions("icd10cm", ("M25.5", "M79.6", "S")).values():
        found.update(re.findall(r"[a-z]+", description.lower()))
    return frozenset(found - _NOT_SITES)


_NOT_SITES = frozenset("""fracture fractures injury injuries unspecified initial encounter
    subsequent sequela routine delayed healing nonunion malunion displaced nondisplaced open
    closed type other of and the for with without in to or by part parts multiple superficial
    foreign body burn burns contusion laceration abrasion puncture wound bite dislocation
    subluxation sprain strain crushing amputation traumatic pain level unsp site""".split())
_ACUTE_ON_CHRONIC = re.compile(r"\bacute\s+(?:on|and|and/or|&)\s+chronic\b", re.I)
_ACUITY = frozenset("acute chronic subacute recurrent exacerbation".split())
_LINKERS = re.compile(r"\b(?:with|due to|secondary to|from)\b(.*)", re.I)
#: Main-term qualifiers the note must say (the Index default is the other reading).
_DOCUMENTED_ONLY = frozenset("pathological nontraumatic stress fatigue osteoporotic urination".split())
_GENERIC_SUBTERM_WORDS = frozenset("end part site region portion nec nos".split())
_CONNECTORS = frozenset("with in due to without of and see".split())
#: "Astrocytoma, specified site NEC - see Neoplasm, malignant, by site": the site follows.
_SITE_PLACEHOLDER = re.compile(r"^(?:un)?specified\s+site\b", re.I)


_FAMILY = re.compile(r"\b(?:family|mother|father|sister|brother|parent|sibling|aunt|uncle|"
                     r"grand\w+|cousin|son|daughter|maternal|paternal|fh)\b", re.I)


def _stem5(word: str) -> str:
    return word.lower()[:5]


def _path_ok(hit: IndexHit, text: str) -> bool:
    """Every subterm walked names words of the note (one of its comma alternatives), and a
    main-term qualifier that changes the chapter (pathological fracture) is documented."""
    note_words = re.findall(r"[a-z0-9]+", text.lower())
    present = {_stem5(w) for w in note_words} | {
        synonym[:5] for w in note_words for synonym in synonym_stems(w)}
    qualifiers = set(re.findall(r"[a-z]+", hit.path[0].lower())) & _DOCUMENTED_ONLY if hit.path else set()
    if any(_stem5(q) not in present for q in qualifiers):
        return False
    path = list(hit.path[1:])
    if any(element.lower().startswith("family") for element in path) and \
            hit.path[0].lower().startswith("history") and not _FAMILY.search(text):
        return False  # a see-reference to family history needs a relative in the note
    for i, element in enumerate(path[:-1]):  # "without complications" is no "with complication"
        if element.lower() == "with" and re.search(
                rf"\bwithout\s+(?:\w+\s+)?{re.escape(_stem5(path[i + 1]))}", text.lower()):
            return False
    # A see-reference names the entry the walk goes to: its words need not be the note's.
    # Every other subterm, before or after it, must be ("Neoplasm, Merkel cell" needs Merkel).
    referred: set[str] = set()
    if hit.path and hit.path[0].lower().startswith("history"):
        present.add(_stem5("personal"))  # "history of" implies the Index's "personal"
    for element in path:
        if element.startswith("see "):
            referred = {_stem5(w) for w in re.findall(r"[a-z0-9]+", element[4:].lower())}
            continue
        if element in _CONNECTORS or element.lower().startswith("note:") or \
                _SITE_PLACEHOLDER.match(element):
            continue
        plain = re.sub(r"\[[^\]]*\]", " ", element)  # "[ECG] [EKG]" are synonyms of it
        alternatives = [re.findall(r"[a-z0-9]+", alt.lower())
                        for alt in [*re.split(r",| or ", plain), *re.findall(r"\[([^\]]+)\]", element)]]
        if not any(all(_stem5(w) in present or _stem5(w) in referred for w in alt
                       if w not in _CONNECTORS and w not in _GENERIC_SUBTERM_WORDS and len(w) > 2)
                   for alt in alternatives):
            return False
    return True


_BOUNDARY = re.compile(r"[.,;:()\n]|\b(?:and|or|for|since|but|after|before|x|radiat\w*)\b", re.I)
_GRADING = re.compile(r"^(?:type|stage|grade|class|[0-9]+[a-z]?|i{1,3}v?|iv|vi{0,3})$", re.I)
_JOINTS = frozenset("shoulder elbow wrist hip knee ankle hand foot finger toe".split())


def adjacent_phrase(mention: str, context: str) -> str:
    """The words next to the mention in its sentence, up to punctuation or a conjunction."""
    at = context.lower().find(mention.lower())
    if at < 0:
        return ""
    before = _BOUNDARY.split(context[:at])[-1]
    after = _BOUNDARY.split(context[at + len(mention):])[0]
    return f"{before} {after}".lower()


def _linked_after(mention: str, context: str) -> str:
    """The condition a 'with' / 'due to' right after the mention links to it, in its clause."""
    at = context.lower().find(mention.lower())
    if at < 0:
        return ""
    after = context[at + len(mention):]
    found = re.match(r"\s*(?:\w+\s+){0,2}?(?:with|due to|secondary to|from)\b([^.;:]*)", after,
                     re.I)
    return found.group(1).lower() if found else ""


def _context_ok(kb: CodeKnowledgeBase, hit: IndexHit, mention: str, context: str) -> bool:
    """Context words may add acuity, grading, words of the mention's own phrase (its site), or
    a condition the sentence links to it ('with', 'due to'); a site only next to the mention
    ('right upper quadrant pain ... gallbladder wall thickening' is no gallbladder pain)."""
    if not hit.context_used:
        return True
    linked = " ".join(m.group(1) for m in _LINKERS.finditer(context)).lower()
    # only a "with"/"due to"/"in" subterm takes a condition from the sentence ("Spondylosis,
    # with, myelopathy"); "Fever, blister" is another disease, not fever with blisters
    via_connector = any(element.lower().startswith(("with", "in ", "due to", "without"))
                        or element.lower() == "in" for element in hit.path[1:])
    next_to = f"{adjacent_phrase(mention, context)} {_linked_after(mention, context)}"
    sites = site_words(kb)
    for word in hit.context_used:
        w = word.lower()
        if w in ("right", "left", "bilateral"):
            continue
        if _GRADING.match(w):
            # a type, stage or grade of the mention's own phrase ("type 2 diabetes", "CKD,
            # stage 3"), not a number elsewhere in the sentence ("gliclazide (1-1-1)")
            if re.search(rf"\b{re.escape(w)}\b", next_to) or re.search(
                    rf"{re.escape(mention)}\W{{1,3}}(?:\w+\W+){{0,2}}{re.escape(w)}\b",
                    context, re.I):
                continue
            return False
        if re.search(rf"\b{re.escape(w)}\b", next_to):
            continue  # a site, or words of the mention's own phrase
        if w in _ACUITY and re.search(rf"{re.escape(mention)}\W{{1,3}}{w}\b", context, re.I):
            continue  # "pancreatitis, acute"
        if w in sites or w in _ACUITY:  # another condition's "acute" or site is not its own
            if len(context) <= len(mention) + 60:
                continue  # a short line ("Left knee: pain") names the site anywhere in it
            return False
        if via_connector and re.search(rf"\b{re.escape(w)}\b", linked):
            continue  # a condition the sentence links with "with" ("with" convention)
        return False
    return True


def link(tree: IndexTree, kb: CodeKnowledgeBase, mention: str, context: str) -> IndexLink | None:
    """The Index code of a mention when the walk explains every word of it, else None.

    The words just before the mention in its clause ("acute on chronic systolic" before
    "congestive heart failure") are walked with it when that reaches a deeper entry."""
    found = _link_words(tree, kb, mention, context)
    modifiers = _modifiers_before(normalise(mention), normalise(context))
    if modifiers:
        longer = _link_words(tree, kb, f"{modifiers} {mention}", context)
        if longer is not None and (found is None or len(longer.path) > len(found.path)):
            found = longer
    return found


def _modifiers_before(mention: str, context: str) -> str:
    """Up to four words before the mention in its clause (no numbers or list markers)."""
    at = context.lower().find(mention.lower())
    if at <= 0:
        return ""
    before = _BOUNDARY.split(context[:at])[-1]
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z-]*", before)][-4:]
    return " ".join(words)


_METASTATIC_TO = re.compile(r"\bmeta?stat\w*\s+(?:\w+\s+){0,2}?to\b|\bsecondary\b", re.I)


def _secondary_of(kb: CodeKnowledgeBase, primary: str) -> str | None:
    """The secondary-neoplasm code (C77-C79) of a primary code's site, by title words."""
    entry = kb.get("icd10cm", primary)
    if entry is None:
        return None
    site = set(re.findall(r"[a-z]+", entry.description.lower().split(" of ", 1)[-1]))
    site -= {"unspecified", "and", "other", "part", "site", "sites", "of", "the", "left",
             "right", "overlapping", "lesion"}
    best, overlap = None, 0
    for category in ("C77", "C78", "C79"):
        for code in kb.billable_descendants("icd10cm", category, limit=100):
            other = kb.get("icd10cm", code)
            words = set(re.findall(r"[a-z]+", other.description.lower())) if other else set()
            if len(site & words) > overlap:
                best, overlap = code, len(site & words)
    return best


def _unsaid(detail: str, description: str, text: str) -> str:
    """The parts of a specificity prompt the note did not answer (a side it names is said)."""
    said = set(re.findall(r"[a-z]+", text.lower())) & set(re.findall(r"[a-z]+", description.lower()))
    parts = [p for p in detail.split(", ")
             if not (p.startswith("laterality") and said & {"right", "left", "bilateral"})]
    return ", ".join(parts)


def _acute_on_chronic(kb: CodeKnowledgeBase, code: str) -> str:
    """The 'acute on chronic' sibling of an acute or chronic code (I50.21 -> I50.23), else
    the code."""
    entry = kb.get("icd10cm", code)
    if entry is None or entry.parent is None:
        return code
    title = entry.description.lower()
    acuity = next((a for a in ("acute ", "chronic ") if title.startswith(a)), None)
    if acuity is None:
        return code
    rest = title[len(acuity):]
    for sibling in kb.children("icd10cm", entry.parent):
        other = kb.get("icd10cm", sibling)
        text = other.description.lower() if other is not None else ""
        for prefix in ("acute on chronic ", "acute and chronic "):
            if text.startswith(prefix) and text[len(prefix):] == rest:
                return sibling
    return code


def _link_words(tree: IndexTree, kb: CodeKnowledgeBase, mention: str,
                context: str) -> IndexLink | None:
    mention_text = normalise(mention)
    context = normalise(context)
    near = set(adjacent_phrase(mention_text, context).split())
    if "pain" in mention_text.lower().split() and near & _JOINTS:
        mention_text = f"joint {mention_text}"  # the Index files a joint's pain under Pain, joint
    both = f"{mention_text} {context}"
    hits: list[IndexHit] = [h for h in tree.walk(mention_text, context, limit=5)
                            if _context_ok(kb, h, mention, context) and _path_ok(h, both)]
    if not hits:
        return None
    # of equal walks, the one whose sentence words are next to the mention ("epigastric pain
    # radiating to the back" is epigastric pain)
    hits.sort(key=lambda h: (-round(h.score, 6), not set(h.context_used) <= near))
    acute_on_chronic = _ACUTE_ON_CHRONIC.search(both) is not None
    if acute_on_chronic:  # the Index files it as "acute and (on) chronic"
        hits.sort(key=lambda h: not any(p.lower().startswith("acute and") for p in h.path))
    best = hits[0]
    allowed = TABULAR_WORDS | (_ACUITY | {"on", "and"} if acute_on_chronic else frozenset())
    if set(best.unused) - allowed or best.code.startswith(("V", "W", "X", "Y")):
        return None
    if best.table not in ("", "index", "neoplasm"):
        return None  # drug-table columns need a reading the walk does not yet give
    code = complete(kb, best.code, f"{mention_text} {context}")
    if code is None:
        return None
    if best.table == "neoplasm" and code.startswith("C") and _METASTATIC_TO.search(
            f"{mention_text} {adjacent_phrase(mention, context)}"):
        code = _secondary_of(kb, code) or code  # "metastatic to the liver": liver is secondary
    if acute_on_chronic:
        code = _acute_on_chronic(kb, code)
    entry = kb.get("icd10cm", code)
    if entry is None:
        return None
    confidence = CONFIDENCE_SUBTERM if best.depth >= 1 else CONFIDENCE_DEFAULT
    detail = ""
    category = kb.get("icd10cm", code_key(best.code.rstrip("-").rstrip(".")))
    if category is not None and not category.billable:
        detail = _unsaid(missing_detail(kb, "icd10cm", category.code), entry.description, both)
    key = code_key(entry.code)
    defaulted = (len(key) == 7 and key[0] in "ST" and key[-1] == "A"
                 and not re.search(r"\b(initial|subsequent|sequela)", both, re.I))
    return IndexLink(entry.code, entry.description, confidence, best.path, best.code, detail,
                     defaulted)
