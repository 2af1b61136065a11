"""The ICD-10-CM Alphabetic Index as a tree, walked the way a coder looks a term up.

The shipped data (``medcode_nlp/data/icd10cm_index_tree.json.gz``, built by
``scripts/build_index_tree.py`` from the CDC CSV exports) holds three row lists in index
order: the Index to Diseases and Injuries, the Neoplasm Table and the Table of Drugs and
Chemicals. A row is ``[level, term, nonessential modifiers, see, see also, code(s)]``;
the hierarchy is given by the level and the row order, as in the CDC files.

A walk (:meth:`IndexTree.walk`) starts at the main terms named by the mention's words,
preferring its head noun ("fracture" in "displaced fracture of distal radius", "diabetes"
for "diabetic"), then descends the subterms whose words the mention supplies, and after
them the words of the sentence around it. Subterms made only of connecting words ("with",
"in", "due to") are passed through: under a main term they introduce the conditions it is
linked to. Nonessential modifiers are optional: they use up the words they name once no
subterm wants them, and never hide a subterm. ``see`` references are followed into the
named entry (and into the neoplasm and drug tables, whose column is chosen by the reference
or by the mention's words); ``see also`` references are followed beside the entry's own code.
Laterality words (left, right) select only entries that name a side ("Block, bundle branch,
left"); they are reported on each hit for the caller. A few words are implied the way the
Index phrases them ("cancer" -> malignant neoplasm; a relative -> History, family; "history
of" -> History, personal, kept only when the History entry names every condition the mention
names), and a few site synonyms match each other (extremity/limb, renal/kidney).

Scores: +1 per mention word used by a term (0.4 for a context word, 0.8 for a qualifier, 0.3
for a nonessential modifier), -0.4 per word of a term left unmatched, -0.5 per mention word
unused, -1 per word of a followed reference not found, +1 when the main term is the head
noun, +0.05 per subterm level. A walk reads at most :data:`MAX_MENTION_WORDS` and
:data:`MAX_CONTEXT_WORDS` content words and visits at most :data:`VISIT_BUDGET` entries.

Codes are returned as the index prints them (``S52.50-``); :func:`complete_code` turns
them into FY2026 codes with the Tabular of a :class:`~medcode_nlp.kb.store.CodeKnowledgeBase`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode_nlp.errors import Errors, InputError, IntegrityError

if TYPE_CHECKING:
    from medcode_nlp.kb.store import CodeKnowledgeBase

SYSTEM = "icd10cm"
TREE_FORMAT = 1
DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "icd10cm_index_tree.json.gz"
#: Sidecar holding the SHA-256 of the shipped tree (checked on load).
CHECKSUM_SUFFIX = ".sha256"
TABLES = ("index", "neoplasm", "drug")
#: Bounds of one walk: content words read from the mention and from the context, and
#: entries visited (a walk stops descending when its budget is spent).
MAX_MENTION_WORDS = 24
MAX_CONTEXT_WORDS = 48
VISIT_BUDGET = 20_000
NEOPLASM_COLUMNS = (
    "malignant primary", "malignant secondary", "in situ", "benign", "uncertain behavior",
    "unspecified behavior",
)
DRUG_COLUMNS = (
    "poisoning accidental", "poisoning intentional self-harm", "poisoning assault",
    "poisoning undetermined", "adverse effect", "underdosing",
)
#: CSV column names of the table codes, in the order of the column names above.
CSV_CODE_COLUMNS = {
    "neoplasm": ("MalignantPrimary", "MalignantSecondary", "CaInSitu", "Benign",
                 "UncertainBehavior", "UnspecifiedBehavior"),
    "drug": ("PoisoningAccidental", "PoisoningIntentionalSelfHarm", "PoisoningAssault",
             "PoisoningUndetermined", "AdverseEffect", "Underdosing"),
}


def read_csv_rows(
    path: Path, table: str = "index", check: Callable[[str], str] | None = None
) -> list[list[Any]]:
    """Rows ``[level, term, nonessential modifiers, see, see also, code(s)]`` of a CDC CSV.

    ``table`` is ``"index"`` (one ``Code`` column), ``"neoplasm"`` or ``"drug"`` (six code
    columns). ``check`` maps each raw code to the code to keep (``""`` drops it); by default
    codes are only normalised to dotted form.
    """
    from medcode_nlp.codesets.icd10cm_index import normalize_code

    def default_check(raw: str) -> str:
        return normalize_code(raw) or "" if raw.strip().strip("-") else ""

    check = check or default_check
    rows: list[list[Any]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            for record in csv.DictReader(handle):
                codes: Any
                if table == "index":
                    codes = check(record.get("Code") or "")
                else:
                    codes = [check(record.get(c) or "") for c in CSV_CODE_COLUMNS[table]]
                rows.append([
                    int(record["Level"]),
                    " ".join((record["Term"] or "").split()),
                    (record.get("NonEssModif") or "").strip(),
                    " ".join((record.get("See") or "").split()),
                    " ".join((record.get("SeeAlso") or "").split()),
                    codes,
                ])
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(Errors.E009.format(
            path=path, fmt=f"ICD-10-CM {table} CSV", detail=f"{type(error).__name__}: {error}"
        )) from error
    if not rows:
        raise InputError(Errors.E009.format(path=path, fmt=f"ICD-10-CM {table} CSV",
                                            detail="no rows"))
    return rows

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


# ------------------------------------------------------------------------- hits
@dataclass(frozen=True)
class IndexHit:
    """One entry reached by a walk of the index, with what the walk used to reach it."""

    code: str  # code as given by the index (may be incomplete, e.g. "S52.5-" or a category)
    path: tuple[str, ...]  # main term then subterms walked
    depth: int  # number of subterm levels matched below the main term
    used: tuple[str, ...]  # content words of mention/context consumed by the path
    unused: tuple[str, ...]  # content words of the mention not consumed
    default: bool  # True when the code is the main term's own (no subterm matched)
    score: float  # ranking score (higher better)
    laterality: tuple[str, ...] = ()  # side words of the mention/context (left, right)
    table: str = "index"  # "index", "neoplasm" or "drug"
    column: str = ""  # table column the code comes from (neoplasm/drug tables)
    context_used: tuple[str, ...] = field(default=())  # the part of ``used`` from the context


@dataclass(frozen=True, slots=True)
class _Word:
    surface: str
    stem: str
    source: str  # "mention", "context" or "see"
    weight: float


# ------------------------------------------------------------------------ nodes
@dataclass(slots=True)
class _Node:
    table: int
    level: int
    term: str
    req: tuple[frozenset[str], ...]  # alternative sets of stems that select this entry
    opt: frozenset[str]  # qualifier stems (other comma parts)
    nemod: frozenset[str]  # nonessential-modifier stems
    negated: bool  # a "without ..." entry
    see: str
    see_also: str
    codes: tuple[str, ...]
    parent: int
    children: list[int] = field(default_factory=list)
    size: int = 1


def _term_keys(term: str) -> tuple[tuple[frozenset[str], ...], frozenset[str], bool]:
    """(alternative required stem sets, qualifier stems, negated) of an index term."""
    term = arabic(term)
    bracketed = " ".join(_BRACKETS.findall(term))  # "[ECG] [EKG]": optional synonyms
    parts = [p.strip() for p in _COMMA.split(_clean(_BRACKETS.sub(" ", term))) if p.strip()]
    if not parts:
        return (), frozenset(), False
    first_words = [w for w in words(parts[0]) if w not in _STOP]
    negated = bool(words(parts[0])[:1] == ["without"])
    first = frozenset(stem(w) for w in first_words)
    alternatives = [first]
    optional: set[str] = {stem(w) for w in words(bracketed) if w not in _STOP}
    for part in parts[1:]:
        part_words = [w for w in words(part) if w not in _STOP]
        if (
            len(part_words) == 1 and len(first_words) == 1
            and part_words[0][:3] == first_words[0][:3]
        ):
            alternatives.append(frozenset({stem(part_words[0])}))
        else:
            optional.update(stem(w) for w in part_words)
    if negated:
        alternatives = [a | {"without"} for a in alternatives]
    return tuple(a for a in alternatives if a), frozenset(optional - first), negated


def _nemod_stems(text: str) -> frozenset[str]:
    """Stems of the nonessential modifiers, except negative ones ("(without vomiting)")."""
    groups = re.findall(r"\(([^()]*)\)", text) or [text]
    kept = [g for g in groups if not g.strip().lower().startswith(("without", "no "))]
    return frozenset(stem(w) for g in kept for w in words(g) if w not in _STOP)


# ------------------------------------------------------------------------- walk
@dataclass(slots=True)
class _State:
    node: int
    used: frozenset[int]
    path: tuple[str, ...]
    depth: int
    gain: float
    see_hops: int
    column: int
    prior: tuple[_Word, ...] = ()  # words used before the last see reference


class IndexTree:
    """The parsed Alphabetic Index (with the neoplasm and drug tables when present)."""

    _cache: dict[Path, IndexTree] = {}
    _lock = threading.Lock()

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("format") != TREE_FORMAT:
            raise InputError(
                Errors.E009.format(path="index tree", fmt="ICD-10-CM index tree",
                                   detail=f"format {data.get('format')!r}, expected {TREE_FORMAT}")
            )
        self.provenance: dict[str, Any] = dict(data.get("provenance", {}))
        self._local = threading.local()  # per-thread visit budget of the running walk
        self.nodes: list[_Node] = []
        self.roots: dict[str, list[int]] = {t: [] for t in TABLES}
        for table_index, table in enumerate(TABLES):
            self._add_rows(table_index, table, data.get(table, []))
        self._by_stem: dict[tuple[int, str], list[int]] = {}
        for table_index, table in enumerate(TABLES):
            for root in self.roots[table]:
                for key in set().union(*self.nodes[root].req):
                    self._by_stem.setdefault((table_index, key), []).append(root)
        self._main_by_first: dict[tuple[int, str], list[int]] = {}
        for table_index, table in enumerate(TABLES):
            for root in self.roots[table]:
                first = _COMMA.split(_clean(self.nodes[root].term))[0].strip().lower()
                self._main_by_first.setdefault((table_index, first), []).append(root)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_local", None)  # thread-local walk state is not pickled
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _add_rows(self, table_index: int, table: str, rows: Sequence[Sequence[Any]]) -> None:
        stack: list[int] = []
        for row in rows:
            level, term, nemod, see, see_also, codes = row
            level = int(level)
            codes_t = tuple(codes) if isinstance(codes, list) else (codes,)
            req, opt, negated = _term_keys(term)
            del stack[level:]
            parent = stack[-1] if stack else -1
            node = _Node(
                table=table_index, level=level, term=term, req=req, opt=opt,
                nemod=_nemod_stems(nemod), negated=negated, see=see, see_also=see_also,
                codes=codes_t, parent=parent,
            )
            index = len(self.nodes)
            self.nodes.append(node)
            if parent >= 0:
                self.nodes[parent].children.append(index)
            else:
                self.roots[table].append(index)
            for ancestor in stack:
                self.nodes[ancestor].size += 1
            while len(stack) < level:  # a skipped level: attach to the closest ancestor
                stack.append(parent)
            stack.append(index)

    # --------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: Path | None = None) -> IndexTree:
        """The tree at ``path`` (the shipped data by default), read once and cached."""
        target = Path(path) if path is not None else DATA_FILE
        with cls._lock:
            cached = cls._cache.get(target)
            if cached is not None:
                return cached
            if not target.is_file():
                raise InputError(Errors.E010.format(path=target))
            raw = target.read_bytes()
            sidecar = target.with_name(target.name + CHECKSUM_SUFFIX)
            if sidecar.is_file():
                expected = sidecar.read_text(encoding="utf-8").split()[0]
                actual = hashlib.sha256(raw).hexdigest()
                if actual != expected:
                    raise IntegrityError(
                        Errors.E008.format(path=target, expected=expected, actual=actual)
                    )
            try:
                data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
            except (OSError, ValueError) as error:
                raise InputError(
                    Errors.E009.format(path=target, fmt="ICD-10-CM index tree", detail=str(error))
                ) from error
            tree = cls(data)
            cls._cache[target] = tree
            return tree

    @classmethod
    def from_csv(
        cls, index: Path, neoplasm: Path | None = None, drug: Path | None = None
    ) -> IndexTree:
        """A tree read straight from the CDC CSV exports (codes not checked)."""
        data: dict[str, Any] = {"format": TREE_FORMAT, "index": read_csv_rows(Path(index))}
        if neoplasm is not None:
            data["neoplasm"] = read_csv_rows(Path(neoplasm), "neoplasm")
        if drug is not None:
            data["drug"] = read_csv_rows(Path(drug), "drug")
        data["provenance"] = {"files": [str(p) for p in (index, neoplasm, drug) if p]}
        return cls(data)

    # ------------------------------------------------------------- queries
    def main_terms(self, word: str) -> list[str]:
        """Main terms of the Index to Diseases that a word (or its adjective) names."""
        key = stem(word)
        return [self.nodes[i].term for i in self._by_stem.get((0, key), [])]

    def entry_path(self, node: int) -> tuple[str, ...]:
        """Terms from the main term down to ``node``."""
        chain = []
        while node >= 0:
            chain.append(self.nodes[node].term)
            node = self.nodes[node].parent
        return tuple(reversed(chain))

    def walk(self, mention: str, context: str = "", limit: int = 5) -> list[IndexHit]:
        """Index entries for a mention, best first (at most ``limit``, one per code)."""
        if not isinstance(mention, str) or not isinstance(context, str):
            raise InputError(Errors.E004.format(type_name=type(mention).__name__))
        mention = arabic(expand_abbreviations(mention))
        mention_words = words(mention)
        context_words = words(arabic(expand_abbreviations(context)))
        laterality = tuple(w for w in (*mention_words, *context_words) if w in LATERALITY)
        bag = [_Word(w, stem(w), "mention", 1.0) for w in mention_words
               if w not in _STOP and w not in LATERALITY][:MAX_MENTION_WORDS]
        mention_stems = [w.stem for w in bag]
        # The context words that are not already in the mention (one copy of each).
        seen = {w.stem for w in bag}
        added = 0
        for w in context_words:
            if w in _STOP or w in LATERALITY or added >= MAX_CONTEXT_WORDS:
                continue
            key = stem(w)
            if key not in seen:
                seen.add(key)
                added += 1
                bag.append(_Word(w, key, "context", 0.4))
        if any(w in _NEGATION for w in mention_words):
            bag.append(_Word("without", "without", "mention", 0.5))
        # Sides select only the rare entries that name one ("Block, bundle branch, left").
        bag.extend(_Word(w, w, "side", 0.3) for w in dict.fromkeys(laterality))
        # Words the Index's own phrasing implies ("History, family, malignant neoplasm").
        # Each is reported (and counted as used) under the mention word that implies it.
        implied: list[tuple[str, str]] = []
        present = set(mention_words)
        for trigger in sorted(present & _MALIGNANT)[:1]:
            implied += [("malignant", trigger), ("neoplasm", trigger)]
        for trigger in sorted(present & _FAMILY)[:1]:
            implied += [("history", trigger), ("family", trigger)]
        if "history" in present and not present & _FAMILY:
            implied.append(("personal", "history"))
        bag.extend(_Word(trigger, stem(w), "implied", 0.5) for w, trigger in implied
                   if stem(w) not in seen)
        if any(w == "history" for w, _ in implied):
            mention_stems.append(stem("history"))
        head = self._head(mention)
        found: dict[str, tuple[float, IndexHit]] = {}
        self._local.budget = VISIT_BUDGET
        for root, head_bonus in self._candidate_roots(mention_stems, head):
            for hit in self._walk_from(root, bag, head_bonus, laterality):
                if hit.path[0] == "History" and any(
                        (0, stem(w)) in self._by_stem for w in hit.unused):
                    continue  # a history entry must account for every condition named
                best = found.get(hit.code)
                if best is None or hit.score > best[0]:
                    found[hit.code] = (hit.score, hit)
        ranked = sorted(found.values(), key=lambda item: (-item[0], item[1].code))
        return [hit for _, hit in ranked[: max(limit, 0)]]

    # ------------------------------------------------------------ internals
    def _head(self, mention: str) -> str | None:
        """Stem of the head noun: the last main-term word before the first connecting word
        of the first clause that names a main term."""
        mention_words = words(mention)
        clause = next((c for c in map(words, _CLAUSE.split(mention))
                       if any((0, stem(w)) in self._by_stem for w in c if w not in _STOP)), [])
        first: list[str] = []
        for w in clause:
            if w in _SPLITTERS and first:
                break
            first.append(w)
        for segment in (first, mention_words):
            for w in reversed(segment):
                if w not in _STOP and (0, stem(w)) in self._by_stem:
                    return stem(w)
        return None

    def _candidate_roots(
        self, mention_stems: list[str], head: str | None
    ) -> list[tuple[int, float]]:
        present = set(mention_stems)
        roots: dict[int, float] = {}
        for key in present:
            for root in self._by_stem.get((0, key), []):
                node = self.nodes[root]
                if any(alternative <= present for alternative in node.req):
                    bonus = 1.0 if head is not None and any(
                        head in alternative for alternative in node.req) else 0.0
                    roots[root] = max(roots.get(root, 0.0), bonus)
        return list(roots.items())

    def _match(
        self, node: _Node, bag: list[_Word], used: frozenset[int]
    ) -> tuple[list[int], float] | None:
        """Word indices a node consumes and the gain, or None when it does not match."""
        best: tuple[list[int], float] | None = None
        present = self._present(bag)
        for alternative in node.req:
            if present.isdisjoint(alternative):
                continue
            taken: list[int] = []
            gain = 0.0
            for key in alternative:
                index = self._find(bag, used, taken, key)
                if index is not None:
                    taken.append(index)
                    gain += bag[index].weight
            matched = len(taken)
            if matched == 0 or matched * 2 < len(alternative):
                continue
            if node.negated and not any(bag[i].stem == "without" for i in taken):
                continue
            gain -= 0.4 * (len(alternative) - matched)
            if best is None or gain > best[1]:
                best = (taken, gain)
        if best is None:
            return None
        taken, gain = best
        for key in node.opt:
            index = self._find(bag, used, taken, key)
            if index is not None:
                taken.append(index)
                gain += bag[index].weight * 0.8
        return taken, gain

    def _present(self, bag: list[_Word]) -> frozenset[str]:
        """Stems the bag can match (with their synonyms), cached per bag object."""
        cached = getattr(self._local, "present", None)
        if cached is not None and cached[0] is bag:
            return cached[1]
        stems = {w.stem for w in bag}
        for key in list(stems):
            stems.update(_synonyms().get(key, ()))
        present = frozenset(stems)
        self._local.present = (bag, present)
        return present

    @staticmethod
    def _find(bag: list[_Word], used: frozenset[int], taken: list[int], key: str) -> int | None:
        alternatives = _synonyms().get(key, ())
        for index, word in enumerate(bag):  # mention words come first in the bag
            if (word.stem == key or word.stem in alternatives) and index not in used \
                    and index not in taken:
                return index
        return None

    def _walk_from(
        self, root: int, bag: list[_Word], head_bonus: float, laterality: tuple[str, ...]
    ) -> list[IndexHit]:
        node = self.nodes[root]
        matched = self._match(node, bag, frozenset())
        if matched is None:
            return []
        taken, gain = matched
        start = _State(root, frozenset(taken), (node.term,), 0, gain + head_bonus
                       + 0.02 * math.log1p(node.size), 0, -1)
        hits: list[IndexHit] = []
        self._descend(start, bag, hits, laterality)
        return hits

    def _descend(
        self, state: _State, bag: list[_Word], hits: list[IndexHit], laterality: tuple[str, ...]
    ) -> None:
        self._local.budget -= 1
        if self._local.budget < 0:
            return
        node = self.nodes[state.node]
        code = self._code(node, state.column, bag, state.used)
        if not code and node.table == 0 and state.depth and not (node.see or node.see_also):
            code = self._default_child_code(node)  # "Tear, meniscus, medial" -> S83.24-
        if code:
            hits.append(self._hit(code, state, bag, laterality, node.table))
        for reference in (node.see, node.see_also):
            if reference and state.see_hops < 2:
                self._follow(reference, state, bag, hits, laterality)
        for child_index in node.children:
            child = self.nodes[child_index]
            if not child.req:  # "with", "in", "due to", "unspecified site": pass through
                through = _State(child_index, state.used, (*state.path, child.term), state.depth,
                                 state.gain, state.see_hops, state.column, state.prior)
                child_code = self._code(child, state.column, bag, state.used)
                if child_code and not code and "unspecified" in child.term.lower():
                    hits.append(self._hit(child_code, through, bag, laterality, child.table))
                for reference in (child.see, child.see_also):
                    if reference and state.see_hops < 2:
                        self._follow(reference, through, bag, hits, laterality)
                self._descend_children_only(through, bag, hits, laterality)
                continue
            matched = self._match(child, bag, state.used)
            if matched is None:
                continue
            taken, gain = matched
            self._descend(
                _State(child_index, state.used | frozenset(taken), (*state.path, child.term),
                       state.depth + 1, state.gain + gain + 0.05, state.see_hops, state.column, state.prior),
                bag, hits, laterality,
            )

    def _descend_children_only(
        self, state: _State, bag: list[_Word], hits: list[IndexHit], laterality: tuple[str, ...]
    ) -> None:
        """Continue below a pass-through entry only through children the words select."""
        self._local.budget -= 1
        if self._local.budget < 0:
            return
        node = self.nodes[state.node]
        for child_index in node.children:
            child = self.nodes[child_index]
            if not child.req:
                if state.depth < 8:
                    self._descend_children_only(
                        _State(child_index, state.used, (*state.path, child.term), state.depth,
                               state.gain, state.see_hops, state.column, state.prior),
                        bag, hits, laterality)
                continue
            matched = self._match(child, bag, state.used)
            if matched is None:
                continue
            taken, gain = matched
            self._descend(
                _State(child_index, state.used | frozenset(taken), (*state.path, child.term),
                       state.depth + 1, state.gain + gain + 0.05, state.see_hops, state.column, state.prior),
                bag, hits, laterality,
            )

    def _default_child_code(self, node: _Node) -> str:
        """The code of an entry that gives none itself: its "unspecified" subterm's, else its
        "specified (type) NEC" subterm's (the Tabular's "other" code for a type not said)."""
        for wanted in ("unspecified", "specified"):
            for child_index in node.children:
                child = self.nodes[child_index]
                term = child.term.lower()
                if child.codes and child.codes[0] and term.startswith(wanted) and (
                        wanted == "unspecified" or term.endswith("nec")):
                    return child.codes[0]
        return ""

    def _code(self, node: _Node, column: int, bag: list[_Word], used: frozenset[int]) -> str:
        if node.table == 0:
            return node.codes[0] if node.codes else ""
        if not node.codes:
            return ""
        if column < 0:
            column = self._column(node.table, bag)
        return node.codes[column] if column < len(node.codes) else ""

    @staticmethod
    def _column(table: int, bag: Iterable[_Word]) -> int:
        """Table column from the mention's words when no reference chose one."""
        stems = {w.stem for w in bag if w.source != "context"}
        if table == 1:
            if stems & {stem("metastatic"), stem("metastasis"), stem("secondary")}:
                return 1
            if "situ" in stems:
                return 2
            if stems & {stem("malignant"), stem("cancer"), stem("carcinoma"),
                        stem("malignancy"), stem("sarcoma")}:
                return 0
            if stem("benign") in stems:
                return 3
            if stem("uncertain") in stems:
                return 4
            return 5
        if stems & {stem("adverse"), stem("effect")}:
            return 4
        if stem("underdosing") in stems:
            return 5
        return 0

    def _follow(
        self, reference: str, state: _State, bag: list[_Word], hits: list[IndexHit],
        laterality: tuple[str, ...],
    ) -> None:
        """Walk into the entry a see / see-also reference names."""
        reference = " ".join(reference.split())
        code_ref = _CODE_REF.match(reference)
        if code_ref:
            hits.append(self._hit(code_ref.group(1), state, bag, laterality, 0, bonus=-0.1))
            return
        parts = [p.strip() for p in _COMMA.split(reference) if p.strip()]
        if not parts or parts[0].lower() == "condition":
            return
        table, column = 0, -1
        lowered = [p.lower() for p in parts]
        if lowered[0].startswith("table of drugs"):
            table = 2
            column = next((i for i, name in enumerate(DRUG_COLUMNS) if lowered[-1] in name
                           or name.startswith(lowered[-1])), -1)
            parts = []
        elif lowered[0].split()[0] == "neoplasm":
            table = 1
            joined = " ".join(lowered)
            if "secondary" in joined:
                column = 1
            elif "in situ" in joined:
                column = 2
            elif "benign" in joined:
                column = 3
            elif "uncertain" in joined:
                column = 4
            elif "unspecified behavior" in joined:
                column = 5
            elif "malignant" in joined:
                column = 0
            rest = lowered[0].split(None, 1)[1:]  # "Neoplasm ovary, malignant"
            parts = [*rest, *lowered[1:]]
            parts = [p for p in parts if not any(
                word in p for word in ("malignant", "benign", "in situ", "uncertain",
                                       "unspecified behavior", "secondary", "primary"))]
        parts = [p for p in parts if not p.lower().startswith("by ")]
        if table == 0 and not parts:  # the reference named only "by ..." qualifiers
            return
        if table == 0:
            roots = self._main_by_first.get((0, parts[0].lower()), [])
            remainder = parts[1:]
        else:
            roots = list(self.roots[TABLES[table]]) if table == 1 else []
            remainder = parts
        see_words = [_Word(w, stem(w), "see", 0.0) for p in remainder for w in words(p)
                     if w not in _STOP]
        # The walk below a reference uses the reference's words first, then the unused ones.
        # Words the path already used may name the site again (no gain, no penalty).
        reused = [_Word(bag[i].surface, bag[i].stem, "reuse", 0.0) for i in sorted(state.used)
                  if bag[i].source in ("mention", "context")]
        rest_bag = [*see_words, *[w for i, w in enumerate(bag) if i not in state.used], *reused]
        if table == 2:
            roots = self._drug_roots(rest_bag)
        for root in roots:
            node = self.nodes[root]
            taken: list[int] = []
            gain = 0.0
            main_keys = set().union(*node.req) if node.req else set()
            qualifiers = [i for i, w in enumerate(see_words) if w.stem in main_keys | node.opt]
            if table == 0 and remainder and len(node.req) and qualifiers:
                taken.extend(qualifiers)
            elif table == 2:
                matched = self._match(node, rest_bag, frozenset())
                if matched is None:
                    continue
                taken, gain = matched
            prior = (*state.prior, *(bag[i] for i in sorted(state.used)))
            start = _State(root, frozenset(taken), (*state.path, "see " + reference, node.term),
                           state.depth, state.gain + gain - 0.1, state.see_hops + 1, column,
                           prior)
            self._descend(start, rest_bag, hits, laterality)

    def _drug_roots(self, bag: list[_Word]) -> list[int]:
        roots: dict[int, None] = {}
        for word in bag:
            for root in self._by_stem.get((2, word.stem), []):
                roots[root] = None
        return list(roots)

    def _hit(
        self, code: str, state: _State, bag: list[_Word], laterality: tuple[str, ...],
        table: int, bonus: float = 0.0,
    ) -> IndexHit:
        # Nonessential modifiers of the entries walked use up the words they name, last.
        nemods: set[str] = set()
        node = state.node
        while node >= 0:
            nemods |= self.nodes[node].nemod
            node = self.nodes[node].parent
        optional = [i for i, w in enumerate(bag) if i not in state.used
                    and w.source in ("mention", "context") and w.stem in nemods]
        taken = state.used | frozenset(optional)
        used = [*state.prior, *(bag[i] for i in sorted(taken))]
        implied_by = {bag[i].surface for i in taken if bag[i].source == "implied"}
        unused = [w.surface for i, w in enumerate(bag) if w.source == "mention"
                  and i not in taken and w.stem != "without" and w.surface not in implied_by]
        see_missing = sum(1 for i, w in enumerate(bag) if w.source == "see" and i not in taken)
        score = (state.gain + bonus + sum(0.3 * bag[i].weight for i in optional)
                 - 0.5 * len(unused) - 1.0 * see_missing)
        column_names = NEOPLASM_COLUMNS if table == 1 else DRUG_COLUMNS if table == 2 else ()
        column = state.column if state.column >= 0 else (
            self._column(table, bag) if table else -1)
        return IndexHit(
            code=code,
            path=state.path,
            depth=state.depth,
            used=tuple(dict.fromkeys(w.surface for w in used if w.source != "see")),
            unused=tuple(unused),
            default=state.depth == 0,
            score=round(score, 4),
            laterality=laterality,
            table=TABLES[table],
            column=column_names[column] if column >= 0 and column_names else "",
            context_used=tuple(w.surface for w in used if w.source == "context"),
        )


