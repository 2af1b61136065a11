"""Shared test fixtures: paths to the public data sets beside the project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medcode_nlp.paths import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = shared_data_dir()
FIXTURES = Path(__file__).resolve().parent / "fixtures"


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
