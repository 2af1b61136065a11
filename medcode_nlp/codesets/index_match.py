"""Word matching of the Index walk: which entries a mention's words select, and with what
gain (the lookup internals of :class:`~medcode_nlp.codesets.index_walk.IndexWalk`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from medcode_nlp.codesets.index_entries import _Node, _Word
from medcode_nlp.codesets.index_words import _CLAUSE, _SPLITTERS, _STOP, _synonyms, stem, words

#: Entries with at least this many subterms get a stem index of them (see ``_selectable``).
CHILD_INDEX_MIN = 16


class IndexMatch:
    """Head noun, candidate main terms, and the match of an entry's words against a bag."""

    nodes: Sequence[_Node]
    _child_stems: dict[int, dict[str, tuple[int, ...]]]
    _by_stem: dict[tuple[int, str], list[int]]
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
