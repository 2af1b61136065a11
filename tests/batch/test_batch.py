"""Batch coding: formats, bad records, atomic output, resume after SIGKILL, Dask."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import read_jsonl, write_jsonl

from medcode_nlp import batch
from medcode_nlp.batch import checkpoint, run_batch, runner
from medcode_nlp.errors import InputError, MedcodeError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "SECRETPHI"  # planted in bad records: must never appear in an error or a log

PHRASES = [
    "Patient reports chest pain and shortness of breath.",
    "History of type 2 diabetes mellitus.",
    "Denies fever or cough.",
    "Mother had breast cancer.",
    "Assessment: community acquired pneumonia.",
    "Plan: start amoxicillin.",
    "Known hypertension, on lisinopril.",
    "No evidence of deep vein thrombosis.",
    "Appendectomy in 2010.",
    "Presents with acute otitis media.",
    "Chronic kidney disease stage 3.",
    "Fracture of the left radius after a fall.",
]


def make_notes(n: int, seed: int = 7, phrases: int = 3) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(PHRASES, phrases)) + f" Visit {i}." for i in range(n)]


@pytest.fixture(scope="session")
def coder(default_coder: Any) -> Any:
    """The session's coder (loaded once); run_batch(workers=1) reuses this very object."""
    batch.set_coder(default_coder, {})
    return default_coder


@pytest.fixture(scope="session")
def load_options(coder: Any) -> dict[str, Any]:
    """The defaults of ``medcode_nlp.load()``: the shipped NER, or the dictionary matcher
    while no trained model is installed (the CLI without options loads the same)."""
    return {}


def expected(coder: Any, text: str) -> dict[str, Any]:
    return coder(text).to_dict()


# --------------------------------------------------------------------------- JSONL
def test_jsonl_every_kind_of_bad_record(tmp_path: Path, coder: Any,
                                        load_options: dict[str, Any],
                                        caplog: pytest.LogCaptureFixture) -> None:
    good = make_notes(3)
    lines: list[Any] = [
        {"id": "a", "text": good[0]},
        f'{{"id": "broken", "text": "{SECRET} unterminated',  # unparseable line
        "",  # blank line: not a record
        {"id": "empty", "text": ""},
        {"id": "blank", "text": "  \n\t "},
        {"id": "no-text", "note": SECRET},
        {"text": f"{SECRET} without id"},
        {"id": None, "text": f"{SECRET} null id"},
        {"id": "int-text", "text": 12345},
        {"id": "list-text", "text": [SECRET]},
        {"id": {"nested": SECRET}, "text": good[1]},
        {"id": "too-long", "text": SECRET + "x" * 1_000_001},
        '["not", "an", "object"]',
        '{"id": "surrogate", "text": "bad \\ud800 escape ' + SECRET + '"}',
        {"id": 7, "text": good[1]},
        {"id": "b", "text": good[2]},
    ]
    source = tmp_path / "notes.jsonl"
    write_jsonl(source, lines)
    with source.open("ab") as handle:  # a line that is not UTF-8
        handle.write(b'{"id": "latin1", "text": "caf\xe9 ' + SECRET.encode() + b'"}\n')
    out = tmp_path / "out.jsonl"
    summary = run_batch(source, out, load_options=load_options, chunk_size=4, progress=False)

    records = read_jsonl(out)
    assert summary.records == len(records) == 16
    assert summary.coded == 3 and summary.errors == 13
    assert [r["row"] for r in records] == [1, 2, *range(4, 18)]
    by_row = {r["row"]: r for r in records}
    assert all(("result" in r) != ("error" in r) for r in records)
    assert by_row[1]["id"] == "a" and by_row[1]["result"] == expected(coder, good[0])
    assert by_row[15]["id"] == 7 and by_row[15]["result"] == expected(coder, good[1])
    assert by_row[16]["id"] == "b" and by_row[16]["result"] == expected(coder, good[2])
    problems = {
        2: (None, "not valid JSON"),
        4: ("empty", "is empty"),
        5: ("blank", "is empty"),
        6: ("no-text", "missing field 'text'"),
        7: (None, "missing field 'id'"),
        8: (None, "missing field 'id'"),
        9: ("int-text", "has type int"),
        10: ("list-text", "has type list"),
        11: (None, "field 'id' has type dict"),
        12: ("too-long", "over the limit"),
        13: (None, "not an object"),
        14: ("surrogate", "not valid UTF-8"),
        17: (None, "not valid UTF-8"),
    }
    for row, (record_id, phrase) in problems.items():
        assert by_row[row]["id"] == record_id, row
        assert phrase in by_row[row]["error"], (row, by_row[row]["error"])
        assert f"row {row}" in by_row[row]["error"]
    assert SECRET not in out.read_text(encoding="utf-8").replace(good[0], "")
    assert SECRET not in caplog.text
    assert not (tmp_path / "out.jsonl.checkpoint").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.jsonl", "out.jsonl"]


