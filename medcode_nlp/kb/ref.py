"""How a saved pipeline names its knowledge base: by version and checksum manifest, not path.

A knowledge base is a few hundred megabytes in the user cache, so a saved pipeline does not
carry it. The components that use it (``medcode_linker``, ``medcode_dictionary_matcher``,
``medcode_coder``) write a reference instead (``kb.json``): the code-set versions and counts of
its ``manifest.json``, a digest of that content (equal for every build of the same code sets)
and a digest of its ``checksums.sha256`` (this very build). Loading looks for a matching
knowledge base in the configured directory, the default one (``$MEDCODE_KB`` or the user
cache: built there when it is the built-in one and missing) and the other knowledge bases in
the cache; none matching is a numbered error (E019) naming what was expected and found.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import srsly

from medcode_nlp.errors import Errors, IntegrityError
from medcode_nlp.integrity import CHECKSUM_FILE
from medcode_nlp.kb.store import MANIFEST_FILE, default_kb_path

logger = logging.getLogger(__name__)

REF_FILE = "kb.json"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reference_of(path: str | Path) -> dict[str, Any]:
    """The reference of the knowledge base directory at ``path`` (reads two small files)."""
    path = Path(path)
    manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    systems = manifest.get("systems", {})
    checksums = path / CHECKSUM_FILE
    return {
        "name": path.name,
        "builtin": _same(path, default_kb_path()),
        "kb_format": manifest.get("kb_format"),
        "versions": {s: info.get("version") for s, info in sorted(systems.items())},
        "content": _digest(json.dumps({"kb_format": manifest.get("kb_format"),
                                       "systems": systems}, sort_keys=True).encode("utf-8")),
        "checksums": _digest(checksums.read_bytes()) if checksums.is_file() else None,
    }


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def matches(ref: dict[str, Any], found: dict[str, Any]) -> bool:
    """Whether ``found`` holds the code sets ``ref`` was built with."""
    return found.get("kb_format") == ref.get("kb_format") and found["content"] == ref["content"]


def _candidates(hint: str | Path | None) -> list[Path]:
    """Directories to look in: the configured one, the default one, the rest of the cache."""
    default = default_kb_path()
    paths = [Path(hint)] if hint else []
    paths.append(default)
    if default.parent.is_dir():
        paths.extend(sorted(p for p in default.parent.iterdir()
                            if p.is_dir() and not p.name.startswith(".")))
    unique: list[Path] = []
    for path in paths:
        if not any(_same(path, seen) for seen in unique):
            unique.append(path)
    return unique


def find_kb(ref: dict[str, Any], hint: str | Path | None = None,
            component: str = "component") -> str | None:
    """The knowledge base matching ``ref``: None for the default one, else its directory.

    Builds the built-in knowledge base when ``ref`` names it and it is missing; raises an
    IntegrityError (E019) when no knowledge base matches.
    """
    found: list[str] = []
    for path in _candidates(hint):
        if not (path / MANIFEST_FILE).is_file():
            continue
        try:
            other = reference_of(path)
        except (OSError, ValueError):
            continue
        if matches(ref, other):
            if other.get("checksums") != ref.get("checksums"):
                logger.info("knowledge base %s: same code sets as the saved one, another build",
                            path)
            return None if _same(path, default_kb_path()) else str(path)
        found.append(f"{path.name}: content {other['content'][:12]}")
    default = default_kb_path()
    if ref.get("builtin") and ref.get("name") == default.name and not (
            default / MANIFEST_FILE).is_file():
        from medcode_nlp.kb.cache import shared_kb

        shared_kb(None)  # builds the built-in knowledge base (once)
        if matches(ref, reference_of(default)):
            return None
        found.append(f"{default.name} (just built): content "
                     f"{reference_of(default)['content'][:12]}")
    raise IntegrityError(Errors.E019.format(
        component=component, name=ref.get("name"),
        versions=", ".join(f"{s} {v}" for s, v in (ref.get("versions") or {}).items()),
        content=str(ref.get("content"))[:12],
        found="; ".join(found) or f"no knowledge base in {default.parent}"))


def write_reference(directory: Path, kb_path: str | Path | None) -> None:
    """Write ``kb.json`` for the knowledge base at ``kb_path`` (None: the default one)."""
    from medcode_nlp.kb.cache import shared_kb

    kb = shared_kb(kb_path)  # built if it is the default one and missing
    srsly.write_json(directory / REF_FILE, reference_of(kb.path))


def read_reference(directory: Path, hint: str | Path | None, component: str
                   ) -> tuple[bool, str | None]:
    """(whether ``directory`` has a reference, the knowledge base path it resolves to)."""
    if not (directory / REF_FILE).is_file():
        return False, None
    return True, find_kb(srsly.read_json(directory / REF_FILE), hint, component)
