"""The ICD-10-CM Alphabetic Index tree: parsing, walking, code completion."""

from __future__ import annotations

import gzip
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest

from medcode_nlp.codesets.icd10cm_index_tree import (
    DATA_FILE,
    IndexTree,
    complete_code,
    read_csv_rows,
)
from medcode_nlp.codesets.index_entries import MAX_MENTION_WORDS
from medcode_nlp.codesets.index_words import stem
from medcode_nlp.errors import InputError, IntegrityError

# A made-up index in the CDC CSV layout (terms and codes invented for the test).
INDEX_CSV = """RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code
1,W,0,"Wobble, wobbly",,,(chronic) (mild),W00.9
2,W,1,with,,,,
3,W,2,fever,,,,W00.1
4,W,1,knee,,,,W01.-
5,W,2,acute,,,(recurrent),W01.0
6,W,1,ankle,"Wobble, knee",,,
7,W,1,hip,,"Neoplasm, by site, benign",,W02.0
8,W,1,without fever,,,,W00.8
9,Z,0,Zigzag,condition,,,
10,Z,0,Zag,,,,
11,Z,1,specified site,"Neoplasm, malignant, by site",,,
12,Z,1,unspecified site,,,,W09.9
"""
NEOPLASM_CSV = """RowID,Level,Term,SeeAlso,NonEssModif,MalignantPrimary,MalignantSecondary,CaInSitu,Benign,UncertainBehavior,UnspecifiedBehavior
1,0,"Neoplasm, neoplastic",,,C80.1,C79.9,D09.9,D36.9,D48.9,D49.9
2,1,hip,,(joint),C41.4,C79.51,--,D16.2-,D48.0,D49.2
3,1,knee,,,C49.2-,C79.89,D04.7-,D21.2-,D48.1,D49.2
"""


@pytest.fixture
def tiny(tmp_path: Path) -> IndexTree:
    index = tmp_path / "index.csv"
    index.write_text(INDEX_CSV, encoding="utf-8")
    neoplasm = tmp_path / "neoplasm.csv"
    neoplasm.write_text(NEOPLASM_CSV, encoding="utf-8")
    return IndexTree.from_csv(index, neoplasm=neoplasm)


# ------------------------------------------------------------------ parsing
def test_rows_keep_levels_references_and_modifiers(tmp_path: Path) -> None:
    path = tmp_path / "index.csv"
    path.write_text(INDEX_CSV, encoding="utf-8")
    rows = read_csv_rows(path)
    assert rows[0] == [0, "Wobble, wobbly", "(chronic) (mild)", "", "", "W00.9"]
    assert rows[5] == [1, "ankle", "", "Wobble, knee", "", ""]
    assert rows[6][4] == "Neoplasm, by site, benign"
    assert rows[3][5] == "W01.-"


def test_tree_structure(tiny: IndexTree) -> None:
    roots = [tiny.nodes[i].term for i in tiny.roots["index"]]
    assert roots == ["Wobble, wobbly", "Zigzag", "Zag"]
    wobble = tiny.nodes[tiny.roots["index"][0]]
    assert [tiny.nodes[c].term for c in wobble.children] == [
        "with", "knee", "ankle", "hip", "without fever"]
    knee = wobble.children[1]
    acute = tiny.nodes[knee].children[0]
    assert tiny.entry_path(acute) == ("Wobble, wobbly", "knee", "acute")
    assert tiny.nodes[acute].nemod == {stem("recurrent")}
    assert tiny.main_terms("wobbly") == ["Wobble, wobbly"]
    assert tiny.main_terms("wobbles") == ["Wobble, wobbly"]
    assert len(tiny.roots["neoplasm"]) == 1


def test_bad_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("RowID,Term\n1,Wobble\n", encoding="utf-8")
    with pytest.raises(InputError, match="E009|Could not parse"):
        read_csv_rows(path)


# ------------------------------------------------------------------ walking
def test_main_term_default_and_nonessential_modifier(tiny: IndexTree) -> None:
    hit = tiny.walk("mild wobble")[0]
    assert (hit.code, hit.default, hit.depth) == ("W00.9", True, 0)
    assert hit.unused == () and "mild" in hit.used
    plain = tiny.walk("wobble")[0]
    assert plain.code == "W00.9" and plain.score < hit.score + 1


def test_subterms_from_mention_then_context(tiny: IndexTree) -> None:
    hit = tiny.walk("acute knee wobble")[0]
    assert hit.code == "W01.0"
    assert hit.path == ("Wobble, wobbly", "knee", "acute") and hit.depth == 2
    linked = tiny.walk("wobble", context="the wobble came with a high fever")[0]
    assert linked.code == "W00.1" and linked.context_used == ("fever",)
    assert linked.path == ("Wobble, wobbly", "with", "fever")


