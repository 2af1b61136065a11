"""Checks and notices the ``medcode`` command line gives before it loads the model.

Everything here writes to standard error (results go to standard output) and never shows
note text.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from medcode_nlp.errors import Errors, InputError


#: ``medcode kb add`` kind that brings each code system in, when it is not the system's name.
def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_kb_missing(kb: Path | None) -> Path | None:
    """The default knowledge-base directory when it is about to be built, else None."""
    if kb is not None:
        return None
    from medcode_nlp.kb.store import MANIFEST_FILE, default_kb_path

    path = default_kb_path()
    return None if (path / MANIFEST_FILE).is_file() else path


@contextmanager
def first_run_notice(kb: Path | None) -> Iterator[None]:
    """Say on stderr that the knowledge base is being built (first run), and when it is done."""
    path = default_kb_missing(kb)
    if path is None:
        yield
        return
    _say(f"medcode: first run: building the code-set knowledge base in {path} "
         "(once; about a minute)...")
    started = time.perf_counter()
    yield
    _say(f"medcode: knowledge base ready ({time.perf_counter() - started:.0f} s)")


def ensure_kb(kb: Path | None) -> None:
    """Build the default knowledge base now (with the first-run notice) if it is missing."""
    from medcode_nlp.kb.cache import shared_kb

    with first_run_notice(kb):
        shared_kb(kb)


def check_systems(systems: Sequence[str] | None, kb: Path | None) -> None:
    """Refuse, before the model loads, code systems the knowledge base lacks; for a system
    ``medcode kb add`` can bring in, say how."""
    if not systems:
        return
    from medcode_nlp.codesets.registry import code_source_kind
    from medcode_nlp.codesets.registry import systems as known_systems
    from medcode_nlp.kb.cache import shared_kb

    ensure_kb(kb)
    knowledge_base = shared_kb(kb)
    known = ", ".join(knowledge_base.systems)
    for system in systems:
        if system in knowledge_base.systems:
            continue
        if system not in known_systems():
            raise InputError(Errors.E005.format(system=system, known=known))
        kind = code_source_kind(system)
        where = "" if kb is None else f" --kb {kb}"
        command = (f"medcode kb add {kind} FILE{where}" if kind is not None
                   else f"medcode kb build{where}")
        raise InputError(Errors.E017.format(system=system, path=knowledge_base.path, known=known,
                                            command=command))


def check_note(text: str, source: str, max_chars: int) -> None:
    """Refuse a note over ``max_chars`` (before the model loads); warn about an empty one."""
    if len(text) > max_chars:
        raise InputError(Errors.E018.format(path=source, length=len(text), limit=max_chars))
    if not text.strip():
        _say(f"warning: note {source} is empty: no codes to suggest")
