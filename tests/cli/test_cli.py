"""The ``medcode`` console script, run as a user would (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_medcode

ROOT = Path(__file__).resolve().parents[2]


def medcode_subprocess(*args: str) -> subprocess.CompletedProcess[bytes]:
    """The console script in its own process (checks exit codes and stderr as users see them)."""
    return subprocess.run(
        [sys.executable, "-m", "medcode_nlp.cli", *args],
        capture_output=True, cwd=ROOT, timeout=600,
    )


class Done:
    def __init__(self, returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def medcode(monkeypatch, capsysbinary):
    """``medcode`` run in this process (fast: the loaded resources are reused)."""
    def run(*args: str, stdin: bytes | None = None) -> Done:
        monkeypatch.chdir(ROOT)
        code = run_medcode(monkeypatch, *args, stdin=stdin or b"")
        out = capsysbinary.readouterr()
        return Done(code, out.out, out.err)

    return run


@pytest.fixture(scope="module", autouse=True)
def _kb_ready(kb):
    return kb


def test_cli_suggest_json_schema(medcode):
    done = medcode("suggest", "examples/ed_visit.txt", "--format", "json", "--ner", "dictionary",
                   "--top", "5")
    assert done.returncode == 0, done.stderr.decode()
    data = json.loads(done.stdout)
    assert data["schema_version"] == "1" and len(data["codes"]) <= 5
    text = (ROOT / "examples" / "ed_visit.txt").read_text()
    for code in data["codes"]:
        for ev in code["evidence"]:
            assert text[ev["start"] : ev["end"]] == ev["text"]


def test_cli_suggest_table_from_stdin(medcode):
    done = medcode("suggest", "-", "--ner", "dictionary", "--min-score", "0",
                   stdin=b"Acute cystitis.")
    assert done.returncode == 0, done.stderr.decode()
    assert b"N30.0" in done.stdout


def test_cli_suggest_html_is_self_contained(medcode, tmp_path):
    out = tmp_path / "review.html"
    done = medcode("suggest", "examples/office_visit.txt", "--format", "html", "--ner",
                   "dictionary", "-o", str(out))
    assert done.returncode == 0, done.stderr.decode()
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "<mark" in page and "http" not in page


@pytest.mark.parametrize(
    ("payload", "message"),
    [(b"\xff\xfe\xfa bad bytes", b"not valid UTF-8"), (b"abc\x00def", b"looks binary")],
)
@pytest.mark.slow
def test_cli_suggest_bad_file_exit_2_without_traceback(tmp_path, payload, message):
    bad = tmp_path / "note.txt"
    bad.write_bytes(payload)
    done = medcode_subprocess("suggest", str(bad), "--ner", "dictionary")
    assert done.returncode == 2
    assert message in done.stderr and str(bad).encode() in done.stderr
    assert b"Traceback" not in done.stderr


@pytest.mark.slow
def test_cli_suggest_missing_file():
    done = medcode_subprocess("suggest", "no/such/note.txt")
    assert done.returncode == 2 and b"does not exist" in done.stderr
    assert b"Traceback" not in done.stderr


def test_cli_search_stdin_jsonl(medcode):
    done = medcode("search", "-", "--systems", "icd10cm", "--top", "3",
                   stdin=b"urinary tract infection\nCHF\n")
    assert done.returncode == 0, done.stderr.decode()
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["query"] for line in lines] == ["urinary tract infection", "CHF"]
    assert lines[0]["candidates"][0]["code"] == "N39.0"
    assert set(lines[0]["candidates"][0]) == {"code", "system", "description", "score",
                                              "billable"}


def test_cli_lookup_shows_notes(medcode):
    done = medcode("lookup", "E11.9", "--json")
    assert done.returncode == 0
    (entry,) = json.loads(done.stdout)
    assert entry["description"] == "Type 2 diabetes mellitus without complications"
    assert "E11" in entry["ancestors"]


def test_cli_lookup_unknown_code(medcode):
    done = medcode("lookup", "ZZZ.99")
    assert done.returncode == 2 and b"not found" in done.stderr


def test_cli_kb_info(medcode):
    done = medcode("kb", "info")
    assert done.returncode == 0
    info = json.loads(done.stdout)
    assert info["systems"]["icd10cm"]["billable"] == 74719


def test_cli_unknown_system_is_clear(medcode):
    done = medcode("search", "fever", "--systems", "icd9")
    assert done.returncode == 2 and b"Unknown code system" in done.stderr
