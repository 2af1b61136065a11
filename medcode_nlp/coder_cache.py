"""One coder per process and load options, shared by batch workers and the server.

A process loads each coder once (:func:`get_coder`); ``coding_lock`` lets the threads of one
process take turns with it. Importing this module loads nothing heavy.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from medcode_nlp.coder import Coder

_coders: dict[str, Coder] = {}
_coders_lock = threading.Lock()
#: Held while a shared coder codes: threads of one process take turns.
coding_lock = threading.Lock()
_load_seconds: dict[str, float] = {}


def options_key(load_options: Mapping[str, Any]) -> str:
    """Canonical form of load options (None means the default, as in ``load``)."""
    given = {k: v for k, v in load_options.items() if v is not None}
    return json.dumps(given, sort_keys=True, default=str)


def get_coder(load_options: Mapping[str, Any] | None = None) -> Coder:
    """The coder for ``load_options``, loaded once per process (and reused by every task)."""
    options = dict(load_options or {})
    key = options_key(options)
    coder = _coders.get(key)
    if coder is not None:
        return coder
    with _coders_lock:
        coder = _coders.get(key)
        if coder is None:
            import medcode_nlp

            started = time.perf_counter()
            coder = medcode_nlp.load(**options)
            _load_seconds[key] = time.perf_counter() - started
            _coders[key] = coder
    return coder


def set_coder(coder: Coder, load_options: Mapping[str, Any] | None = None) -> None:
    """Use an already-loaded coder for ``load_options`` in this process (no second load)."""
    key = options_key(dict(load_options or {}))
    with _coders_lock:
        _coders[key] = coder
        _load_seconds.setdefault(key, 0.0)


def forget_coder(load_options: Mapping[str, Any] | None = None) -> None:
    """Drop this process's coder for ``load_options`` (the next :func:`get_coder` loads it)."""
    key = options_key(dict(load_options or {}))
    with _coders_lock:
        _coders.pop(key, None)
        _load_seconds.pop(key, None)


def loaded_coders() -> dict[str, float]:
    """Options key -> load seconds of every coder loaded in this process (for tests, stats)."""
    return dict(_load_seconds)