def test_one_failing_note_only_costs_its_own_record() -> None:
    from medcode_nlp.schema import CodingResult

    class Flaky:
        def pipe(self, texts: list[str], batch_size: int = 16) -> Any:
            raise RuntimeError(f"pipeline broke on {SECRET}")

        def __call__(self, text: str) -> CodingResult:
            if "boom" in text:
                raise KeyError(f"{SECRET} {text}")
            return CodingResult()

    records = [(1, "a", "fine note", None), (2, "b", "boom note", None),
               (3, "c", None, "Record 'c' (row 3) is invalid: field 'text' is empty.")]
    out = batch.code_records(Flaky(), records)  # type: ignore[arg-type]
    assert [r["id"] for r in out] == ["a", "b", "c"]
    assert out[0]["result"] == CodingResult().to_dict()
    assert out[1]["error"] == "Record 'b' (row 2) is invalid: coding failed (KeyError)."
    assert "is empty" in out[2]["error"]
    assert SECRET not in json.dumps(out)


# ----------------------------------------------------------------- CSV and Parquet
def test_csv_to_parquet(tmp_path: Path, coder: Any, load_options: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    notes = make_notes(5)
    source = tmp_path / "notes.csv"
    source.write_text(
        "note_id,body,extra\n"
        f'007,"{notes[0]}\nSecond line, with a comma.",x\n'
        f"008,{notes[1]},y\n"
        "009,,z\n"  # empty text
        "010\n"  # missing text cell
        "\n"  # blank line: not a record
        f'011,"{notes[2]}",w\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.parquet"
    summary = run_batch(source, out, id_field="note_id", text_field="body",
                        load_options=load_options, chunk_size=2, progress=False)
    assert summary.records == 5 and summary.errors == 2
    table = pq.read_table(out).to_pylist()
    assert [r["id"] for r in table] == ["007", "008", "009", "010", "011"]  # ids kept as text
    assert [r["row"] for r in table] == [1, 2, 3, 4, 5]
    assert json.loads(table[0]["result"]) == expected(
        coder, f"{notes[0]}\nSecond line, with a comma.")
    assert json.loads(table[4]["result"]) == expected(coder, notes[2])
    assert table[2]["result"] is None and "is empty" in table[2]["error"]
    assert "missing field 'body'" in table[3]["error"]


def test_parquet_input(tmp_path: Path, coder: Any, load_options: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    notes = make_notes(3)
    source = tmp_path / "notes.parquet"
    pq.write_table(pa.table({"id": [10, 11, None, 13], "text": [notes[0], None, notes[1], ""]}),
                   source)
    out = tmp_path / "out.jsonl"
    run_batch(source, out, load_options=load_options, progress=False)
    records = read_jsonl(out)
    assert [r["id"] for r in records] == [10, 11, None, 13]  # integer ids stay integers
    assert records[0]["result"] == expected(coder, notes[0])
    assert "missing field 'text'" in records[1]["error"]
    assert "missing field 'id'" in records[2]["error"]
    assert "is empty" in records[3]["error"]

    wrong = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"id": ["x"], "text": [3.5]}), wrong)
    run_batch(wrong, out, load_options=load_options, progress=False)
    assert "has type float" in read_jsonl(out)[0]["error"]


