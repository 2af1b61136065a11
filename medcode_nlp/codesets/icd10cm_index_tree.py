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
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medcode_nlp.codesets.index_completion import SYSTEM as SYSTEM  # re-exported
from medcode_nlp.codesets.index_completion import complete_code as complete_code
from medcode_nlp.codesets.index_entries import (
    MAX_CONTEXT_WORDS,
    MAX_MENTION_WORDS,
    TABLES,
    VISIT_BUDGET,
    IndexHit,
    _nemod_stems,
    _term_keys,
    _Word,
)
from medcode_nlp.codesets.index_store import STORE_FORMAT, NodeStore, compact_rows, lookups
from medcode_nlp.codesets.index_walk import IndexWalk
from medcode_nlp.codesets.index_words import (
    _FAMILY,
    _MALIGNANT,
    _NEGATION,
    _STOP,
    LATERALITY,
    arabic,
    expand_abbreviations,
    stem,
    words,
)
from medcode_nlp.errors import Errors, InputError, IntegrityError

TREE_FORMAT = 1
DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "icd10cm_index_tree.json.gz"
#: Sidecar holding the SHA-256 of the shipped tree (checked on load).
CHECKSUM_SUFFIX = ".sha256"
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
    from medcode_nlp.codesets.icd10cm_index import dotted_index_code

    def default_check(raw: str) -> str:
        return dotted_index_code(raw) or "" if raw.strip().strip("-") else ""

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



def row_keys(rows: Sequence[Sequence[Any]]) -> list[Any]:
    """Per row, the words a walk matches (lists, for storing): required stem sets, qualifier
    stems, nonessential-modifier stems, negated."""
    keys = []
    for row in rows:
        req, opt, negated = _term_keys(row[1])
        keys.append([[sorted(a) for a in req], sorted(opt), sorted(_nemod_stems(row[2])),
                     negated])
    return keys


#: Modules whose code decides :func:`row_keys` (part of the derived-cache key).
KEY_SOURCES = ("medcode_nlp.codesets.index_entries", "medcode_nlp.codesets.index_words",
               "medcode_nlp.codesets.index_store", "medcode_nlp.codesets.icd10cm_index_tree")


def _shipped_arrays(raw: bytes) -> dict[str, Any]:
    """The store arrays of the shipped tree, memory-mapped from the derived cache (made from
    the JSON once: parsing it and stemming every term takes seconds)."""
    from medcode_nlp.kb import derived

    key = [hashlib.sha256(raw).hexdigest(), str(STORE_FORMAT),
           derived.source_digest(KEY_SOURCES)]
    return derived.cached_arrays("index_tree", key, lambda: _arrays(_parse(DATA_FILE, raw)))


def _parse(target: Path, raw: bytes) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except (OSError, ValueError) as error:
        raise InputError(
            Errors.E009.format(path=target, fmt="ICD-10-CM index tree", detail=str(error))
        ) from error
    if data.get("format") != TREE_FORMAT:
        raise InputError(
            Errors.E009.format(path="index tree", fmt="ICD-10-CM index tree",
                               detail=f"format {data.get('format')!r}, expected {TREE_FORMAT}")
        )
    return data


def _arrays(data: dict[str, Any], keys: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    tables = {t: data.get(t, []) for t in TABLES}
    if keys is None or any(len(keys.get(t, [])) != len(tables[t]) for t in TABLES):
        keys = {t: row_keys(tables[t]) for t in TABLES}
    return compact_rows(tables, keys, data.get("provenance", {}))


class IndexTree(IndexWalk):
    """The parsed Alphabetic Index (with the neoplasm and drug tables when present)."""

    _cache: dict[Path, IndexTree] = {}
    _lock = threading.Lock()

    def __init__(self, data: dict[str, Any], keys: dict[str, list[Any]] | None = None) -> None:
        """``keys``: the rows' parsed words (:func:`row_keys`) when already worked out."""
        if data.get("format") != TREE_FORMAT:
            raise InputError(
                Errors.E009.format(path="index tree", fmt="ICD-10-CM index tree",
                                   detail=f"format {data.get('format')!r}, expected {TREE_FORMAT}")
            )
        self._attach(_arrays(data, keys))

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any]) -> IndexTree:
        """A tree over the arrays of :func:`~medcode_nlp.codesets.index_store.compact_rows`."""
        tree = cls.__new__(cls)
        tree._attach(arrays)
        return tree

    def _attach(self, arrays: dict[str, Any]) -> None:
        self._local = threading.local()  # per-thread visit budget of the running walk
        self._child_stems = {}  # node -> stem index of its subterms, made on first use
        self._path_nemods = {}  # node -> nonessential modifiers down to it, made on first use
        self.nodes = NodeStore(arrays)
        self.roots, self._by_stem, self._main_by_first, provenance = lookups(arrays)
        self.provenance: dict[str, Any] = dict(provenance)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_local", None)  # thread-local walk state is not pickled
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_child_stems", {})
        self.__dict__.setdefault("_path_nemods", {})
        self._local = threading.local()

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
            tree = (cls.from_arrays(_shipped_arrays(raw)) if target == DATA_FILE
                    else cls(_parse(target, raw)))
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