def test_unused_words_are_reported(tiny: IndexTree) -> None:
    hit = tiny.walk("knee wobble elbow")[0]
    assert hit.code == "W01.-" and hit.unused == ("elbow",)


def test_laterality_kept_but_not_matched(tiny: IndexTree) -> None:
    hit = tiny.walk("left knee wobble")[0]
    assert hit.code == "W01.-"
    assert hit.laterality == ("left",) and "left" not in hit.unused


def test_without_entry_needs_a_negation(tiny: IndexTree) -> None:
    assert tiny.walk("wobble without fever")[0].code == "W00.8"
    assert "W00.8" not in [h.code for h in tiny.walk("wobble", context="fever")]


def test_see_reference_is_followed(tiny: IndexTree) -> None:
    hit = tiny.walk("ankle wobble")[0]
    assert hit.code == "W01.-"
    assert "see Wobble, knee" in hit.path and hit.unused == ()
    assert tiny.walk("zigzag") == []  # "see condition" leads nowhere by itself


def test_see_also_into_the_neoplasm_table(tiny: IndexTree) -> None:
    codes = {h.code: h for h in tiny.walk("hip wobble", limit=10)}
    assert "W02.0" in codes and "D16.2-" in codes
    assert codes["D16.2-"].table == "neoplasm" and codes["D16.2-"].column == "benign"
    site = tiny.walk("zag", context="in the knee")
    assert site[0].code == "C49.2-" and site[0].column == "malignant primary"


def test_tree_pickles(tiny: IndexTree) -> None:
    copy = pickle.loads(pickle.dumps(tiny))
    assert copy.walk("acute knee wobble")[0] == tiny.walk("acute knee wobble")[0]


def test_walk_limit_and_bad_input(tiny: IndexTree) -> None:
    assert len(tiny.walk("acute knee wobble", limit=1)) == 1
    assert tiny.walk("nothing here") == []
    with pytest.raises(InputError):
        tiny.walk(None)  # type: ignore[arg-type]


