"""What every benchmark shares: where the checkout, its results and the public data sets are,
the argument parser, and writing results as JSON.

Run a benchmark from the checkout as ``python -m benchmarks.NAME`` (no ``sys.path`` edits);
the public data sets come from ``$MEDCODE_SHARED_DATA`` or ``../shared/data``
(:func:`medcode_nlp.paths.shared_data_dir`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from medcode_nlp.paths import shared_data_dir

#: The checkout the benchmarks belong to.
ROOT = Path(__file__).resolve().parents[1]
#: Committed results (one JSON file per benchmark, quoted by docs/benchmarks.md).
RESULTS = ROOT / "benchmarks" / "results"


def shared_data(*parts: str) -> Path:
    """A path inside the public data sets (it may not exist: the caller says what is missing)."""
    return shared_data_dir().joinpath(*parts)


def parser(description: str | None) -> argparse.ArgumentParser:
    """The argument parser of a benchmark, its module docstring's first line as description."""
    first = (description or "").strip().splitlines()
    return argparse.ArgumentParser(description=first[0] if first else None)


def write_json(path: str | Path, data: Any, indent: int = 2) -> Path:
    """Write ``data`` as JSON (parent folders made, newline at the end); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=indent) + "\n", encoding="utf-8")
    return target
