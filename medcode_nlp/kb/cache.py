"""Process-wide caches of heavy read-only resources (knowledge base, candidate indexes)."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from medcode_nlp.kb.index import CandidateIndex
from medcode_nlp.kb.store import CodeKnowledgeBase, default_kb_path, load_kb

_lock = threading.Lock()


def resolve_kb_path(path: str | Path | None) -> Path:
    """The knowledge-base directory to use (explicit path or the default one)."""
    return Path(path) if path else default_kb_path()


@lru_cache(maxsize=4)
def _kb(path: Path) -> CodeKnowledgeBase:
    return load_kb(path if path != default_kb_path() else None)


def shared_kb(path: str | Path | None = None) -> CodeKnowledgeBase:
    """The knowledge base at ``path``, loaded once per process."""
    with _lock:
        return _kb(resolve_kb_path(path))


@lru_cache(maxsize=16)
def _index(path: Path, system: str) -> CandidateIndex:
    return CandidateIndex.load(path, system)


def shared_index(path: str | Path | None, system: str) -> CandidateIndex:
    """The candidate index of ``system``, loaded once per process."""
    kb = shared_kb(path)
    with _lock:
        return _index(kb.path, system)


def clear() -> None:
    """Forget cached resources (after a knowledge base was rebuilt)."""
    with _lock:
        _kb.cache_clear()
        _index.cache_clear()
