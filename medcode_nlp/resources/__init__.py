"""Data files packaged with medcode_nlp (lexicon, section and context rules), and the reader
of a rules file that a user may replace with their own (:func:`read_json`)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from medcode_nlp.errors import Errors, InputError


def read_json(path: str | Path | None, packaged: str) -> Any:
    """JSON from a user path or a packaged resource, with numbered errors."""
    if path is None:
        text = resources.files("medcode_nlp.resources").joinpath(packaged).read_text("utf8")
        return json.loads(text)
    file = Path(path)
    if not file.exists():
        raise InputError(Errors.E010.format(path=file))
    try:
        return json.loads(file.read_text("utf8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(Errors.E009.format(path=file, fmt="JSON", detail=exc)) from exc
