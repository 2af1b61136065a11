"""Helpers of the linking benchmark (benchmarks/linking_*.py).

Index rows come from an invented fixture (tests/fixtures/icd10cm_index_rows_sample.csv) and
the code set below is invented too: no shared data is needed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks import (
    linking_accuracy,
    linking_aliases,
    linking_heldout,
    linking_leave_out_kb,
    linking_methods,
    linking_report,
    linking_scispacy,
)
from medcode_nlp.codesets import index_terms

INDEX_SAMPLE = Path(__file__).resolve().parent / "fixtures" / "icd10cm_index_rows_sample.csv"

# 20 invented aliases: (alias id, code, text, kind); Z90, Z91 are non-billable headers and
# "Glimmer disorder" names both Z90 and Z90.9.
ALIASES = [
    (1, "Z90", "Glimmer disorder", "description"),
    (2, "Z90.0", "Glimmer disorder of left eye", "description"),
    (3, "Z90.0", "left eye glimmer", "inclusion"),
    (4, "Z90.1", "Glimmer disorder of right eye", "description"),
    (5, "Z90.1", "right eye glimmer", "inclusion"),
    (6, "Z90.9", "Glimmer disorder, unspecified", "description"),
    (7, "Z90.9", "Glimmer disorder", "head"),
    (8, "Z91", "Wobble syndrome", "description"),
    (9, "Z91.0", "Acute wobble syndrome", "description"),
    (10, "Z91.0", "sudden wobble", "inclusion"),
    (11, "Z91.1", "Chronic wobble syndrome", "description"),
    (12, "Z91.1", "persistent wobble", "inclusion"),
    (13, "Z91.1", "long-standing wobbling", "inclusion"),
    (14, "Z92.0", "Fizzing of the ears", "description"),
    (15, "Z92.0", "ear fizz", "inclusion"),
    (16, "Z92.0", "auricular fizzing", "inclusion"),
    (17, "Z92.1", "Fizzing of the nose", "description"),
    (18, "Z92.1", "nasal fizz", "inclusion"),
    (19, "Z93.0", "Crackle lung", "description"),
    (20, "Z93.0", "pulmonary crackle", "inclusion"),
]
BILLABLE = ["Z90.0", "Z90.1", "Z90.9", "Z91.0", "Z91.1", "Z92.0", "Z92.1", "Z93.0"]


@pytest.fixture(scope="module")
def table() -> linking_aliases.AliasTable:
    return linking_aliases.AliasTable.from_rows(ALIASES, BILLABLE)


@pytest.fixture(scope="module")
def index_rows() -> list[index_terms.IndexRow]:
    return list(index_terms.read_index_rows(INDEX_SAMPLE))


# ------------------------------------------------------------- mention texts
def test_index_rows_follow_levels(index_rows: list[index_terms.IndexRow]) -> None:
    by_id = {r.row_id: r for r in index_rows}
    assert by_id[3].path == ("Quaver, quavering", "arm", "left")
    assert by_id[7].path == ("Quaver, quavering", "due to", "cold exposure NEC")
    assert by_id[11].path == ("Quill injury, skin", "specified site NOS")
    assert by_id[14].see == "Quaver, arm" and by_id[14].code == ""
    assert index_terms.full_term(by_id[3].path) == "Quaver, quavering, arm, left"


@pytest.mark.parametrize(
    ("row_id", "expected"),
    [
        (1, "quaver"),  # stem variant "quavering" and the (chronic) modifier dropped
        (3, "left arm quaver"),  # subterms in front, deepest first
        (5, "quaver with fever"),  # connector subterm and below follow the main term
        (7, "quaver due to cold exposure"),  # NEC removed
        (8, "tremulous quaver due to fatigue"),  # connector part of a comma term goes after
        (9, "tremulous quaver due to fatigue with dizziness"),
        (11, "specified site skin quill injury"),  # comma qualifier of the main term in front
        (13, "Qwerty's palsy"),  # eponym keeps its capital
        (15, "neck quibble"),  # parenthesised "(of)" removed before the connector test
        (21, "1,2-dibromo toxicity"),  # the comma of a chemical name is not split
    ],
)
def test_mention_text(index_rows: list[index_terms.IndexRow], row_id: int, expected: str) -> None:
    row = next(r for r in index_rows if r.row_id == row_id)
    assert index_terms.mention_text(row.path) == expected


def test_clean_term_and_alias_key() -> None:
    assert index_terms.clean_term("infection (acute) (chronic) NOS") == "infection"
    assert index_terms.clean_term("disease (of (nested) type) NEC, left") == "disease, left"
    assert index_terms.alias_key("  Left-Arm   QUAVER, ") == "left arm quaver"


def test_eligible_mentions(index_rows: list[index_terms.IndexRow]) -> None:
    billable = {"R90.0", "R90.12", "R90.21", "R90.31", "R90.41", "R90.42", "R91.8", "R92.0",
                "R92.1", "R93.0", "R93.1", "R93.2", "R93.3", "R94.0"}
    alias_keys = {"quaver", "qwerty s palsy"}
    stats: Counter[str] = Counter()
    kept = linking_heldout.eligible_mentions(index_rows, alias_keys, billable, stats)
    ids = [m.row_id for m in kept]
    assert 1 not in ids and 13 not in ids  # the text is a knowledge-base alias
    assert 2 not in ids and 10 not in ids  # code not billable
    assert 12 not in ids  # code needs more characters ("R91.9-")
    assert 18 not in ids and 19 not in ids  # "slight rumble": two different codes
    assert 17 in ids and 20 not in ids  # "minor rumble" twice with one code: kept once
    assert ids == [3, 5, 7, 8, 9, 11, 15, 16, 17, 21]
    assert stats["ambiguous_text"] == 2 and stats["duplicate_text"] == 1
    assert stats["text_is_kb_alias"] == 2 and stats["eligible"] == len(kept)
    assert {m.row_id: m.code for m in kept}[3] == "R90.12"


def test_select_heldout_is_seeded(index_rows: list[index_terms.IndexRow]) -> None:
    mentions = [linking_heldout.Mention(i, f"t{i}", "R00", 0) for i in range(50)]
    first = linking_heldout.select_heldout(mentions, 10, seed=3)
    assert first == linking_heldout.select_heldout(mentions, 10, seed=3)
    assert [m.row_id for m in first] == sorted(m.row_id for m in first)
    assert first != linking_heldout.select_heldout(mentions, 10, seed=4)
    with pytest.raises(SystemExit):
        linking_heldout.select_heldout(mentions, 51, seed=0)


def test_accuracy_report_and_docs(tmp_path: Path) -> None:
    report = linking_accuracy.accuracy_report([["A", "B"], ["C", "D", "E", "F", "G", "H"], []],
                                ["A", "H", "B"])
    assert report["acc@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["acc@5"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["no_candidates"] == 1
    low, high = report["acc@1_ci95"]
    assert 0 < low < 1 / 3 < high < 1
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## NER\n\nkeep me\n\n" + linking_report.SECTION + "\n\nold\n\n"
                    "## Ranker\n\nkeep me too\n", encoding="utf-8")
    linking_report.update_docs(docs, linking_report.SECTION + "\n\nnew table\n")
    text = docs.read_text(encoding="utf-8")
    assert "old" not in text and "new table" in text
    assert text.index("## NER") < text.index(linking_report.SECTION) < text.index("## Ranker")
    assert "keep me too" in text


def test_heldout_keys(index_rows: list[index_terms.IndexRow]) -> None:
    keys = linking_leave_out_kb.heldout_keys(index_rows, [3])
    assert keys == {"left arm quaver", "quaver quavering arm left", "left"}
    assert linking_leave_out_kb.heldout_keys(index_rows, []) == set()


def test_leave_out_kb(tmp_path: Path, index_rows: list[index_terms.IndexRow]) -> None:
    """The copy loses exactly the held-out index aliases; the source stays as it was."""
    from medcode_nlp.codesets.base import Alias, CodeEntry, IndexTerm
    from medcode_nlp.kb.build import KnowledgeBaseWriter
    from medcode_nlp.kb.store import load_kb

    source = tmp_path / "kb"
    writer = KnowledgeBaseWriter(source)
    writer.replace_system("icd10cm", [
        CodeEntry("R90.12", "icd10cm", "Quaver of left arm", aliases=[Alias("left arm quaver",
                                                                            "inclusion")]),
        CodeEntry("R90.21", "icd10cm", "Quaver of right arm"),
    ], {"source": "invented"})
    writer.add_index_terms([IndexTerm("Left arm quaver", "R90.12", "icd10cm"),
                            IndexTerm("right arm quaver", "R90.21", "icd10cm")],
                           {"source": "invented index"})
    writer.finish().close()
    keys = linking_leave_out_kb.heldout_keys(index_rows, [3])
    target = linking_leave_out_kb.leave_out_kb_dir(tmp_path / "cache", source, [3])
    assert target == linking_leave_out_kb.leave_out_kb_dir(tmp_path / "cache", source, [3])
    assert target != linking_leave_out_kb.leave_out_kb_dir(tmp_path / "cache", source, [3, 5])
    target.parent.mkdir(parents=True)
    info = linking_leave_out_kb.build_leave_out_kb(source, target, keys)
    assert info["aliases_removed"] == 1
    left = {(code, text, kind) for _, code, text, kind in load_kb(target).iter_aliases("icd10cm")}
    assert ("R90.12", "Left arm quaver", "index") not in left
    assert ("R90.12", "left arm quaver", "inclusion") in left  # other kinds stay
    assert ("R90.21", "right arm quaver", "index") in left
    assert load_kb(target).manifest["linking_benchmark_left_out"]["aliases_removed"] == 1
    original = [a for a in load_kb(source).iter_aliases("icd10cm") if a[3] == "index"]
    assert len(original) == 2
    assert not list(tmp_path.glob("cache/.*building*"))


def test_markdown_section_previous_and_lookup() -> None:
    block = {"acc@1": 0.5, "acc@5": 0.75}
    results = {
        "settings": {"mentions": 2, "seed": 0, "aliases": 10, "codes": 4, "cpus": 2,
                     "tfidf_min_df": 10,
                     "hnsw": {"M": 32, "efConstruction": 400, "efSearch": 200},
                     "scispacy_k": 100, "pool": 100,
                     "left_out": {"aliases_removed": 3}},
        "selection": {"eligible": 2, "rows": 9, "heldout_drawn_from": 7,
                      "heldout_drawn_in": "old kb"},
        "methods": {"m": {"all_codes": block, "billable_only": block, "mentions_per_s": 5.0,
                          "batch_size": 8}},
        "default_kb_lookup": {"m": {"acc@1": 1.0, "acc@5": 1.0}},
        "previous": {"file": "old.json", "mentions": 2, "command": "cmd",
                     "knowledge_base": "old kb", "aliases": 5, "left_out": None,
                     "methods": {"m": {"acc@1": 0.25, "acc@5": 0.5}}},
        "command": "python benchmarks/linking_benchmark.py",
    }
    text = linking_report.markdown_section(results)
    assert "| m | 50.0% | 75.0% | 50.0% | 75.0% | 5 | 8 | 25.0% / 50.0% |" in text
    assert "3 ICD-10-CM `index`" in text and "drawn once from the 7 terms" in text
    assert "m 100.0% / 100.0%" in text and "searched as it was" in text


# -------------------------------------------------------- scispaCy adapter
def test_alias_table(table: linking_aliases.AliasTable) -> None:
    assert len(table.aliases) == 19  # "Glimmer disorder" is one string with two codes
    assert table.aliases == sorted(table.aliases)
    shared = table.aliases.index("Glimmer disorder")
    assert table.alias_codes[shared] == ("Z90", "Z90.9")
    assert table.descriptions["Z90.9"] == "Glimmer disorder, unspecified"
    assert "Z91" not in table.billable and "Z91.1" in table.billable
    alias_pos, code_pos, codes = table.pairs(billable_only=True)
    assert len(alias_pos) == 18 and "Z90" not in {codes[i] for i in code_pos}
    assert table.signature() == linking_aliases.AliasTable.from_rows(reversed(ALIASES), BILLABLE).signature()


def test_scispacy_knowledge_base(table: linking_aliases.AliasTable) -> None:
    kb = linking_scispacy.CodeSetKnowledgeBase(table)
    assert set(kb.alias_to_cuis) == set(table.aliases)
    assert kb.alias_to_cuis["Glimmer disorder"] == {"Z90", "Z90.9"}
    assert kb.alias_to_cuis["ear fizz"] == {"Z92.0"}
    entity = kb.cui_to_entity["Z92.0"]
    assert entity.canonical_name == "Fizzing of the ears"
    assert set(entity.aliases) == {"Fizzing of the ears", "ear fizz", "auricular fizzing"}
    assert kb.cui_to_entity["Z91"].types == ["header"]
    assert len(kb.cui_to_entity) == 10


def test_scispacy_candidate_generator(table: linking_aliases.AliasTable, tmp_path: Path) -> None:
    kb = linking_scispacy.CodeSetKnowledgeBase(table)
    index_dir = linking_scispacy.scispacy_cache_dir(tmp_path, table, m=8, ef_construction=50, min_df=1)
    stats = linking_scispacy.build_scispacy_index(kb, index_dir, m=8, ef_construction=50, threads=1,
                                    min_df=1)
    assert stats["aliases_indexed"] == 19 and stats["dtype"] == "float32"
    assert (index_dir / "nmslib_index.bin").is_file() and (index_dir / "build.json").is_file()
    generator = linking_scispacy.load_scispacy_generator(kb, index_dir, num_threads=1)
    mentions = ["fizzing of the ear", "glimmer disorder", "chronic wobble", "qqq"]
    plain = linking_scispacy.ScispacyMethod(generator, None, k=10)(mentions)
    billable = linking_scispacy.ScispacyMethod(generator, table.billable, k=10)(mentions)
    assert plain[0][0] == "Z92.0"
    assert plain[1][:2] == ["Z90", "Z90.9"]  # exact alias of both: tie broken by code
    assert billable[1][0] == "Z90.9"
    assert plain[2][0] == "Z91.1"
    assert plain[3] == []  # no known 3-gram: no candidates
    exact = linking_methods.TfidfExactMethod(table, min_df=1)(mentions)
    assert [p[:1] for p in exact] == [p[:1] for p in plain]
    exact_billable = linking_methods.TfidfExactMethod(table, billable_only=True, min_df=1)(mentions)
    assert [p[:1] for p in exact_billable] == [p[:1] for p in billable]


def test_rank_scispacy_candidates() -> None:
    from scispacy.candidate_generation import MentionCandidate

    candidates = [  # as CandidateGenerator returns them: by concept id
        MentionCandidate("A01", ["a"], [0.4]),
        MentionCandidate("B02", ["b", "bb"], [0.3, 0.9]),
        MentionCandidate("C03", ["c"], [0.9]),
    ]
    assert linking_scispacy.rank_scispacy_candidates(candidates) == ["B02", "C03", "A01"]


def test_ranker_method_hook() -> None:
    hits = [[SimpleNamespace(code="Z92.1", score=0.9, alias_id=18),
             SimpleNamespace(code="Z92", score=0.8, alias_id=99),
             SimpleNamespace(code="Z92.0", score=0.5, alias_id=15)], []]
    index = SimpleNamespace(search=lambda texts, top_k, batch_size: hits[: len(texts)])
    entries = {"Z92.1": True, "Z92": False, "Z92.0": True}
    kb = SimpleNamespace(
        get=lambda system, code: SimpleNamespace(description=code, billable=entries[code]),
        alias_texts=lambda ids: {},
    )

    class Scorer:  # prefers the candidate with the lowest similarity
        def score(self, mention, candidates):
            assert mention.text in {"ear fizz", "nothing"}
            return np.array([1 - c.score for c in candidates])

    assert linking_methods.RankerMethod(Scorer(), index, kb)(["ear fizz", "nothing"]) == [
        ["Z92.0", "Z92", "Z92.1"], []
    ]
    assert linking_methods.RankerMethod(Scorer(), index, kb, billable_only=True)(["ear fizz"]) == [
        ["Z92.0", "Z92.1"]
    ]
