"""Shared test fixtures: paths to the public data sets beside the project."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from medcode_nlp.paths import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = shared_data_dir()
FIXTURES = Path(__file__).resolve().parent / "fixtures"


# (clinical history, impression, codes): short notes in the style of radiology reports.
SITE_CASES = [
    ("Cough.", "Normal chest.", ["R05.9"]),
    ("Persistent cough for two weeks.", "No focal pneumonia.", ["R05.9"]),
    ("Cough and congestion.", "Clear lungs.", ["R05.9"]),
    ("Chronic cough.", "Unremarkable chest radiograph.", ["R05.9"]),
    ("Fever.", "Normal chest. No pneumonia.", ["R50.9"]),
    ("Fever for three days.", "Clear lungs without consolidation.", ["R50.9"]),
    ("High fever.", "No acute findings.", ["R50.9"]),
    ("Cough and fever.", "No pneumonia.", ["R05.9", "R50.9"]),
    ("Fever and cough since Monday.", "Normal study.", ["R05.9", "R50.9"]),
    ("Cough and fever.", "Right lower lobe pneumonia.", ["J18.9"]),
    ("Fever, cough.", "Left upper lobe pneumonia.", ["J18.9"]),
    ("Cough.", "Patchy pneumonia at the right base.", ["J18.9"]),
    ("Fever.", "Lingular pneumonia.", ["J18.9"]),
    ("Cough.", "Possible early pneumonia.", ["R05.9"]),
    ("Fever.", "Likely atelectasis, possible pneumonia.", ["R50.9"]),
    ("Urinary tract infection.", "Normal renal ultrasound.", ["N39.0"]),
    ("Febrile urinary tract infection.", "Normal kidneys and bladder.", ["N39.0"]),
    ("UTI.", "Normal renal ultrasound.", ["N39.0"]),
    ("Recurrent urinary tract infections.", "Normal kidneys.", ["N39.0"]),
    ("First urinary tract infection.", "Unremarkable renal ultrasound.", ["N39.0"]),
]


def site_note_text(history: str, impression: str) -> str:
    """A radiology note of the site cases: clinical history and impression."""
    return f"CLINICAL HISTORY: {history}\n\nIMPRESSION: {impression}\n"


def write_jsonl(path: Path, rows: list[Any]) -> None:
    """One JSON document per line (strings are written as they are: malformed lines)."""
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(row if isinstance(row, str) else json.dumps(row))
            handle.write("\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON documents of a JSONL file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def shared_path(*parts: str) -> Path:
    """Path inside ../shared/data, skipping the calling test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"needs {path}: public data set from ../shared/data (see its README.md); "
            "counted as skipped, not passed"
        )
    return path


def run_medcode(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: bytes = b"") -> int:
    """``medcode ARGS`` run in this process (the loaded resources are reused); its exit code.
    Read its output with ``capsys`` / ``capsysbinary``."""
    from medcode_nlp.cli.app import main

    monkeypatch.setattr(sys, "argv", ["medcode", *args])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    try:
        main()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def kb():
    """The built-in knowledge base (built once per machine into the user cache)."""
    from medcode_nlp.kb.store import load_kb

    return load_kb()


@pytest.fixture(scope="session")
def dictionary_coder(kb):
    """A coder using the dictionary matcher and raw similarity (no trained models)."""
    import medcode_nlp

    return medcode_nlp.load(ner="dictionary", ranker="none")


@pytest.fixture(scope="session")
def default_coder(kb):
    """The coder a user gets from ``medcode_nlp.load()``."""
    import medcode_nlp

    return medcode_nlp.load()


def _reads_shared_data(item: pytest.Item) -> bool:
    """Whether the test, or a fixture of its module, asks for a public data set."""
    import inspect

    function = getattr(item, "function", None)
    sources = [function] if function is not None else []
    module = getattr(item, "module", None)
    for name in getattr(item, "fixturenames", ()):
        fixture = getattr(module, name, None)
        if fixture is not None and callable(fixture):
            sources.append(getattr(fixture, "__wrapped__", fixture))
    for source in sources:
        try:
            text = inspect.getsource(source)
        except (OSError, TypeError):
            continue
        if "shared_path(" in text or "SHARED_DATA" in text:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that read ../shared/data ``needs_data`` (they skip when it is absent)."""
    for item in items:
        if _reads_shared_data(item):
            item.add_marker(pytest.mark.needs_data)
        if item.get_closest_marker("cluster") or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)  # processes or a browser: never day-to-day