def _replace_score(hit: IndexHit, score: float) -> IndexHit:
    from dataclasses import replace

    return replace(hit, score=round(score, 4))


# ------------------------------------------------------------------- completion
def _code_key(code: str) -> str:
    return code.strip().upper().replace(".", "").rstrip("-")


def _preference(code: str, description: str) -> float:
    text = description.lower()
    score = 0.0
    if "unspecified" in text and "with unspecified" not in text:
        score += 2.0
    if text.startswith("other") or " other " in f" {text} ":
        score -= 1.0
    if code.endswith("9"):
        score += 1.0
    elif code.endswith("0"):
        score += 0.5
    return score


def complete_code(kb: CodeKnowledgeBase, code: str) -> str | None:
    """An index code as an FY2026 code: the dash dropped, then down to the unspecified child.

    Returns a billable code, or a code that only lacks its 7th character (``S52.509``; the
    caller chooses it), with placeholder ``X`` added when the Tabular needs one
    (``S33.5`` -> ``S33.5XX``). None when the code is not in the knowledge base.
    """
    key = _code_key(code)
    if not key:
        return None
    entry = kb.get(SYSTEM, key)
    if entry is None:
        return None
    current = entry.code
    for _ in range(8):
        entry = kb.get(SYSTEM, current)
        if entry is None:
            return None
        if entry.billable:
            return entry.code
        children = kb.children(SYSTEM, current)
        if not children:
            return None
        current_key = _code_key(current)
        if all(len(_code_key(child)) == 7 for child in children) and len(current_key) < 7:
            if len(current_key) == 6:
                return current
            padded = current_key.ljust(6, "X")
            return f"{padded[:3]}.{padded[3:]}"
        described = []
        for child in children:
            child_entry = kb.get(SYSTEM, child)
            described.append((child, child_entry.description if child_entry else ""))
        current = max(described, key=lambda item: (_preference(*item), -children.index(item[0])))[0]
    return None
