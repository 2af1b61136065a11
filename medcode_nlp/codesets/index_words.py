"""Words of the Alphabetic Index walk: tokens, stop words, stems and synonyms, Roman numerals, abbreviations."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

# ----------------------------------------------------------------------- words
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_PARENS = re.compile(r"\([^()]*\)")
_COMMA = re.compile(r",(?!\d)")
_CODE_REF = re.compile(r"^(?:sub)?category\s+([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]*)?-?)$", re.I)
_STOP = frozenset(
    "a an the of and or with in on at to by for from due as is are was were be been being "
    "this that these those his her their its there which who has have had also into than "
    "nec nos other specified unspecified not elsewhere classified site mr mrs ms patient".split()
)
#: Words that state a side; they never select a subterm (reported on the hit instead).
LATERALITY = frozenset({"left", "right"})
#: Words that split a mention into its head phrase and what it is linked to.
_SPLITTERS = frozenset(
    "of with without in due secondary from on at to involving after following during "
    "complicating complicated associated caused requiring needing status post".split()
)
_CLAUSE = re.compile(r"[,;:()/]")
_BRACKETS = re.compile(r"\[([^\]]*)\]")
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6"}
_ROMAN_AFTER = re.compile(r"\b(type|stage|grade|class|schatzker|gustilo)\s+(iv|vi|v|i{1,3})\b",
                          re.I)


def arabic(text: str) -> str:
    """Roman numerals after type/stage/grade/class written as digits (type II -> type 2)."""
    return _ROMAN_AFTER.sub(lambda m: f"{m.group(1)} {_ROMAN[m.group(2).lower()]}", text)
_NEGATION = frozenset({"without", "no", "non", "absent", "negative"})
_FAMILY = frozenset(
    "family father mother sister brother daughter son grandmother grandfather aunt uncle "
    "sibling siblings parent parents daughters sons sisters brothers cousin".split()
)
_MALIGNANT = frozenset({"cancer", "cancers", "carcinoma", "malignancy"})
#: Abbreviations a note uses for terms the index spells out (expanded before matching).
ABBREVIATIONS: dict[str, str] = {
    "copd": "chronic obstructive pulmonary disease", "uti": "urinary tract infection",
    "chf": "congestive heart failure", "ckd": "chronic kidney disease",
    "esrd": "end stage renal disease", "htn": "hypertension", "dm": "diabetes mellitus",
    "t2dm": "type 2 diabetes mellitus", "dm2": "type 2 diabetes mellitus",
    "t1dm": "type 1 diabetes mellitus", "iddm": "type 1 diabetes mellitus",
    "niddm": "type 2 diabetes mellitus", "gerd": "gastroesophageal reflux disease",
    "cad": "coronary artery disease", "mi": "myocardial infarction",
    "afib": "atrial fibrillation", "dvt": "deep vein thrombosis", "pe": "pulmonary embolism",
    "uri": "upper respiratory infection", "osa": "obstructive sleep apnea",
    "bph": "benign prostatic hyperplasia", "aki": "acute kidney failure",
    "cva": "cerebral infarction", "tia": "transient ischemic attack",
    "oa": "osteoarthritis", "ra": "rheumatoid arthritis", "sob": "shortness of breath",
    "hld": "hyperlipidemia", "adhd": "attention deficit hyperactivity disorder",
    "mdd": "major depressive disorder", "dka": "diabetic ketoacidosis",
    "chd": "coronary heart disease", "pvd": "peripheral vascular disease",
    "pad": "peripheral arterial disease", "ards": "acute respiratory distress syndrome",
    "cll": "chronic lymphocytic leukemia", "gi": "gastrointestinal",
    "ibs": "irritable bowel syndrome", "lbbb": "left bundle branch block",
    "rbbb": "right bundle branch block", "psa": "prostate specific antigen",
    "ekg": "electrocardiogram", "ecg": "electrocardiogram", "bmi": "body mass index",
    "mrsa": "methicillin resistant staphylococcus aureus",
}
#: Site words a note and the Index use for the same thing (each also matches the other).
_SITE_SYNONYMS = (
    ("extremity", "limb"), ("renal", "kidney"), ("pulmonary", "lung"), ("cardiac", "heart"),
    ("hepatic", "liver"), ("cerebral", "brain"), ("gastric", "stomach"), ("cutaneous", "skin"),
    ("ocular", "eye"), ("aural", "ear"), ("vesical", "bladder"), ("dermal", "skin"),
    ("facial", "face"), ("testicular", "testis"), ("testicle", "testis"), ("ovarian", "ovary"),
    ("uterine", "uterus"), ("esophageal", "esophagus"), ("rectal", "rectum"), ("anal", "anus"),
    ("femoral", "femur"), ("humeral", "humerus"), ("radial", "radius"), ("ulnar", "ulna"),
    ("patellar", "patella"), ("abdominal", "abdomen"), ("thoracic", "thorax"),
    ("inguinal", "groin"), ("axillary", "axilla"), ("scrotal", "scrotum"), ("penile", "penis"),
    ("mammary", "breast"), ("bronchial", "bronchus"), ("laryngeal", "larynx"),
    ("pharyngeal", "pharynx"), ("tonsillar", "tonsil"), ("duodenal", "duodenum"),
    ("peritoneal", "peritoneum"), ("splenic", "spleen"), ("biliary", "bile"), ("nasal", "nose"),
    ("oral", "mouth"), ("dental", "tooth"), ("cervical", "cervix"), ("mandibular", "mandible"),
    ("mandibular", "jaw"), ("maxillary", "maxilla"), ("scapular", "scapula"),
    ("sternal", "sternum"), ("calcaneal", "calcaneus"), ("cerebellar", "cerebellum"),
    ("lumbar", "vertebra"), ("spine", "vertebra"), ("spinal", "vertebra"),
    ("macular", "macula"), ("retinal", "retina"), ("tibial", "tibia"), ("fibular", "fibula"),
    ("clavicular", "clavicle"), ("pelvic", "pelvis"), ("vaginal", "vagina"),
    ("vulvar", "vulva"), ("prostatic", "prostate"), ("pancreatic", "pancreas"),
    ("colonic", "colon"), ("pleural", "pleura"), ("pericardial", "pericardium"),
    ("vertebral", "vertebra"),
)


def synonym_stems(word: str) -> frozenset[str]:
    """Stems of the site words the Index may use for ``word`` (facial -> face)."""
    return _synonyms().get(stem(word), frozenset())
_SUFFIXES = (
    ("icular", "icle"), ("ism", ""), ("ically", ""), ("ical", ""), ("ies", "y"), ("ic", ""), ("ia", ""), ("es", ""), ("is", ""),
    ("al", ""), ("s", ""), ("ed", ""), ("ing", ""), ("e", ""), ("a", ""), ("y", ""),
)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Crude comparison stem shared by index terms and mentions (diabetic ~ diabetes)."""
    word = word.lower()
    if word.endswith("'s"):
        word = word[:-2]
    word = word.rstrip("'")
    if word.isdigit():
        return word
    for _ in range(2):
        for suffix, replacement in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 4:
                word = word[: len(word) - len(suffix)] + replacement
                break
        else:
            break
    if word.endswith("at") and len(word) >= 7:  # asthmatic -> asthm(a)
        word = word[:-2]
    return word


