"""What a new user sees first: the first-run notice, empty and oversized notes, a code
system the knowledge base lacks, and the batch progress bar."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_medcode, write_jsonl

import medcode_nlp
from medcode_nlp import batch
from medcode_nlp.batch import run_batch, runner


@pytest.fixture
def medcode(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kb: Any):
    """``medcode ARGS`` in this process: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = run_medcode(monkeypatch, *args)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_: Any) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(medcode_nlp, "load", refuse)


@pytest.mark.slow
def test_first_run_says_it_builds_the_knowledge_base(tmp_path: Path) -> None:
    env = {**os.environ, "MEDCODE_KB": str(tmp_path / "kb")}
    process = subprocess.Popen([sys.executable, "-m", "medcode_nlp.cli", "search", "fever"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert process.stderr is not None
        first = process.stderr.readline().decode()  # before the build, not after it
    finally:
        process.kill()
        process.wait(timeout=30)
    assert "building the code-set knowledge base" in first and str(tmp_path / "kb") in first


def test_note_over_the_limit_is_refused_before_the_model_loads(
    medcode: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    note = tmp_path / "long.txt"
    note.write_text("fever " * 200)
    _no_model(monkeypatch)
    code, _, err = medcode("suggest", str(note), "--max-chars", "1000")
    assert code == 2 and "--max-chars 1200" in err
    assert "fever" not in err  # never quotes the note


def test_max_chars_reaches_the_coder_and_spacy(medcode: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import spacy

    from medcode_nlp.coder import Coder

    nlp = spacy.blank("en")
    assert Coder(nlp, max_chars=3_000_000).nlp.max_length == 3_000_000
    seen: dict[str, Any] = {}

    def fake_load(**options: Any) -> None:
        seen.update(options)
        raise SystemExit(0)

    monkeypatch.setattr(medcode_nlp, "load", fake_load)
    note = tmp_path / "note.txt"
    note.write_text("Fever.")
    medcode("suggest", str(note), "--max-chars", "2000000")
    assert seen["max_chars"] == 2_000_000


def test_empty_note_warns_on_stderr_and_exits_0(medcode: Any, tmp_path: Path) -> None:
    note = tmp_path / "empty.txt"
    note.write_text(" \n\t\n")
    code, out, err = medcode("suggest", str(note), "--ner", "dictionary", "--ranker", "none")
    assert code == 0 and "(no codes suggested)" in out
    assert "warning" in err and "empty" in err


def test_missing_code_system_says_how_to_add_it(medcode: Any, kb: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from medcode_nlp.codesets.registry import systems

    missing = [s for s in systems() if s not in kb.systems and s != "icd10cm"]
    assert missing  # "custom" is never built in
    note = tmp_path / "note.txt"
    note.write_text("Fever.")
    _no_model(monkeypatch)
    for system in missing:
        code, _, err = medcode("suggest", str(note), "--systems", system)
        assert code == 2 and "medcode kb add " in err and system in err, err
    code, _, err = medcode("search", "fever", "--systems", "icd9")
    assert code == 2 and "Unknown code system 'icd9'" in err


class _Bar:
    """Records what run_batch does to its progress bar."""

    def __init__(self) -> None:
        self.updates: list[int] = []
        self.closed = 0

    def update(self, n: int) -> None:
        self.updates.append(n)

    def set_postfix_str(self, *_: Any, **__: Any) -> None:
        pass

    def close(self) -> None:
        self.closed += 1


def test_batch_bar_moves_per_note_and_ends_with_one_line(
    tmp_path: Path, default_coder: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    batch.set_coder(default_coder, {})
    source = tmp_path / "notes.jsonl"
    rows = [{"id": i, "text": f"Fever and cough, visit {i}."} for i in range(6)]
    write_jsonl(source, [*rows, {"id": "bad", "text": ""}])
    bar = _Bar()
    monkeypatch.setattr(runner, "progress_bar", lambda *a, **k: bar)
    run_batch(source, tmp_path / "out.jsonl", load_options={}, chunk_size=128)
    assert bar.updates.count(1) >= 6 and sum(bar.updates) == 7 and bar.closed == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == ["coded 7 notes (6 this run, " + lines[0].split(", ", 1)[1]]
    assert lines[0].startswith("coded 7 notes") and lines[0].endswith(" s")


@pytest.mark.slow
def test_batch_real_bar_leaves_a_single_final_line(
    tmp_path: Path, default_coder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    batch.set_coder(default_coder, {})
    source = tmp_path / "notes.jsonl"
    write_jsonl(source, [{"id": i, "text": "Fever."} for i in range(3)])
    run_batch(source, tmp_path / "out.jsonl", load_options={}, chunk_size=2)
    err = capsys.readouterr().err
    final = [part for part in err.replace("\r", "\n").splitlines() if part.strip()]
    assert final[-1].startswith("coded 3 notes")
    assert sum("coded 3 notes" in part for part in final) == 1
    assert not any("100%" in part for part in final[-1:])