def test_missing_column_and_bad_arguments(tmp_path: Path, load_options: dict[str, Any]) -> None:
    source = tmp_path / "notes.csv"
    source.write_text("id,note\n1,text\n", encoding="utf-8")
    with pytest.raises(InputError, match="no column 'text'"):
        run_batch(source, tmp_path / "out.jsonl", load_options=load_options, progress=False)
    with pytest.raises(InputError, match="format"):
        run_batch(source, tmp_path / "out.txt", text_field="note", load_options=load_options)
    with pytest.raises(InputError, match="does not exist"):
        run_batch(tmp_path / "absent.jsonl", tmp_path / "out.jsonl")
    with pytest.raises(InputError, match="input file"):
        run_batch(source, source, text_field="note", input_format="csv", output_format="jsonl")


# ------------------------------------------------------------- atomicity, resuming
def test_failed_run_leaves_no_output_and_resumes(tmp_path: Path, coder: Any,
                                                 load_options: dict[str, Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    notes = make_notes(12)
    source = tmp_path / "notes.jsonl"
    write_jsonl(source, [{"id": f"n{i}", "text": t} for i, t in enumerate(notes)])
    out = tmp_path / "out.jsonl"
    out.write_text("previous output\n", encoding="utf-8")
    real = batch.code_chunk

    def crash_on_chunk_2(chunk: int, *args: Any) -> Any:
        if chunk == 2:
            raise RuntimeError("simulated crash")
        return real(chunk, *args)

    monkeypatch.setattr(runner, "code_chunk", crash_on_chunk_2)
    with pytest.raises(RuntimeError, match="simulated"):
        run_batch(source, out, load_options=load_options, chunk_size=3, progress=False)
    assert out.read_text(encoding="utf-8") == "previous output\n"  # untouched
    checkpoint = tmp_path / "out.jsonl.checkpoint"
    assert sorted(p.name for p in checkpoint.glob("part-*")) == [
        "part-00000000.jsonl", "part-00000001.jsonl"]
    assert not list(tmp_path.glob(".*.tmp")) and not list(checkpoint.glob(".*.tmp"))

    monkeypatch.setattr(runner, "code_chunk", real)
    summary = run_batch(source, out, load_options=load_options, chunk_size=3, progress=False)
    assert summary.resumed_chunks == 2 and summary.coded_this_run == 6
    records = read_jsonl(out)
    assert [r["id"] for r in records] == [f"n{i}" for i in range(12)]
    assert records[7]["result"] == expected(coder, notes[7])
    assert not checkpoint.exists()


def test_checkpoint_of_other_input_is_discarded(tmp_path: Path, load_options: dict[str, Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "notes.jsonl"
    write_jsonl(source, [{"id": i, "text": t} for i, t in enumerate(make_notes(6))])
    out = tmp_path / "out.jsonl"
    real = batch.code_chunk

    def crash(chunk: int, *args: Any) -> Any:
        if chunk == 1:
            raise RuntimeError("simulated crash")
        return real(chunk, *args)

    monkeypatch.setattr(runner, "code_chunk", crash)
    with pytest.raises(RuntimeError):
        run_batch(source, out, load_options=load_options, chunk_size=3, progress=False)
    monkeypatch.setattr(runner, "code_chunk", real)
    write_jsonl(source, [{"id": i, "text": t} for i, t in enumerate(make_notes(6, seed=1))])
    summary = run_batch(source, out, load_options=load_options, chunk_size=3, progress=False)
    assert summary.resumed_chunks == 0 and summary.records == 6


def test_concurrent_run_is_refused(tmp_path: Path, load_options: dict[str, Any]) -> None:
    source = tmp_path / "notes.jsonl"
    write_jsonl(source, [{"id": 1, "text": "Denies fever."}])
    out = tmp_path / "out.jsonl"
    holder = checkpoint.Checkpoint(tmp_path / "out.jsonl.checkpoint", {"other": True})
    holder.open()
    try:
        with pytest.raises(MedcodeError, match="Another batch run"):
            run_batch(source, out, load_options=load_options, progress=False)
    finally:
        holder.close()


def _cli(source: Path, out: Path, load_options: dict[str, Any], workers: int) -> list[str]:
    args = [sys.executable, "-m", "medcode_nlp.cli", "batch", str(source), str(out),
            "--chunk-size", "10", "--workers", str(workers), "--no-progress"]
    if load_options.get("ner"):
        args += ["--ner", load_options["ner"]]
    return args


@pytest.mark.slow
def test_sigkill_then_rerun_completes_without_loss_or_duplicates(
    tmp_path: Path, coder: Any, load_options: dict[str, Any]
) -> None:
    notes = make_notes(200, seed=3, phrases=2)
    source = tmp_path / "notes.jsonl"
    write_jsonl(source, [{"id": f"note-{i}", "text": t} for i, t in enumerate(notes)])
    out = tmp_path / "coded.jsonl"
    checkpoint = tmp_path / "coded.jsonl.checkpoint"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = _cli(source, out, load_options, workers=2)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while len(list(checkpoint.glob("part-*.jsonl"))) < 2:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no chunk committed in time"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the runner and its loky workers
        process.wait()
    committed = len(list(checkpoint.glob("part-*.jsonl")))
    assert process.returncode == -signal.SIGKILL
    assert not out.exists() and 2 <= committed < 20

    rerun = subprocess.run(command, env=env, capture_output=True, timeout=180, check=False)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    summary = json.loads(rerun.stdout)
    assert summary["resumed_chunks"] >= committed and summary["records"] == 200
    records = read_jsonl(out)
    ids = [r["id"] for r in records]
    assert ids == [f"note-{i}" for i in range(200)]  # none lost, none duplicated, in order
    assert all("result" in r for r in records)
    for i in (0, 5, 150, 199):
        assert records[i]["result"] == expected(coder, notes[i])
    assert not checkpoint.exists()
    assert SECRET not in rerun.stderr.decode()


# ---------------------------------------------------------------------------- Dask
@pytest.mark.slow
def test_dask_cluster_matches_local_run(tmp_path: Path, coder: Any,
                                        load_options: dict[str, Any]) -> None:
    pytest.importorskip("distributed")
    import dask.bag as db
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, LocalCluster

    notes = make_notes(14, seed=5, phrases=2)
    rows: list[Any] = [{"id": f"d{i}", "text": t} for i, t in enumerate(notes)]
    rows.insert(5, {"id": "bad", "text": ""})
    source = tmp_path / "notes.jsonl"
    write_jsonl(source, rows)
    local = tmp_path / "local.jsonl"
    run_batch(source, local, load_options=load_options, chunk_size=5, progress=False)

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        remote = tmp_path / "remote.jsonl"
        summary = run_batch(source, remote, load_options=load_options, chunk_size=5,
                            scheduler=cluster.scheduler_address, progress=False)
        assert summary.records == 15 and summary.errors == 1
        assert read_jsonl(remote) == read_jsonl(local)

        bag = db.from_sequence([*rows, notes[0], 42], npartitions=3)
        coded = batch.code_bag(bag, **load_options).compute()
        assert [r["id"] for r in coded[:15]] == [r["id"] for r in rows]
        assert coded[0]["result"] == expected(coder, notes[0])
        assert coded[15]["id"] is None and coded[15]["result"] == expected(coder, notes[0])
        assert "has type int" in coded[16]["error"]

        frame = pd.DataFrame({"id": [f"f{i}" for i in range(6)], "text": notes[:5] + [None]})
        result = batch.code_dataframe(dd.from_pandas(frame, npartitions=2), "text", "id",
                                      **load_options).compute()
        assert list(result["id"]) == list(frame["id"])
        assert json.loads(result["result"].iloc[3]) == expected(coder, notes[3])
        assert result["result"].iloc[5] is None and "missing field" in result["error"].iloc[5]

        loads = client.run(batch.loaded_coders)
        assert all(len(v) <= 1 for v in loads.values()), loads  # the model loaded once
        assert sum(len(v) for v in loads.values()) >= 1
