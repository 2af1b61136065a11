"""The Index tree's entries as flat arrays, read on demand.

A walk visits a few dozen of the Index's 90,000 entries, so the tree keeps them as arrays
(parent, level, table, subterm size, children in CSR form) and one UTF-8 blob of JSON
records (term, references, codes, the words that select the entry), and makes a
:class:`~medcode_nlp.codesets.index_entries._Node` the first time an entry is asked for.
The arrays of the shipped tree are written once to the derived cache as an uncompressed
``.npz`` and memory-mapped from there (:func:`medcode_nlp.kb.npz_mmap.load_npz`): every
process reads the same pages, and a load parses no JSON. :func:`compact_rows` keeps the
layout rules of the CDC files (a row's level and position give its parent; a skipped level
attaches to the closest ancestor).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from medcode_nlp.codesets.index_entries import TABLES, _Node
from medcode_nlp.codesets.index_words import _COMMA, _clean

#: Bumped when the arrays below change meaning (part of the derived-cache key).
STORE_FORMAT = 1


def compact_rows(tables: Mapping[str, Sequence[Sequence[Any]]],
                 keys: Mapping[str, Sequence[Any]],
                 provenance: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a tree from its rows per table and their ``row_keys``."""
    table_of: list[int] = []
    level_of: list[int] = []
    parent_of: list[int] = []
    size_of: list[int] = []
    children: list[list[int]] = []
    records: list[bytes] = []
    roots: dict[str, list[int]] = {t: [] for t in TABLES}
    for table_index, table in enumerate(TABLES):
        stack: list[int] = []
        for row, row_key in zip(tables.get(table, []), keys.get(table, []), strict=True):
            level, term, _nemod, see, see_also, codes = row
            level = int(level)
            req_lists, opt_list, nemod_list, negated = row_key
            del stack[level:]
            parent = stack[-1] if stack else -1
            index = len(table_of)
            table_of.append(table_index)
            level_of.append(level)
            parent_of.append(parent)
            size_of.append(1)
            children.append([])
            records.append(json.dumps(
                [term, see, see_also, codes, req_lists, opt_list, nemod_list, bool(negated)],
                ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
            if parent >= 0:
                children[parent].append(index)
            else:
                roots[table].append(index)
            for ancestor in stack:  # -1 (no ancestor) counts the entry itself, as it did
                size_of[ancestor] += 1
            while len(stack) < level:  # a skipped level: attach to the closest ancestor
                stack.append(parent)
            stack.append(index)
    by_stem: dict[str, list[int]] = {}
    main_by_first: dict[str, list[int]] = {}
    for table_index, table in enumerate(TABLES):
        for root in roots[table]:
            record = json.loads(records[root])
            term, req_lists = record[0], record[4]
            for key in set().union(*(frozenset(a) for a in req_lists)):
                by_stem.setdefault(f"{table_index}\t{key}", []).append(root)
            first = _COMMA.split(_clean(term))[0].strip().lower()
            main_by_first.setdefault(f"{table_index}\t{first}", []).append(root)
    lookup = json.dumps({"roots": roots, "by_stem": by_stem, "main_by_first": main_by_first,
                         "provenance": dict(provenance or {})},
                        ensure_ascii=False).encode("utf-8")
    return {
        "format": np.array([STORE_FORMAT], dtype=np.int32),
        "table": np.array(table_of, dtype=np.int8),
        "level": np.array(level_of, dtype=np.int16),
        "parent": np.array(parent_of, dtype=np.int32),
        "size": np.array(size_of, dtype=np.int32),
        "child_ptr": np.cumsum([0] + [len(c) for c in children], dtype=np.int64),
        "child_idx": np.array([i for c in children for i in c], dtype=np.int32),
        "record_ptr": np.cumsum([0] + [len(r) for r in records], dtype=np.int64),
        "records": np.frombuffer(b"".join(records), dtype=np.uint8),
        "lookup": np.frombuffer(lookup, dtype=np.uint8),
    }


def lookups(arrays: Mapping[str, np.ndarray]) -> tuple[
        dict[str, list[int]], dict[tuple[int, str], list[int]], dict[tuple[int, str], list[int]],
        dict[str, Any]]:
    """(roots per table, main terms by stem, main terms by first comma part, provenance)."""
    data = json.loads(arrays["lookup"].tobytes().decode("utf-8"))

    def keyed(found: dict[str, list[int]]) -> dict[tuple[int, str], list[int]]:
        out: dict[tuple[int, str], list[int]] = {}
        for key, value in found.items():
            table, text = key.split("\t", 1)
            out[(int(table), text)] = value
        return out

    return (data["roots"], keyed(data["by_stem"]), keyed(data["main_by_first"]),
            data["provenance"])


class NodeStore(Sequence[_Node]):
    """The entries of a tree by index, each made from the arrays on first use and kept."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.arrays = dict(arrays)
        self._made: dict[int, _Node] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.arrays["table"])

    def __getitem__(self, index: int) -> _Node:  # type: ignore[override]
        node = self._made.get(index)
        if node is None:
            if index < 0:
                index += len(self)
            node = self._made.get(index) or self._make(index)
        return node

    def __iter__(self) -> Iterator[_Node]:
        return (self[i] for i in range(len(self)))

    def _make(self, index: int) -> _Node:
        if not 0 <= index < len(self):
            raise IndexError(index)
        a = self.arrays
        lo, hi = int(a["record_ptr"][index]), int(a["record_ptr"][index + 1])
        term, see, see_also, codes, req_lists, opt, nemod, negated = json.loads(
            a["records"][lo:hi].tobytes().decode("utf-8"))
        req = tuple(frozenset(alternative) for alternative in req_lists)
        first, last = int(a["child_ptr"][index]), int(a["child_ptr"][index + 1])
        node = _Node(
            table=int(a["table"][index]), level=int(a["level"][index]), term=term, req=req,
            opt=frozenset(opt), nemod=frozenset(nemod), negated=negated, see=see,
            see_also=see_also, codes=tuple(codes) if isinstance(codes, list) else (codes,),
            parent=int(a["parent"][index]), children=a["child_idx"][first:last].tolist(),
            size=int(a["size"][index]),
            keys=req[0] if len(req) == 1 else frozenset().union(*req),
        )
        with self._lock:
            return self._made.setdefault(index, node)

    def __getstate__(self) -> dict[str, Any]:
        return {"arrays": {k: np.asarray(v) for k, v in self.arrays.items()}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["arrays"])  # type: ignore[misc]
