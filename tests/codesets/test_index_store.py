"""The Index tree's entries as flat arrays: same entries, made on first use, shareable."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from medcode_nlp.codesets.icd10cm_index_tree import IndexTree, row_keys
from medcode_nlp.codesets.index_store import NodeStore, compact_rows
from medcode_nlp.kb import derived

# Made-up rows in the layout of the shipped tree: [level, term, modifiers, see, see also, code].
ROWS = [
    [0, "Wobble, wobbly", "(chronic)", "", "", "W00.9"],
    [1, "knee", "", "", "", "W01.-"],
    [3, "acute", "(recurrent)", "", "", "W01.0"],  # level 2 skipped: child of "knee"
    [1, "ankle", "", "Wobble, knee", "", ""],
    [0, "Zag", "", "", "", ""],
]
DATA = {"format": 1, "index": ROWS, "provenance": {"files": ["made-up"]}}


def test_arrays_keep_parents_children_sizes_and_fields() -> None:
    tree = IndexTree(DATA)
    assert tree.roots["index"] == [0, 4]
    assert tree.nodes[0].children == [1, 3]
    assert tree.nodes[1].children == [2] and tree.nodes[2].parent == 1
    assert tree.nodes[0].size == 4 and tree.nodes[1].size == 2
    assert tree.nodes[2].codes == ("W01.0",) and tree.nodes[3].see == "Wobble, knee"
    assert tree.nodes[-1].term == "Zag" and len(tree.nodes) == 5
    assert tree.provenance == {"files": ["made-up"]}
    with pytest.raises(IndexError):
        tree.nodes[5]


def test_nodes_are_made_on_first_use_and_kept() -> None:
    store = NodeStore(compact_rows({"index": ROWS}, {"index": row_keys(ROWS)}))
    assert not store._made
    first = store[2]
    assert store[2] is first and list(store._made) == [2]


def test_a_tree_from_mapped_arrays_walks_as_one_from_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCODE_CACHE_DIR", str(tmp_path))
    built = IndexTree(DATA)
    arrays = derived.cached_arrays(
        "tree", ["k"], lambda: compact_rows({"index": ROWS}, {"index": row_keys(ROWS)},
                                            DATA["provenance"]))
    assert isinstance(arrays["records"], np.memmap)
    mapped = IndexTree.from_arrays(arrays)
    for mention in ("acute knee wobble", "wobbly ankle", "zag"):
        assert mapped.walk(mention) == built.walk(mention)
    again = pickle.loads(pickle.dumps(mapped))  # spawned workers receive the tree pickled
    assert again.walk("acute knee wobble") == built.walk("acute knee wobble")


def test_shipped_tree_entries_match_their_rows() -> None:
    import gzip
    import json

    from medcode_nlp.codesets.icd10cm_index_tree import DATA_FILE

    tree = IndexTree.load()
    rows = json.loads(gzip.decompress(DATA_FILE.read_bytes()))["index"]
    for index in (0, 1, len(rows) // 2, len(rows) - 1):
        node = tree.nodes[index]
        level, term, _, see, see_also, code = rows[index]
        assert (node.level, node.term, node.see, node.see_also, node.codes) == (
            level, term, see, see_also, (code,))
