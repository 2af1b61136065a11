"""No PHI leaks: note text never reaches stderr, a log, an error record, an error response or
the text of an exception, even when things fail on purpose.

A unique marker is planted in the *text* of notes only (ids may legitimately appear in error
messages). The CLI, the batch runner and the HTTP service are then driven into every failure
we can provoke (bad encodings, oversize notes, malformed records, wrong types, a killed worker,
internal errors) with logging at DEBUG, and the marker must not come out anywhere but in the
results of notes that were coded (the user's own output).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import read_jsonl, write_jsonl

from medcode_nlp import coder_cache
from medcode_nlp.batch import run_batch, runner
from medcode_nlp.errors import InputError, MedcodeError

ROOT = Path(__file__).resolve().parents[1]
MARKER_HEAD = "ZZPHIMARKER"
MARKER_ID = uuid.uuid4().hex
MARKER = MARKER_HEAD + MARKER_ID  # one per run; only ever inside note text
SMALL_LIMIT = 400  # max_chars of the coders used here (oversize notes stay small)
DEBUG_LOGGERS = ("medcode_nlp", "medcode_nlp.serve", "medcode_nlp.batch", "uvicorn",
                 "uvicorn.error", "uvicorn.access", "fastapi", "starlette", "joblib", "spacy")


def phi_note(i: int = 0) -> str:
    """A short clinical note with the marker inside a sentence."""
    return (f"Patient {MARKER} reports chest pain and shortness of breath. "
            f"History of type 2 diabetes mellitus. Visit {i}.")


def oversize_note() -> str:
    return f"Patient {MARKER} has chest pain. " + "Denies fever. " * (SMALL_LIMIT // 10)


def assert_clean(text: str, where: str) -> None:
    """No trace of the marker (nor of a truncated or re-cased copy of it)."""
    lowered = text.lower()
    assert MARKER_HEAD.lower() not in lowered and MARKER_ID not in lowered, (
        f"PHI marker leaked into {where}: ...{_around(text)}...")


def _around(text: str) -> str:
    at = text.lower().find(MARKER_HEAD.lower())
    at = at if at >= 0 else text.lower().find(MARKER_ID)
    return text[max(0, at - 120):at + 120]


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record as a handler would write it (message, exception, stack)."""
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


def assert_logs_clean(caplog: pytest.LogCaptureFixture, where: str) -> None:
    assert_clean(log_text(caplog), f"the log ({where})")
    assert_clean(caplog.text, f"the log ({where})")
    for record in caplog.records:  # an exception attached to a record would carry its text
        assert record.exc_info is None and record.exc_text is None, (where, record.getMessage())
    assert "Traceback (most recent call last)" not in log_text(caplog), where


def assert_warnings_clean(recwarn: pytest.WarningsRecorder, where: str) -> None:
    assert_clean("\n".join(str(w.message) for w in recwarn.list), f"a warning ({where})")


def exception_text(error: BaseException) -> str:
    """str, repr and the printed traceback of an exception and of every exception chained to
    it (cause and context, even a suppressed one)."""
    parts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current), *traceback.format_exception(current)]
        pending += [current.__cause__, current.__context__]
    return "\n".join(parts)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Root and library loggers at DEBUG, all propagating to caplog (even if an earlier test
    configured uvicorn logging, which stops propagation or disables loggers)."""
    saved = []
    for name in DEBUG_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate, logger.disabled))
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
        logger.disabled = False
    caplog.set_level(logging.DEBUG)
    try:
        yield caplog
    finally:
        for logger, level, propagate, disabled in saved:
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


@pytest.fixture(scope="module")
def small_coder(dictionary_coder: Any) -> Any:
    """The session's dictionary coder with a small note limit (shares the loaded pipeline)."""
    coder = copy.copy(dictionary_coder)
    coder.max_chars = SMALL_LIMIT
    return coder


# ======================================================================= public API
def _csv_without_header(tmp_path: Path) -> Path:
    path = tmp_path / "no_header.csv"
    path.write_text(f'17,"{phi_note()}"\n18,"Denies fever."\n', encoding="utf-8")
    return path


