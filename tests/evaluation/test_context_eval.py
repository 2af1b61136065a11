"""Tests of the ConText test-kit reader and scorer (tiny files written for these tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import shared_path

from medcode_nlp.errors import InputError
from medcode_nlp.evaluation.context import (
    ContextRow,
    context_pipeline,
    evaluate_context,
    find_target,
    format_context_report,
    read_context_testkit,
)

HEADER = "id\tnote\ttarget\tsentence\tnegation\ttemporality\texperiencer\n"
ROWS = [
    ("1", " ", "cough", "She denies COUGH.", "Negated", "Recent", "Patient"),
    ("2", " ", "gout", "He has a history of GOUT.", "Affirmed", "Historical", "Patient"),
    ("3", " ", "fever", "Return if FEVER develops.", "Affirmed", "Not particular", "Patient"),
    ("4", " ", "lupus", "Her sister had LUPUS.", "Affirmed", "Recent", "Family member"),
    ("5", " ", "rash", "Itchy RASH on the arm.", "Affirmed", "Recent", "Patient"),
    ("6", " ", "tremor", "Gait is normal.", "Affirmed", "Recent", "Patient"),
]


def write_kit(path: Path, rows: list[tuple[str, ...]] = ROWS, header: str = HEADER) -> Path:
    path.write_text(header + "".join("\t".join(r) + "\n" for r in rows), encoding="utf8")
    return path


def test_context_eval_reads_and_normalises_labels(tmp_path: Path) -> None:
    rows = read_context_testkit(write_kit(tmp_path / "kit.tsv"))
    assert len(rows) == 6
    assert rows[2].temporality == "Hypothetical"
    assert rows[3].experiencer == "Other"
    assert rows[0] == ContextRow("1", "cough", "She denies COUGH.", "Negated", "Recent", "Patient")


def test_context_eval_scores_a_tiny_kit(tmp_path: Path) -> None:
    report = evaluate_context(None, read_context_testkit(write_kit(tmp_path / "kit.tsv")))
    assert report["rows"] == 6 and report["scored"] == 5
    assert report["not_found"] == ["6"]
    assert report["negation"]["accuracy"] == 1.0
    assert report["negation"]["classes"]["Negated"]["f1"] == 1.0
    assert report["temporality"]["classes"]["Historical"]["f1"] == 1.0
    assert report["temporality"]["classes"]["Hypothetical"]["f1"] == 1.0
    assert report["experiencer"]["classes"]["Other"]["f1"] == 1.0
    assert report["errors"] == {"negation": [], "temporality": [], "experiencer": []}
    table = format_context_report(report)
    assert "Hypothetical" in table and "1 targets not found" in table
    assert "COUGH" not in table  # no note text in the report


def test_context_eval_counts_mistakes(tmp_path: Path) -> None:
    rows = [("9", " ", "asthma", "ASTHMA is well controlled.", "Negated", "Recent", "Patient")]
    report = evaluate_context(None, read_context_testkit(write_kit(tmp_path / "k.tsv", rows)))
    assert report["negation"]["accuracy"] == 0.0
    assert report["negation"]["classes"]["Negated"]["recall"] == 0.0
    assert report["errors"]["negation"] == ["9"]


def test_context_eval_skips_entity_and_sentence_components(tmp_path: Path) -> None:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "X", "pattern": "She"}])  # type: ignore[attr-defined]
    report = evaluate_context(nlp, read_context_testkit(write_kit(tmp_path / "kit.tsv")))
    assert report["negation"]["classes"]["Negated"]["f1"] == 1.0
    assert "medcode_context" in nlp.pipe_names


def test_context_eval_find_target() -> None:
    assert find_target("Mild   chest  pain today", "chest pain") == (7, 18)
    assert find_target("no match", "cough") is None
    # when the phrase occurs twice, the occurrence in capitals is the kit's target
    sentence = "Pain in the hip and PAIN in the knee"
    assert find_target(sentence, "pain") == (20, 24)


def test_context_eval_pipeline_is_built_once() -> None:
    nlp = context_pipeline()
    assert context_pipeline(nlp).pipe_names == ["medcode_sections", "medcode_context"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("id\ttarget\tsentence\n1\tx\tx\n", "missing column"),
        (HEADER + "1\t \tcough\tNo cough.\tMaybe\tRecent\tPatient\n", "negation value 'Maybe'"),
        (HEADER + "1\t \tcough\tNo cough.\tNegated\tSoon\tPatient\n", "temporality value"),
        (HEADER + "1\t \tcough\tNo cough.\tNegated\n", "has 5 fields"),
        (HEADER + "1\t \t\tNo cough.\tNegated\tRecent\tPatient\n", "empty target"),
        (HEADER, "no data rows"),
    ],
)
def test_context_eval_malformed_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf8")
    with pytest.raises(InputError, match="ConText test-kit TSV") as info:
        read_context_testkit(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_context_eval_missing_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_context_testkit(tmp_path / "absent.tsv")
    path = tmp_path / "latin1.tsv"
    path.write_bytes(HEADER.encode() + b"1\t \tcaf\xe9\tcaf\xe9\tNegated\tRecent\tPatient\n")
    with pytest.raises(InputError, match="UTF-8"):
        read_context_testkit(path)


def test_context_eval_dev_thresholds() -> None:
    path = shared_path("context-testkit", "dev.tsv")
    report = evaluate_context(None, read_context_testkit(path))
    assert report["scored"] >= 0.99 * report["rows"]
    assert report["negation"]["classes"]["Negated"]["f1"] >= 0.95
    assert report["temporality"]["classes"]["Historical"]["f1"] >= 0.75
    assert report["temporality"]["classes"]["Hypothetical"]["f1"] >= 0.90
