"""Behaviour lock: the coder's output on examples/*.txt equals the recorded fixture.

The fixture (``tests/golden/examples_output.json``) is written by ``scripts/record_golden.py``:
codes, scores to 4 decimals and evidence offsets of every example note in both care settings.
A refactor must pass this test unchanged; a change meant to alter coding re-records it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "golden" / "examples_output.json"


def _recorder():
    spec = importlib.util.spec_from_file_location("record_golden", ROOT / "scripts" / "record_golden.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def current(default_coder):
    return _recorder().record(default_coder)


GOLDEN = json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("run", sorted(GOLDEN))
def test_golden_output(current, run):
    assert current.get(run) == GOLDEN[run], f"{run}: coding output changed"


def test_golden_covers_every_example():
    names = {run.split(":")[0] for run in GOLDEN}
    assert names == {p.name for p in (ROOT / "examples").glob("*.txt")}