def test_exceptions_of_the_public_api_never_hold_note_text(small_coder: Any,
                                                           tmp_path: Path) -> None:
    from medcode_nlp.cli.textio import decode_note, read_note

    bad_bytes = f"Patient {MARKER} caf".encode() + b"\xe9 " + MARKER.encode()
    cases = {
        "oversize note": lambda: small_coder(oversize_note()),
        "bytes instead of str": lambda: small_coder(phi_note().encode()),
        "lone surrogate": lambda: small_coder(f"Patient {MARKER}\ud800x has chest pain."),
        "lone surrogate (escaped byte)": lambda: small_coder(f"chest pain \udce9{MARKER}"),
        "pipe: oversize note": lambda: list(small_coder.pipe([phi_note(), oversize_note()])),
        "pipe: lone surrogate": lambda: list(small_coder.pipe([f"{MARKER}\udce9 fever"])),
        "decode_note: not UTF-8": lambda: decode_note(bad_bytes, "note.txt"),
        "decode_note: NUL bytes": lambda: decode_note(phi_note().encode() + b"\x00", "n.txt"),
        "read_note: not UTF-8": lambda: read_note(_write(tmp_path / "bad.txt", bad_bytes)),
        "run_batch: CSV without header": lambda: run_batch(
            _csv_without_header(tmp_path), tmp_path / "out.jsonl", progress=False),
    }
    for name, call in cases.items():
        with pytest.raises(InputError) as caught:
            call()
        assert_clean(exception_text(caught.value), f"the exception of {name}")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ============================================================================== CLI