@lru_cache(maxsize=1)
def _synonyms() -> dict[str, frozenset[str]]:
    """Stem -> stems of its site synonyms."""
    found: dict[str, set[str]] = {}
    for a, b in _SITE_SYNONYMS:
        found.setdefault(stem(a), set()).add(stem(b))
        found.setdefault(stem(b), set()).add(stem(a))
    return {k: frozenset(v) for k, v in found.items()}


def _clean(term: str) -> str:
    previous = None
    while previous != term:
        previous, term = term, _PARENS.sub(" ", term)
    return " ".join(term.replace("(", " ").replace(")", " ").split())


def words(text: str) -> list[str]:
    """Lower-case word tokens of a text, possessives kept on the word."""
    return _WORD.findall(text.lower())


def content_stems(text: str) -> list[str]:
    """Stems of the words of ``text`` that can select an index entry (no stopwords)."""
    return [stem(w) for w in words(text) if w not in _STOP]


def expand_abbreviations(text: str) -> str:
    """``text`` with the abbreviations of :data:`ABBREVIATIONS` spelled out."""
    return re.sub(
        r"[A-Za-z0-9]+",
        lambda m: ABBREVIATIONS.get(m.group(0).lower(), m.group(0))
        if m.group(0).lower() in ABBREVIATIONS and (m.group(0).isupper() or len(m.group(0)) > 3)
        else m.group(0),
        text,
    )