# ------------------------------------------------------------------ loading
def test_load_checks_path_and_checksum(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        IndexTree.load(tmp_path / "missing.json.gz")
    path = tmp_path / "tree.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"format": 1, "index": []}).encode()))
    (tmp_path / "tree.json.gz.sha256").write_text("0" * 64 + "  tree.json.gz\n")
    with pytest.raises(IntegrityError):
        IndexTree.load(path)


# --------------------------------------------------------------- completion
@dataclass
class _Entry:
    code: str
    description: str
    billable: bool


class _StubKB:
    """The two knowledge-base calls complete_code makes, over a few made-up codes."""

    def __init__(self, entries: list[tuple[str, str, bool, str | None]]) -> None:
        self.entries = {c.replace(".", ""): _Entry(c, d, b) for c, d, b, _ in entries}
        self.parent = {c: p for c, _, _, p in entries}

    def get(self, system: str, code: str) -> _Entry | None:
        return self.entries.get(code.replace(".", ""))

    def children(self, system: str, code: str) -> list[str]:
        return sorted(c for c, p in self.parent.items() if p == code)


def test_complete_code_descends_to_unspecified_child() -> None:
    kb = _StubKB([
        ("W05", "Wobble", False, None),
        ("W05.0", "Other wobble", True, "W05"),
        ("W05.8", "Wobble with unspecified complication", True, "W05"),
        ("W05.9", "Wobble, unspecified", True, "W05"),
        ("Y12.3", "Sprain", False, None),
        ("Y12.3XXA", "Sprain, initial", True, "Y12.3"),
        ("Y12.50", "Break", False, None),
        ("Y12.509", "Break, unspecified side", False, "Y12.50"),
        ("Y12.501", "Break, right side", False, "Y12.50"),
        ("Y12.509A", "Break, unspecified side, initial", True, "Y12.509"),
    ])
    assert complete_code(kb, "W05") == "W05.9"  # type: ignore[arg-type]
    assert complete_code(kb, "W05.-") == "W05.9"  # type: ignore[arg-type]
    assert complete_code(kb, "W05.0") == "W05.0"  # type: ignore[arg-type]
    assert complete_code(kb, "Y12.3") == "Y12.3XX"  # type: ignore[arg-type]
    assert complete_code(kb, "Y12.50-") == "Y12.509"  # type: ignore[arg-type]
    assert complete_code(kb, "Q00") is None  # type: ignore[arg-type]


# ------------------------------------------------------- the shipped index tree
@pytest.fixture(scope="module")
def shipped() -> IndexTree:
    if not DATA_FILE.is_file():
        pytest.skip(f"shipped index tree not built: {DATA_FILE} "
                    "(run python -m scripts.build_index_tree)")
    return IndexTree.load()


@pytest.fixture(scope="module")
def kb():  # type: ignore[no-untyped-def]
    from medcode_nlp.kb.store import load_kb

    return load_kb()


@pytest.mark.parametrize(("mention", "context", "expected"), [
    ("type 2 diabetes mellitus with hyperglycemia", "", "E11.65"),
    ("diabetic polyneuropathy", "type 2 diabetes with diabetic polyneuropathy", "E11.42"),
    ("COPD with acute exacerbation", "", "J44.1"),
    ("chronic respiratory failure with hypoxia", "", "J96.11"),
    ("vesicoureteral reflux", "", "N13.70"),
    ("pneumonia", "", "J18.9"),
    ("urinary tract infection", "", "N39.0"),
    ("hypertension", "", "I10"),
])
def test_shipped_walk_top_code(shipped: IndexTree, mention: str, context: str,
                               expected: str) -> None:
    assert shipped.walk(mention, context)[0].code == expected


def test_shipped_walk_completed_codes(shipped: IndexTree, kb) -> None:  # type: ignore[no-untyped-def]
    assert complete_code(kb, shipped.walk("cough")[0].code) == "R05.9"
    assert complete_code(kb, shipped.walk("vesicoureteral reflux")[0].code) == "N13.70"
    fracture = shipped.walk("displaced fracture of distal radius")[0]
    assert fracture.code.startswith("S52.5") and fracture.path[0] == "Fracture, traumatic"
    assert complete_code(kb, fracture.code) == "S52.509"  # 7th character left to the caller
    # The index reads "Otitis, media, acute, subacute" as H66.90 (the H66.9- family).
    otitis = shipped.walk("acute otitis media")[0]
    assert otitis.code.startswith("H66.9") and complete_code(kb, otitis.code) == "H66.90"
    assert shipped.walk("otitis media")[0].code == "H66.9-"


def test_shipped_walk_nonessential_and_negative_modifiers(shipped: IndexTree) -> None:
    # "(without vomiting)" on Nausea does not use up "vomiting"; the joint nemod of Sprain
    # does not hide the "joint" subterm.
    assert shipped.walk("nausea, vomiting")[0].code == "R11.2"
    assert shipped.walk("sacroiliac joint sprain")[0].code == "S33.6"
    assert shipped.walk("Type II diabetes mellitus")[0].code == "E11.9"


def test_shipped_walk_drug_table(shipped: IndexTree) -> None:
    hit = shipped.walk("adverse effect of penicillin")[0]
    assert (hit.code, hit.table, hit.column) == ("T36.0X5", "drug", "adverse effect")
    assert shipped.walk("underdosing of insulin")[0].code == "T38.3X6"
    assert shipped.walk("aspirin overdose")[0].code == "T39.011"


def test_shipped_walk_long_input_is_bounded(shipped: IndexTree) -> None:
    # Words past MAX_MENTION_WORDS are not read: a condition named only there is not found.
    padding = " ".join(["swelling"] * MAX_MENTION_WORDS)
    assert all(h.code != "J18.9" for h in shipped.walk(f"{padding} pneumonia"))
    assert shipped.walk(f"pneumonia {padding}")[0].code.startswith(("J18", "R60"))


def test_shipped_walk_history_entries(shipped: IndexTree) -> None:
    assert shipped.walk("her sister had breast cancer")[0].code == "Z80.3"
    assert shipped.walk("history of colon cancer")[0].code == "Z85.038"
    # A history entry must name the condition: none does for hypertension.
    assert shipped.walk("history of hypertension")[0].code == "I10"


def test_shipped_walk_no_cross_link(shipped: IndexTree) -> None:
    hits = shipped.walk("chronic respiratory failure")
    assert hits[0].code == "J96.10"
    assert not any(h.code.startswith("N18") for h in hits)


def test_shipped_provenance(shipped: IndexTree) -> None:
    assert shipped.provenance["files"]["index"]["file"] == "ICD10CM_2025_Index.csv"
    assert "FY2026" in shipped.provenance["codes_checked_against"]
    assert len(shipped.roots["neoplasm"]) >= 1 and len(shipped.roots["drug"]) > 1000
