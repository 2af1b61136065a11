"""The walk of the Alphabetic Index: walk state, descent and see references (the internals
of :class:`~medcode_nlp.codesets.icd10cm_index_tree.IndexTree`; word matching is in
:mod:`~medcode_nlp.codesets.index_match`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from medcode_nlp.codesets.index_entries import (
    DRUG_COLUMNS,
    NEOPLASM_COLUMNS,
    TABLES,
    IndexHit,
    _Node,
    _Word,
)
from medcode_nlp.codesets.index_match import IndexMatch
from medcode_nlp.codesets.index_words import (
    _CODE_REF,
    _COMMA,
    _STOP,
    stem,
    words,
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




class IndexWalk(IndexMatch):
    """The descent and see-reference internals; :class:`~medcode_nlp.codesets.
    icd10cm_index_tree.IndexTree` holds the entries and loads them."""

    roots: dict[str, list[int]]
    _main_by_first: dict[tuple[int, str], list[int]]
    _path_nemods: dict[int, frozenset[str]]

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

    def _nemods_to(self, node: int) -> frozenset[str]:
        """The nonessential-modifier stems of an entry and its ancestors (cached per entry)."""
        found = self._path_nemods.get(node)
        if found is None:
            parent = self.nodes[node].parent
            found = self.nodes[node].nemod | self._nemods_to(parent) if parent >= 0 \
                else self.nodes[node].nemod
            self._path_nemods[node] = found
        return found

    def _hit(
        self, code: str, state: _State, bag: list[_Word], laterality: tuple[str, ...],
        table: int, bonus: float = 0.0,
    ) -> IndexHit:
        # Nonessential modifiers of the entries walked use up the words they name, last.
        nemods = self._nemods_to(state.node)
        optional = [i for i, w in enumerate(bag) if i not in state.used
                    and w.source in ("mention", "context") and w.stem in nemods] if nemods else []
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
