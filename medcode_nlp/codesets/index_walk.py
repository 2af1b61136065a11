"""The walk of the Alphabetic Index: hits, entries, walk state, and the matching, descent and see-reference internals of :class:`~medcode_nlp.codesets.icd10cm_index_tree.IndexTree`."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medcode_nlp.codesets.index_words import (
    _CLAUSE,
    _CODE_REF,
    _COMMA,
    _SPLITTERS,
    _STOP,
    _synonyms,
    stem,
    words,
)

if TYPE_CHECKING:
    pass
from medcode_nlp.codesets.index_entries import (
    DRUG_COLUMNS,
    NEOPLASM_COLUMNS,
    TABLES,
    IndexHit,
    _Node,
    _Word,
)


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




#: Entries with at least this many subterms get a stem index of them (see ``_selectable``).
CHILD_INDEX_MIN = 16


class IndexWalk:
    """The walk internals; :class:`~medcode_nlp.codesets.icd10cm_index_tree.IndexTree` holds
    the entries and loads them."""

    nodes: list[_Node]
    _child_stems: dict[int, dict[str, tuple[int, ...]]]
    roots: dict[str, list[int]]
    _by_stem: dict[tuple[int, str], list[int]]
    _main_by_first: dict[tuple[int, str], list[int]]
    _local: threading.local

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

    def _selectable(self, node_index: int, present: frozenset[str]) -> list[int]:
        """The children of a node that ``present`` may select, and its pass-through children,
        in the node's order. An entry with many subterms ("Disease", "Fracture") has them
        indexed by stem, so a walk looks only at those sharing a stem with the words."""
        children = self.nodes[node_index].children
        if len(children) < CHILD_INDEX_MIN:
            return children
        index = self._child_stems.get(node_index)
        if index is None:
            index = self._index_children(children)
            self._child_stems[node_index] = index
        positions = set(index.get("", ()))
        for key in present:
            positions.update(index.get(key, ()))
        return [children[p] for p in sorted(positions)]

    def _index_children(self, children: list[int]) -> dict[str, tuple[int, ...]]:
        """Stem -> positions of the children whose words hold it ("" for pass-through ones)."""
        found: dict[str, list[int]] = {}
        for position, child_index in enumerate(children):
            child = self.nodes[child_index]
            for key in (child.keys if child.req else ("",)):
                found.setdefault(key, []).append(position)
        return {key: tuple(positions) for key, positions in found.items()}

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
        present = self._present(bag)
        for child_index in self._selectable(state.node, present):
            child = self.nodes[child_index]
            if child.req and present.isdisjoint(child.keys):
                continue  # no word of the bag can select it (_match would say None)
            if not child.req:  # "with", "in", "due to", "unspecified site": pass through
                through = self._pass_through(child_index, state)
                child_code = self._code(child, state.column, bag, state.used)
                if child_code and not code and "unspecified" in child.term.lower():
                    hits.append(self._hit(child_code, through, bag, laterality, child.table))
                for reference in (child.see, child.see_also):
                    if reference and state.see_hops < 2:
                        self._follow(reference, through, bag, hits, laterality)
                self._descend_children_only(through, bag, hits, laterality)
                continue
            self._descend_if_matched(child_index, state, bag, hits, laterality)

    def _descend_if_matched(
        self, child_index: int, state: _State, bag: list[_Word], hits: list[IndexHit],
        laterality: tuple[str, ...]
    ) -> None:
        """Go down to a child entry when the mention's words select it."""
        child = self.nodes[child_index]
        matched = self._match(child, bag, state.used)
        if matched is None:
            return
        taken, gain = matched
        self._descend(
            _State(child_index, state.used | frozenset(taken), (*state.path, child.term),
                   state.depth + 1, state.gain + gain + 0.05, state.see_hops, state.column,
                   state.prior),
            bag, hits, laterality,
        )

    def _descend_children_only(
        self, state: _State, bag: list[_Word], hits: list[IndexHit], laterality: tuple[str, ...]
    ) -> None:
        """Continue below a pass-through entry only through children the words select."""
        self._local.budget -= 1
        if self._local.budget < 0:
            return
        present = self._present(bag)
        for child_index in self._selectable(state.node, present):
            child = self.nodes[child_index]
            if child.req and present.isdisjoint(child.keys):
                continue  # no word of the bag can select it (_match would say None)
            if not child.req:
                if state.depth < 8:
                    self._descend_children_only(self._pass_through(child_index, state),
                                                bag, hits, laterality)
                continue
            self._descend_if_matched(child_index, state, bag, hits, laterality)

    def _pass_through(self, child_index: int, state: _State) -> _State:
        """The state at a child entry passed through ("with", "due to"): no word used."""
        child = self.nodes[child_index]
        return _State(child_index, state.used, (*state.path, child.term), state.depth,
                      state.gain, state.see_hops, state.column, state.prior)

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
