"""Data worked out from a knowledge base and the shipped resources, kept on disk.

Some tables take seconds to work out at load (the dictionary matcher's terms read every
alias of the knowledge base) but depend only on files that do not change between runs. They
are written once, as msgpack, to ``$MEDCODE_CACHE_DIR`` (default: ``derived`` in the user
cache) under a key made of everything they are worked out from: the knowledge base's
checksum manifest, the resource files and the source of the modules that compute them. Any
change gives a new key, hence a new file; a file that cannot be read or whose digest does
not match is worked out again. Writing is atomic and optional (a read-only cache only costs
the time).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Bumped when the file layout below changes.
DERIVED_FORMAT = 1


def cache_dir() -> Path:
    """Where derived tables are kept: ``$MEDCODE_CACHE_DIR``, else the user cache."""
    override = os.environ.get("MEDCODE_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("medcode_nlp")) / "derived"


def file_digest(path: Path | None) -> str:
    """SHA-256 of a file's bytes ("absent" when there is no file)."""
    if path is None or not Path(path).is_file():
        return "absent"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def source_digest(modules: Iterable[str]) -> str:
    """SHA-256 over the source files of ``modules`` (the code that computes a table)."""
    digest = hashlib.sha256()
    for name in modules:
        spec = find_spec(name)
        origin = spec.origin if spec is not None else None
        digest.update(name.encode())
        digest.update(file_digest(Path(origin)).encode() if origin else b"?")
    return digest.hexdigest()


def cached(name: str, key_parts: Iterable[str], build: Callable[[], Any]) -> Any:
    """The table ``build()`` makes, read from the derived cache when it holds this key."""
    import srsly

    key = hashlib.sha256("\n".join([str(DERIVED_FORMAT), name, *key_parts]).encode())
    path = cache_dir() / f"{name}-{key.hexdigest()[:32]}.msgpack"
    if path.is_file():
        try:
            stored = srsly.msgpack_loads(path.read_bytes())
            payload = stored["data"]
            if hashlib.sha256(payload).hexdigest() == stored["sha256"]:
                return srsly.msgpack_loads(payload)
            logger.warning("derived table %s failed its digest: working it out again", path)
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("derived table %s unreadable (%s): working it out again", path,
                           type(error).__name__)
    data = build()
    payload = srsly.msgpack_dumps(data)
    _write(path, srsly.msgpack_dumps({"sha256": hashlib.sha256(payload).hexdigest(),
                                      "data": payload}))
    return data


def cached_arrays(name: str, key_parts: Iterable[str],
                  build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Like :func:`cached` for a table of numpy arrays: kept as an uncompressed ``.npz`` (its
    SHA-256 in a ``.sha256`` sidecar) and memory-mapped, so every process shares its pages."""
    import numpy as np

    from medcode_nlp.kb.npz_mmap import load_npz

    key = hashlib.sha256("\n".join([str(DERIVED_FORMAT), name, *key_parts]).encode())
    path = cache_dir() / f"{name}-{key.hexdigest()[:32]}.npz"
    sidecar = path.with_name(path.name + ".sha256")
    if path.is_file() and sidecar.is_file():
        try:
            if file_digest(path) == sidecar.read_text(encoding="utf-8").strip():
                return load_npz(path)
            logger.warning("derived table %s failed its digest: working it out again", path)
        except (OSError, ValueError) as error:
            logger.warning("derived table %s unreadable (%s): working it out again", path,
                           type(error).__name__)
    arrays = build()
    handle = io.BytesIO()
    np.savez(handle, **arrays)
    blob = handle.getvalue()
    _write(path, blob)
    _write(sidecar, hashlib.sha256(blob).hexdigest().encode())
    return load_npz(path) if path.is_file() else arrays


def _write(path: Path, blob: bytes) -> None:
    """Write atomically; a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        with os.fdopen(handle, "wb") as out:
            out.write(blob)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as error:
        logger.info("derived table not cached at %s (%s)", path, type(error).__name__)
