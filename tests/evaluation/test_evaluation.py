"""Document-level metrics and dataset readers, checked against hand-computed values."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import FIXTURES, shared_path

from medcode_nlp.errors import InputError
from medcode_nlp.evaluation.calibration import (
    bootstrap_ci,
    brier_score,
    calibration_bins,
    calibration_pairs,
    expected_calibration_error,
    reliability_diagram,
)
from medcode_nlp.evaluation.datasets import (
    DIAGNOSIS,
    PROCEDURE,
    UNSPECIFIED_SYSTEM,
    GoldDocument,
    codiesp_code,
    gold_codes,
    normalize_code,
    read_codiesp,
    read_jsonl_gold,
)
from medcode_nlp.evaluation.metrics import (
    average_precision,
    choose_threshold,
    mean_average_precision,
    micro_prf,
    precision_at_k,
    rank_codes,
    recall_at_k,
)
from medcode_nlp.evaluation.report import (
    evaluation_report,
    format_report_table,
    write_codiesp_predictions,
)

MINI = FIXTURES / "codiesp_mini"

# Three coded documents and one without gold codes.
#   d1 ranked A B C D, gold {A, C, E}: hits at ranks 1 and 3 -> AP = (1/1 + 2/3) / 3 = 5/9
#   d2 ranked X Y,     gold {Y}:       hit at rank 2         -> AP = (1/2) / 1     = 1/2
#   d3 no predictions, gold {Z}:                              -> AP = 0
#   d4 ranked Q,       no gold: not in MAP; Q is a false positive for micro P/R/F1
PRED = {
    "d1": [("C", 0.4), ("A", 0.9), ("D", 0.1), ("B", 0.8)],  # unsorted on purpose
    "d2": [("X", 0.7), ("Y", 0.2)],
    "d4": [("Q", 0.95)],
}
GOLD = {"d1": {"A", "C", "E"}, "d2": {"Y"}, "d3": {"Z"}, "d4": set()}


def test_evaluation_normalize_code_case_dots_space() -> None:
    assert normalize_code(" e11.621 ") == "E11621"
    assert normalize_code("0HBMXZZ") == "0HBMXZZ"
    with pytest.raises(InputError):
        normalize_code(None)  # type: ignore[arg-type]


def test_evaluation_codiesp_code_format() -> None:
    assert codiesp_code("N448", DIAGNOSIS) == "n44.8"
    assert codiesp_code("R52", DIAGNOSIS) == "r52"
    assert codiesp_code("BW03ZZZ", PROCEDURE) == "bw03zzz"
    with pytest.raises(InputError, match="kind"):
        codiesp_code("R52", "X")


def test_evaluation_rank_codes_sorts_and_dedupes() -> None:
    ranked = rank_codes([("a01.1", 0.3), ("B02", 0.5), ("A011", 0.9), ("C03", 0.5)])
    assert ranked == [("A011", 0.9), ("B02", 0.5), ("C03", 0.5)]  # stable on the 0.5 tie
    assert rank_codes([("x", 1.0), ("y", 0.5)], depth=1) == [("X", 1.0)]


def test_evaluation_average_precision_by_hand() -> None:
    assert average_precision(["A", "B", "C", "D"], {"A", "C", "E"}) == pytest.approx(5 / 9)
    assert average_precision(["X", "Y"], {"Y"}) == pytest.approx(0.5)
    assert average_precision([], {"Z"}) == 0.0
    assert average_precision(["A"], set()) == 0.0
    assert average_precision(["i50.9"], {"I509"}) == 1.0


def test_evaluation_map_by_hand() -> None:
    assert mean_average_precision(PRED, GOLD) == pytest.approx((5 / 9 + 1 / 2 + 0) / 3)
    # the official script averages only over documents that have predictions
    assert mean_average_precision(PRED, GOLD, skip_unpredicted=True) == pytest.approx(
        (5 / 9 + 1 / 2) / 2
    )
    # depth 2 cuts d1 to A B: AP = (1/1) / 3
    assert mean_average_precision(PRED, GOLD, depth=2) == pytest.approx((1 / 3 + 1 / 2) / 3)
    # codes compare after normalisation; repeated doc ids weigh twice (bootstrap resamples)
    assert mean_average_precision({"d": [("a.1", 1.0)]}, {"d": {"A1"}}) == 1.0
    assert mean_average_precision(PRED, GOLD, ["d2", "d2", "d3"]) == pytest.approx(1 / 3)
    assert mean_average_precision({}, {"d": set()}) == 0.0


def test_evaluation_precision_recall_at_k_by_hand() -> None:
    # top 2: d1 {A, B} 1 hit; d2 {X, Y} 1 hit; d3 none -> P@2 = (1/2 + 1/2 + 0) / 3
    assert precision_at_k(PRED, GOLD, 2) == pytest.approx(1 / 3)
    # R@2 = (1/3 + 1/1 + 0) / 3
    assert recall_at_k(PRED, GOLD, 2) == pytest.approx(4 / 9)
    # P@k divides by k even when fewer codes were ranked: d2 at k=5 -> 1/5
    assert precision_at_k(PRED, GOLD, 5, ["d2"]) == pytest.approx(0.2)
    with pytest.raises(InputError):
        precision_at_k(PRED, GOLD, 0)


def test_evaluation_micro_prf_by_hand() -> None:
    # score >= 0.4: d1 A B C (2 TP), d2 X (0), d4 Q (FP: d4 has no gold) -> TP 2, pred 5, gold 5
    prf = micro_prf(PRED, GOLD, 0.4)
    assert (prf.tp, prf.fp, prf.fn) == (2, 3, 3)
    assert prf.precision == pytest.approx(0.4)
    assert prf.recall == pytest.approx(0.4)
    assert prf.f1 == pytest.approx(0.4)
    nothing = micro_prf(PRED, GOLD, 2.0)
    assert (nothing.precision, nothing.recall, nothing.f1) == (0.0, 0.0, 0.0)


def test_evaluation_choose_threshold_maximizes_f1() -> None:
    pred = {
        "a": [("A", 0.9), ("B", 0.8), ("C", 0.4)],
        "b": [("X", 0.7), ("Y", 0.2), ("W", 0.1)],
    }
    gold = {"a": {"A", "C"}, "b": {"Y"}}
    # F1 = 2TP / (pred + gold): 0.9 -> 2/4, 0.8 -> 2/5, 0.7 -> 2/6, 0.4 -> 4/7, 0.2 -> 6/8,
    # 0.1 -> 6/9; best 0.2
    assert choose_threshold(pred, gold) == pytest.approx(0.2)
    assert micro_prf(pred, gold, 0.2).f1 == pytest.approx(0.75)
    # nothing right: the threshold lies above every score, so nothing is predicted
    wrong = {"a": [("Q", 0.6)]}
    assert choose_threshold(wrong, {"a": {"A"}}) > 0.6
    assert choose_threshold({}, {"a": {"A"}}) == 1.0


def test_evaluation_choose_threshold_ties_are_one_cut() -> None:
    # both codes score 0.5: the only cuts are "both" (F1 2/4) or none; "A alone" is unreachable
    pred = {"a": [("A", 0.5), ("B", 0.5)]}
    assert choose_threshold(pred, {"a": {"A"}}) == 0.5


def test_evaluation_ece_and_brier_by_hand() -> None:
    probs = [0.05, 0.15, 0.15, 0.95]
    labels = [0, 0, 1, 1]
    # bins [0, .1): 1 code, |0.05 - 0| ; [.1, .2): 2 codes, |0.15 - 0.5| ; [.9, 1]: |0.95 - 1|
    expected = 1 / 4 * 0.05 + 2 / 4 * 0.35 + 1 / 4 * 0.05
    assert expected_calibration_error(probs, labels) == pytest.approx(expected)
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == 0.0  # 1.0 falls in the last bin
    # Brier: (0.05^2 + 0.15^2 + 0.85^2 + 0.05^2) / 4
    assert brier_score(probs, labels) == pytest.approx(0.1875)
    bins = calibration_bins(probs, labels)
    assert [b["count"] for b in bins] == [1, 2, 1]
    assert bins[1]["frac_pos"] == 0.5
    with pytest.raises(InputError):
        expected_calibration_error([1.2], [1])
    with pytest.raises(InputError):
        brier_score([0.2, 0.3], [1])


def test_evaluation_calibration_pairs() -> None:
    scores, labels = calibration_pairs(PRED, GOLD)
    assert len(scores) == 7
    assert sorted(zip(scores.tolist(), labels.tolist(), strict=True))[-1] == (0.95, False)
    assert int(labels.sum()) == 3


def test_evaluation_bootstrap_deterministic_with_seed() -> None:
    docs = [f"d{i}" for i in range(40)]
    values = {d: float(i % 5) for i, d in enumerate(docs)}

    def metric(ids: Sequence[str]) -> float:
        return sum(values[d] for d in ids) / len(ids)

    first = bootstrap_ci(metric, docs, n=300, seed=7)
    assert first == bootstrap_ci(metric, docs, n=300, seed=7)
    assert first != bootstrap_ci(metric, docs, n=300, seed=8)
    low, high = first
    assert low < metric(docs) < high
    assert bootstrap_ci(lambda ids: 1.0, docs, n=50, seed=0) == (1.0, 1.0)
    assert bootstrap_ci(metric, [], n=10) == (0.0, 0.0)


def test_evaluation_report_keys_values_and_table() -> None:
    report = evaluation_report(PRED, GOLD, threshold=0.4, seed=3, n_bootstrap=200)
    assert report["map"] == pytest.approx((5 / 9 + 1 / 2) / 3)
    assert report["map_predicted_docs_only"] == pytest.approx((5 / 9 + 1 / 2) / 2)
    assert report["f1"] == pytest.approx(0.4)
    assert report["counts"]["documents"] == 4
    assert report["counts"]["documents_with_gold"] == 3
    assert report["counts"]["documents_without_predictions"] == 1
    assert report["counts"]["tp"] == 2
    assert report["brier"] == pytest.approx(brier_score(*calibration_pairs(PRED, GOLD)))
    for key in ("map", "f1", "precision_at_5", "recall_at_10", "ece", "brier"):
        low, high = report["ci"][key]
        assert low <= high
    assert report == evaluation_report(PRED, GOLD, threshold=0.4, seed=3, n_bootstrap=200)
    json.dumps(report)  # serializable as is
    table = format_report_table(report, title="toy")
    assert table.startswith("toy")
    assert "MAP" in table and "0.352" in table


def test_evaluation_report_scores_outside_unit_interval() -> None:
    report = evaluation_report({"a": [("A", 3.5)]}, {"a": {"A"}}, threshold=1.0, n_bootstrap=10)
    assert report["ece"] is None and report["brier"] is None
    assert "n/a" in format_report_table(report)


def test_evaluation_reliability_diagram_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = reliability_diagram([0.1, 0.4, 0.8, 0.9], [0, 1, 1, 1], tmp_path / "sub" / "r.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluation_write_codiesp_predictions(tmp_path: Path) -> None:
    pred = {"doc-b": [("R52", 0.2), ("N44.8", 0.9)], "doc-a": [("E11621", 0.5), ("e11.621", 0.1)]}
    path = tmp_path / "D.tsv"
    assert write_codiesp_predictions(pred, path, DIAGNOSIS) == 3
    assert path.read_text() == "doc-a\te11.621\ndoc-b\tn44.8\ndoc-b\tr52\n"
    assert write_codiesp_predictions(pred, path, DIAGNOSIS, threshold=0.3) == 2
    assert write_codiesp_predictions(pred, path, DIAGNOSIS, top_k=1) == 2
    write_codiesp_predictions({"p": [("BW03ZZZ", 1.0)]}, path, PROCEDURE)
    assert path.read_text() == "p\tbw03zzz\n"
    with pytest.raises(InputError):
        write_codiesp_predictions({"a\tb": [("R52", 1.0)]}, path, DIAGNOSIS)


def test_evaluation_read_codiesp_mini() -> None:
    docs = read_codiesp(MINI, "train")
    assert [d.id for d in docs] == ["mini-001", "mini-002", "mini-003"]
    by_id = {d.id: d for d in docs}
    assert by_id["mini-003"].codes[DIAGNOSIS] == {"E11621", "L97529"}  # duplicate row merged
    assert by_id["mini-003"].codes[PROCEDURE] == {"0HBMXZZ", "BQ0M"}
    assert by_id["mini-002"].codes[PROCEDURE] == set()
    assert by_id["mini-001"].text.startswith("A 58-year-old man")
    assert gold_codes(docs, DIAGNOSIS)["mini-001"] == {"I208", "R079"}
    assert gold_codes(docs)["mini-001"] == {"I208", "R079", "B211YZZ"}


def _copy_mini(tmp_path: Path) -> Path:
    shutil.copytree(MINI, tmp_path / "codiesp")
    return tmp_path / "codiesp"


def test_evaluation_read_codiesp_malformed(tmp_path: Path) -> None:
    root = _copy_mini(tmp_path)
    tsv = root / "train" / "trainD.tsv"
    tsv.write_text("mini-001\ti20.8\nmini-002\tj18.9\textra\n")
    with pytest.raises(InputError, match=r"trainD\.tsv.*line 2: expected 2"):
        read_codiesp(root, "train")
    tsv.write_text("mini-001\ti20.8\nmini-999\tj18.9\n")
    with pytest.raises(InputError, match=r"line 2: document 'mini-999' has no file"):
        read_codiesp(root, "train")
    (root / "train" / "trainP.tsv").unlink()
    tsv.write_text("mini-001\ti20.8\n")
    with pytest.raises(InputError, match="does not exist"):
        read_codiesp(root, "train")
    with pytest.raises(InputError, match="does not exist"):
        read_codiesp(root, "dev")
    (root / "train" / "text_files_en" / "mini-001.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(InputError, match="UTF-8"):
        read_codiesp(root, "train")


def test_evaluation_read_jsonl_gold(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    records = [
        {"id": "n1", "text": "Invented note one.", "codes": ["i50.9", "I50.9"]},
        {
            "id": 2,
            "text": "Invented note two.",
            "codes": [{"code": "J18.9", "system": "ICD-10-CM"}, {"code": "0BH17EZ"}],
            "meta": {"source": "test"},
        },
        {"id": "n3", "text": "", "codes": []},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    docs = read_jsonl_gold(path)
    assert [d.id for d in docs] == ["n1", "2", "n3"]
    assert docs[0].codes == {UNSPECIFIED_SYSTEM: {"I509"}}
    assert docs[1].codes == {"icd10cm": {"J189"}, UNSPECIFIED_SYSTEM: {"0BH17EZ"}}
    assert docs[2].codes == {} and docs[2].all_codes() == set()
    assert gold_codes(docs, "icd10cm") == {"n1": set(), "2": {"J189"}, "n3": set()}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected an object"),
        ('{"id": "a", "codes": []}', "missing key 'text'"),
        ('{"id": "", "text": "t", "codes": []}', "'id' must be"),
        ('{"id": "a", "text": 5, "codes": []}', "'text' must be"),
        ('{"id": "a", "text": "t", "codes": "I50.9"}', "'codes' must be a list"),
        ('{"id": "a", "text": "t", "codes": [7]}', r"codes\[0\] must be"),
        ('{"id": "a", "text": "t", "codes": [{"system": "icd10cm"}]}', r"codes\[0\] must be"),
        ('{"id": "a", "text": "t", "codes": [{"code": "A1", "system": 3}]}', r"codes.0.: 'system'"),
        ('{"id": "n0", "text": "t", "codes": []}', "duplicate id"),
    ],
)
def test_evaluation_read_jsonl_gold_malformed(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "n0", "text": "fine", "codes": ["A00"]}\n' + line + "\n")
    with pytest.raises(InputError, match=rf"bad\.jsonl as JSONL gold: line 2: {message}"):
        read_jsonl_gold(path)


def test_evaluation_read_jsonl_gold_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_jsonl_gold(tmp_path / "absent.jsonl")


def test_evaluation_gold_document_all_codes() -> None:
    doc = GoldDocument("x", "t", {DIAGNOSIS: {"A"}, PROCEDURE: {"B"}})
    assert doc.all_codes() == {"A", "B"}


def test_evaluation_codiesp_shared_dev() -> None:
    root = shared_path("codiesp")
    docs = read_codiesp(root, "dev")
    assert len(docs) == 250
    diagnosis = gold_codes(docs, DIAGNOSIS)
    procedure = gold_codes(docs, PROCEDURE)
    assert all(diagnosis.values())  # every dev document has diagnosis codes
    assert sum(1 for codes in procedure.values() if codes) == 222
    assert sum(len(c) for c in diagnosis.values()) == 2677
    assert all(c == c.upper() and "." not in c for codes in diagnosis.values() for c in codes)
    # gold ranked against itself is perfect
    perfect = {d: [(c, 1.0) for c in sorted(codes)] for d, codes in diagnosis.items()}
    assert mean_average_precision(perfect, diagnosis) == pytest.approx(1.0)
    assert micro_prf(perfect, diagnosis, 0.5).f1 == pytest.approx(1.0)


def test_rankings_put_dropped_codes_last_unless_ranked_at_confidence() -> None:
    from types import SimpleNamespace

    from medcode_nlp.evaluation.run import rankings_by_kind
    from medcode_nlp.schema import CodeSuggestion, CodingResult, ExcludedCode

    result = CodingResult(
        codes=[CodeSuggestion("S52.501A", "icd10cm", "fracture", 0.6, True),
               CodeSuggestion("0PSH04Z", "icd10pcs", "fixation", 0.5, True)],
        excluded=[ExcludedCode("R52", "icd10cm", "integral to the fracture", score=0.9),
                  ExcludedCode("R51.9", "icd10cm", "negated in the note", score=0.0)])
    docs = [SimpleNamespace(id="d1")]
    shown = rankings_by_kind(docs, [result])
    assert [c for c, _ in shown[DIAGNOSIS]["d1"]] == ["S52.501A", "R52"]
    assert shown[DIAGNOSIS]["d1"][1][1] < 0.6 and shown[PROCEDURE]["d1"] == [("0PSH04Z", 0.5)]
    raw = rankings_by_kind(docs, [result], dropped_factor=1.0)
    assert [c for c, _ in sorted(raw[DIAGNOSIS]["d1"], key=lambda x: -x[1])] == ["R52",
                                                                                  "S52.501A"]