def run_cli(*args: str, stdin: bytes | None = None, models: Path | None = None
            ) -> subprocess.CompletedProcess[bytes]:
    """``medcode ...`` in a new process, logging at DEBUG and showing warnings.

    ``models``: a models directory to use instead of the shipped one.
    """
    env = {**os.environ, "MEDCODE_LOG_LEVEL": "DEBUG", "PYTHONWARNINGS": "default",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    if models is not None:
        env["MEDCODE_MODELS"] = str(models)
    return subprocess.run([sys.executable, "-m", "medcode_nlp.cli", *args], input=stdin,
                          env=env, capture_output=True, timeout=300, check=False)


def test_cli_log_level_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from medcode_nlp.cli.app import LOG_LEVEL_ENV, log_level_from_env

    monkeypatch.setenv(LOG_LEVEL_ENV, "debug")
    assert log_level_from_env() == logging.DEBUG
    monkeypatch.setenv(LOG_LEVEL_ENV, "no-such-level")
    assert log_level_from_env() == logging.WARNING
    monkeypatch.delenv(LOG_LEVEL_ENV)
    assert log_level_from_env() == logging.WARNING


@pytest.mark.parametrize("case", ["not UTF-8", "NUL bytes", "stdin not UTF-8", "directory",
                                  "missing file", "batch: CSV without header"])
@pytest.mark.slow
def test_cli_input_errors_do_not_show_the_note(case: str, tmp_path: Path) -> None:
    bad = f"Patient {MARKER} has chest pain; caf".encode() + b"\xe9\xff " + MARKER.encode()
    stdin = None
    if case == "not UTF-8":
        args = ["suggest", str(_write(tmp_path / "note.txt", bad))]
    elif case == "NUL bytes":
        args = ["suggest", str(_write(tmp_path / "note.txt", phi_note().encode() + b"\x00"))]
    elif case == "stdin not UTF-8":
        args, stdin = ["suggest", "-"], bad
    elif case == "directory":
        (tmp_path / "notes").mkdir()
        _write(tmp_path / "notes" / "note.txt", phi_note().encode())
        args = ["suggest", str(tmp_path / "notes")]
    elif case == "missing file":
        args = ["suggest", str(tmp_path / "absent.txt")]
    else:
        args = ["batch", str(_csv_without_header(tmp_path)), str(tmp_path / "out.jsonl")]
    done = run_cli(*args, "--ner", "dictionary", stdin=stdin)
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    assert stderr.startswith("error: ") and "Traceback" not in stderr, stderr
    assert_clean(stderr, f"stderr ({case})")
    assert_clean(done.stdout.decode("utf-8", "replace"), f"stdout ({case})")
    if case == "batch: CSV without header":
        assert "is the header row missing?" in stderr


@pytest.mark.slow
def test_cli_oversize_note(tmp_path: Path) -> None:
    note = tmp_path / "long.txt"
    note.write_text(phi_note() + " Denies fever." * 72_000, encoding="utf-8")  # > 1e6 chars
    done = run_cli("suggest", str(note), "--ner", "dictionary", "--ranker", "none",
                   models=tmp_path)
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2 and "over the limit" in stderr, stderr
    assert "Traceback" not in stderr
    assert_clean(stderr + done.stdout.decode("utf-8", "replace"), "the CLI output")


@pytest.mark.slow
def test_cli_success_keeps_the_note_out_of_stderr(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text(f"{phi_note()}\nPatient {MARKER} is on lisinopril.", encoding="utf-8")
    # Without trained models (the dictionary matcher and raw similarity, asked for): the
    # result does not depend on the shipped ranker, and the run logs its mode at INFO.
    done = run_cli("suggest", str(note), "--ner", "dictionary", "--ranker", "none",
                   "--format", "html", models=tmp_path)
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, stderr
    assert MARKER in done.stdout.decode("utf-8")  # the user's own output shows the note
    assert "INFO medcode_nlp.coder: coder mode" in stderr  # the log reaches stderr
    assert_clean(stderr, "stderr of a successful run")


def test_cli_unexpected_error_shows_only_its_type(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path,
                                                  capfd: pytest.CaptureFixture[str],
                                                  debug_logs: pytest.LogCaptureFixture,
                                                  recwarn: pytest.WarningsRecorder) -> None:
    import medcode_nlp
    from medcode_nlp.cli.app import main

    class Broken:
        def __call__(self, text: str, **options: Any) -> Any:
            raise RuntimeError(f"the pipeline broke on {text!r}")

    monkeypatch.setattr(medcode_nlp, "load", lambda **options: Broken())
    note = tmp_path / "note.txt"
    note.write_text(phi_note(), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["medcode", "suggest", str(note)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    out, err = capfd.readouterr()
    assert "unexpected RuntimeError" in err and "Traceback" not in err
    assert_clean(out + err, "the CLI output of an unexpected error")
    assert_logs_clean(debug_logs, "CLI unexpected error")
    assert_warnings_clean(recwarn, "CLI unexpected error")


def test_cli_batch_with_bad_records(tmp_path: Path, small_coder: Any, seed_coder: Any,
                                    capfd: pytest.CaptureFixture[str],
                                    debug_logs: pytest.LogCaptureFixture,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from medcode_nlp.cli.app import main

    # The options medcode batch passes for these flags: reuse the loaded dictionary coder.
    seed_coder(small_coder, {"ner": "dictionary", "setting": "outpatient",
                                          "top_k": 20, "max_chars": SMALL_LIMIT})
    source = tmp_path / "notes.jsonl"
    write_jsonl(source, [{"id": "good", "text": phi_note()},
                         f'{{"id": "broken", "text": "{MARKER} unterminated',
                         {"id": "long", "text": oversize_note()},
                         {"id": "list", "text": [MARKER]}])
    out = tmp_path / "out.jsonl"
    monkeypatch.setattr(sys, "argv", ["medcode", "batch", str(source), str(out), "--ner",
                                      "dictionary", "--max-chars", str(SMALL_LIMIT)])
    main()
    stdout, stderr = capfd.readouterr()
    assert json.loads(stdout)["records"] == 4
    assert_clean(stdout + stderr, "the output of medcode batch")
    assert_logs_clean(debug_logs, "medcode batch")
    records = read_jsonl(out)
    assert [r["row"] for r in records] == [1, 2, 3, 4]
    assert records[0]["result"] == small_coder(phi_note()).to_dict()
    assert_clean(json.dumps(records[1:]), "the error records of medcode batch")


# ============================================================================ batch
@pytest.fixture
def seed_coder() -> Iterator[Callable[[Any, dict[str, Any]], None]]:
    """``seed_coder(coder, options)`` makes run_batch (workers=1) use ``coder`` for
    ``options`` in this test only."""
    seeded: list[dict[str, Any]] = []

    def seed(coder: Any, options: dict[str, Any]) -> None:
        coder_cache.set_coder(coder, options)
        seeded.append(options)

    yield seed
    for options in seeded:
        coder_cache.forget_coder(options)


def bad_jsonl_rows() -> tuple[list[Any], dict[int, str]]:
    """Rows of a JSONL file (good and bad) and the expected problem of each bad line."""
    rows: list[Any] = [
        {"id": "good-1", "text": phi_note(1)},
        f'{{"id": "broken", "text": "{MARKER} has an unterminated string',
        {"id": "list", "text": [MARKER, "chest pain"]},
        {"id": "dict", "text": {"note": phi_note()}},
        {"id": "number", "text": 12345},
        {"id": "long", "text": oversize_note()},
        '{"id": "surrogate", "text": "Patient \\ud800 ' + MARKER + ' has chest pain"}',
        {"id": "no-text", "note": phi_note()},
        {"id": "empty", "text": "   "},
        f'["{MARKER}", "not an object"]',
        {"id": "good-2", "text": phi_note(2)},
    ]
    problems = {2: "not valid JSON", 3: "has type list", 4: "has type dict", 5: "has type int",
                6: "over the limit", 7: "not valid UTF-8", 8: "missing field 'text'",
                9: "is empty", 10: "not an object", 12: "not valid UTF-8"}
    return rows, problems


def write_bad_jsonl(path: Path) -> tuple[list[Any], dict[int, str]]:
    rows, problems = bad_jsonl_rows()
    write_jsonl(path, rows)
    with path.open("ab") as handle:  # line 12: not UTF-8
        handle.write(b'{"id": "latin1", "text": "caf\xe9 ' + MARKER.encode() + b' fever"}\n')
    write_jsonl_append(path, [{"id": "good-3", "text": phi_note(3)}])  # line 13
    return rows, problems


def write_jsonl_append(path: Path, rows: list[Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def check_output(records: list[dict[str, Any]], problems: dict[int, str], coder: Any,
                 good: dict[int, str], total: int) -> None:
    """One record per input record, in order; errors name the problem but never the note."""
    assert [r["row"] for r in records] == list(range(1, total + 1))  # nothing lost
    for record in records:
        assert ("result" in record) != ("error" in record), record
        if "error" in record:
            assert record["row"] in problems, record
            assert problems[record["row"]] in record["error"], record
            assert f"row {record['row']}" in record["error"]
            assert_clean(json.dumps(record), f"the error record of row {record['row']}")
        else:
            assert record["row"] in good, record
            assert record["result"] == coder(good[record["row"]]).to_dict()


def test_batch_bad_jsonl_records(tmp_path: Path, small_coder: Any, seed_coder: Any,
                                 monkeypatch: pytest.MonkeyPatch,
                                 capfd: pytest.CaptureFixture[str],
                                 debug_logs: pytest.LogCaptureFixture,
                                 recwarn: pytest.WarningsRecorder) -> None:
    options = {"ner": "dictionary", "ranker": "none", "max_chars": SMALL_LIMIT}
    seed_coder(small_coder, options)
    source = tmp_path / "notes.jsonl"
    _, problems = write_bad_jsonl(source)
    out = tmp_path / "out.jsonl"
    summary = run_batch(source, out, load_options=options, chunk_size=3, progress=True)
    assert summary.records == 13 and summary.errors == len(problems)
    records = read_jsonl(out)
    check_output(records, problems, small_coder,
                 {1: phi_note(1), 11: phi_note(2), 13: phi_note(3)}, 13)
    assert {r["id"] for r in records if "error" in r} >= {"list", "long", "surrogate"}
    stdout, stderr = capfd.readouterr()
    assert_clean(stdout + stderr, "stdout/stderr of run_batch")
    assert_logs_clean(debug_logs, "run_batch")
    assert_warnings_clean(recwarn, "run_batch")


def test_batch_bad_csv_and_parquet_records(tmp_path: Path, small_coder: Any, seed_coder: Any,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capfd: pytest.CaptureFixture[str],
                                           debug_logs: pytest.LogCaptureFixture) -> None:
    options = {"ner": "dictionary", "ranker": "none", "max_chars": SMALL_LIMIT}
    seed_coder(small_coder, options)
    source = tmp_path / "notes.csv"
    source.write_bytes(
        b"id,text\n"
        + f'1,"{phi_note(1)}"\n'.encode()
        + b'2,"caf\xe9 ' + MARKER.encode() + b' has chest pain"\n'  # not UTF-8
        + f'3,"{oversize_note()}"\n'.encode()
        + b"4,\n"  # empty text
        + b"5\n"  # no text cell
        + f'6,"{phi_note(6)}"\n'.encode()
    )
    out = tmp_path / "out.jsonl"
    run_batch(source, out, load_options=options, chunk_size=2, progress=False)
    problems = {2: "not valid UTF-8", 3: "over the limit", 4: "is empty",
                5: "missing field 'text'"}
    check_output(read_jsonl(out), problems, small_coder, {1: phi_note(1), 6: phi_note(6)}, 6)

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"id": ["a", "b", "c"],
                      "text": [phi_note().encode(), oversize_note().encode(), b"\xff" * 3]})
    parquet = tmp_path / "notes.parquet"
    pq.write_table(table, parquet)
    run_batch(parquet, out, load_options=options, progress=False)
    check_output(read_jsonl(out), {1: "has type bytes", 2: "has type bytes",
                                   3: "has type bytes"}, small_coder, {}, 3)
    stdout, stderr = capfd.readouterr()
    assert_clean(stdout + stderr, "stdout/stderr of run_batch")
    assert_logs_clean(debug_logs, "run_batch on CSV and Parquet")


class FailingCoder:
    """Fails like a broken pipeline would: the exception messages quote the note."""

    def __init__(self, coder: Any) -> None:
        self.coder = coder
        self.max_chars = coder.max_chars

    def pipe(self, texts: Any, batch_size: int = 16, **options: Any) -> Any:
        texts = list(texts)
        raise ValueError(f"[E999] could not process {texts!r}")

    def __call__(self, text: str, **options: Any) -> Any:
        if "chest pain" in text:
            raise UnicodeEncodeError("utf-8", text, 0, 1, f"bad character in {text}")
        if "fever" in text:
            raise KeyError(text)
        return self.coder(text)


def test_batch_errors_inside_the_worker(tmp_path: Path, small_coder: Any, seed_coder: Any,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capfd: pytest.CaptureFixture[str],
                                        debug_logs: pytest.LogCaptureFixture) -> None:
    options = {"ner": "dictionary", "ranker": "none", "max_chars": SMALL_LIMIT, "top_k": 19}
    seed_coder(FailingCoder(small_coder), options)
    notes = [f"Patient {MARKER} reports chest pain.", f"{MARKER} denies fever.",
             f"{MARKER} is on lisinopril for hypertension."]
    source = tmp_path / "notes.jsonl"
    write_jsonl(source, [{"id": f"n{i}", "text": t} for i, t in enumerate(notes)])
    out = tmp_path / "out.jsonl"
    summary = run_batch(source, out, load_options=options, progress=False)
    assert summary.records == 3 and summary.errors == 2
    records = read_jsonl(out)
    assert [r["id"] for r in records] == ["n0", "n1", "n2"]
    assert "coding failed (UnicodeEncodeError)" in records[0]["error"]
    assert "coding failed (KeyError)" in records[1]["error"]
    assert records[2]["result"] == small_coder(notes[2]).to_dict()
    assert_clean(json.dumps(records[:2]), "the error records")
    assert "coding them one by one" in debug_logs.text  # the failure was logged...
    assert_logs_clean(debug_logs, "a failing pipeline")  # ...without the note
    stdout, stderr = capfd.readouterr()
    assert_clean(stdout + stderr, "stdout/stderr of run_batch")


def killing_code_chunk(chunk: int, records: Any, load_options: Any) -> Any:
    """Runs in a loky worker (pickled by value): the worker dies on the record 'kill-me'."""
    import os
    import signal

    from medcode_nlp import batch as batch_module

    if any(record[1] == "kill-me" for record in records):
        os.kill(os.getpid(), signal.SIGKILL)
    return batch_module.code_chunk(chunk, records, load_options)


@pytest.mark.slow
def test_batch_killed_worker_leaks_nothing_and_rerun_loses_nothing(
    tmp_path: Path, small_coder: Any, seed_coder: Any, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str], debug_logs: pytest.LogCaptureFixture,
) -> None:
    cloudpickle = pytest.importorskip("cloudpickle")  # what loky pickles tasks with
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    options = {"ner": "dictionary", "ranker": "none", "max_chars": SMALL_LIMIT}
    rows, problems = bad_jsonl_rows()  # without the non-UTF-8 line 12 of write_bad_jsonl
    # Row 9 is in chunk 4, which joblib dispatches only once a chunk is done: the worker
    # dies after chunks were committed, so the rerun has to resume.
    rows.insert(8, {"id": "kill-me", "text": phi_note(99)})
    problems = {(row + 1 if row >= 9 else row): what for row, what in problems.items()
                if row != 12}
    source = tmp_path / "notes.jsonl"
    write_jsonl(source, rows)
    out = tmp_path / "out.jsonl"

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    monkeypatch.setattr(runner, "code_chunk", killing_code_chunk)
    try:
        with pytest.raises(TerminatedWorkerError) as crashed:
            run_batch(source, out, load_options=options, workers=2, chunk_size=2,
                      progress=False)
    finally:
        cloudpickle.unregister_pickle_by_value(module)
        monkeypatch.undo()
    assert "terminated" in str(crashed.value).lower(), repr(crashed.value)
    assert_clean(exception_text(crashed.value), "the error of the killed run")
    assert not out.exists()
    committed = len(list((tmp_path / "out.jsonl.checkpoint").glob("part-*.jsonl")))

    # The same command again (here in this process) finishes the job from the checkpoint.
    seed_coder(small_coder, options)
    summary = run_batch(source, out, load_options=options, chunk_size=2, progress=False)
    assert summary.records == len(rows) and summary.errors == len(problems)
    assert summary.resumed_chunks == committed  # chunks committed before the kill are kept
    records = read_jsonl(out)
    check_output(records, problems, small_coder,
                 {1: phi_note(1), 9: phi_note(99), 12: phi_note(2)}, len(rows))
    assert records[8]["id"] == "kill-me"
    stdout, stderr = capfd.readouterr()  # the workers' stderr too (same file descriptor)
    assert_clean(stdout + stderr, "stdout/stderr of the killed and the resumed run")
    assert_logs_clean(debug_logs, "killed worker and rerun")


# =========================================================================== server
LIMIT = 20_000


@pytest.fixture(scope="module")
def client(small_coder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    pytest.importorskip("httpx", reason="httpx is needed for FastAPI's test client")
    from fastapi.testclient import TestClient

    from medcode_nlp.serve import create_app

    db = tmp_path_factory.mktemp("phi_serve") / "reviews.sqlite3"
    app = create_app(coder_factory=lambda: small_coder, db_path=db, max_body_bytes=LIMIT)
    with TestClient(app, base_url="http://127.0.0.1:8000",
                    raise_server_exceptions=False) as test_client:
        yield test_client


def assert_clean_error(response: Any, status: int, error_type: str | tuple[str, ...]) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    types = (error_type,) if isinstance(error_type, str) else error_type
    assert set(body) == {"error"} and body["error"]["type"] in types, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert_clean(response.text, f"the {status} response")


def json_post(client: Any, path: str, body: bytes) -> Any:
    return client.post(path, content=body, headers={"content-type": "application/json"})


def test_server_requests_with_phi(client: Any, debug_logs: pytest.LogCaptureFixture,
                                  recwarn: pytest.WarningsRecorder) -> None:
    ok = client.post("/v1/code", json={"text": phi_note()})
    assert ok.status_code == 200 and ok.json()["codes"]
    batch_ok = client.post("/v1/code/batch", json={"notes": [{"id": "a", "text": phi_note()}]})
    assert batch_ok.status_code == 200

    def streamed() -> Iterator[bytes]:
        yield b'{"text": "' + MARKER.encode()
        for _ in range(LIMIT // 5000 + 2):
            yield b" chest pain" * 500
        yield b'"}'

    errors = [
        # over the body limit, declared and streamed
        (client.post("/v1/code", json={"text": phi_note() * (LIMIT // 100)}),
         413, "request_too_large"),
        (client.post("/v1/code", content=streamed(),
                     headers={"content-type": "application/json"}), 413, "request_too_large"),
        # over the coder's note limit, under the body limit
        (client.post("/v1/code", json={"text": oversize_note()}), 422, "input_error"),
        (client.post("/v1/code/batch", json={"notes": [{"text": oversize_note()}]}),
         422, "input_error"),
        # malformed JSON, not UTF-8, lone surrogates
        (json_post(client, "/v1/code", f'{{"text": "{phi_note()}"'.encode()),
         422, "validation_error"),
        (json_post(client, "/v1/code", f'{{"text": "{phi_note()}", }}'.encode()),
         422, "validation_error"),
        (json_post(client, "/v1/code", b'{"text": "caf\xe9 ' + MARKER.encode() + b'"}'),
         400, ("bad_request", "http_error")),
        (json_post(client, "/v1/code", f'{{"text": "\\ud800 {phi_note()}"}}'.encode()),
         422, "validation_error"),
        # wrong types and values next to the note
        (client.post("/v1/code", json={"text": [phi_note()]}), 422, "validation_error"),
        (client.post("/v1/code", json={"text": {"note": phi_note()}}), 422, "validation_error"),
        (client.post("/v1/code", json=[phi_note()]), 422, "validation_error"),
        (client.post("/v1/code", json={"text": phi_note(), "top_k": "many"}),
         422, "validation_error"),
        (client.post("/v1/code", json={"text": phi_note(), "setting": "emergency"}),
         422, "validation_error"),
        (client.post("/v1/code", json={"text": phi_note(), "systems": ["nosuch"]}),
         422, "input_error"),
        (client.post("/v1/code/batch", json={"notes": [{"text": phi_note()}, {"text": 7}]}),
         422, "validation_error"),
        (client.post("/v1/code/batch", json={"notes": phi_note()}), 422, "validation_error"),
        (client.post("/v1/code", content=phi_note().encode(),
                     headers={"content-type": "text/plain"}), 415, "unsupported_media_type"),
    ]
    for response, status, error_types in errors:
        assert_clean_error(response, status, error_types)
    logged = log_text(debug_logs)
    assert "POST /v1/code 413" in logged and "POST /v1/code 200" in logged
    assert_logs_clean(debug_logs, "server")
    assert_warnings_clean(recwarn, "server")


@pytest.mark.parametrize("failure", [
    lambda text: RuntimeError(f"the pipeline broke on {text!r}"),
    lambda text: KeyError(text),
    lambda text: UnicodeEncodeError("utf-8", text, 0, 1, "surrogates not allowed"),
    lambda text: MedcodeError(f"Unexpected state after {text}"),
], ids=["RuntimeError", "KeyError", "UnicodeEncodeError", "MedcodeError"])
def test_server_internal_errors_echo_nothing(failure: Any, tmp_path: Path,
                                             debug_logs: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    pytest.importorskip("httpx", reason="httpx is needed for FastAPI's test client")
    from fastapi.testclient import TestClient

    from medcode_nlp.serve import create_app

    class Broken:
        def __call__(self, text: str, **options: Any) -> Any:
            raise failure(text)

        def pipe(self, texts: Any, **options: Any) -> Any:
            raise failure(" ".join(texts))

    app = create_app(coder_factory=lambda: Broken(), db_path=tmp_path / "r.sqlite3",
                     preload=False)
    with TestClient(app, base_url="http://127.0.0.1:8000",
                    raise_server_exceptions=False) as broken:
        single = broken.post("/v1/code", json={"text": phi_note()})
        several = broken.post("/v1/code/batch", json={"notes": [{"text": phi_note()}]})
    assert_clean_error(single, 500, "internal_error")
    assert_clean_error(several, 500, "internal_error")
    name = type(failure("x")).__name__
    assert f"{name} in" in log_text(debug_logs)  # the log names the error type...
    assert_logs_clean(debug_logs, f"server {name}")  # ...never the note
