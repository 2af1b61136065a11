"""``to_bytes``/``from_bytes`` of components whose state is a directory (``to_disk``)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import srsly


def directory_to_bytes(write: Callable[[Path], None]) -> bytes:
    """The files ``write(directory)`` writes, as one msgpack map of relative path -> bytes."""
    with tempfile.TemporaryDirectory(prefix="medcode-") as tmp:
        root = Path(tmp)
        write(root)
        files = {p.relative_to(root).as_posix(): p.read_bytes()
                 for p in sorted(root.rglob("*")) if p.is_file()}
    return bytes(srsly.msgpack_dumps(files))


def directory_from_bytes(data: bytes, read: Callable[[Path], object]) -> None:
    """Unpack :func:`directory_to_bytes` output into a temporary directory and ``read`` it."""
    files = srsly.msgpack_loads(data)
    with tempfile.TemporaryDirectory(prefix="medcode-") as tmp:
        root = Path(tmp).resolve()
        for relative, content in files.items():
            target = root / relative
            if root not in target.resolve().parents:
                continue  # never write outside the temporary directory
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        read(root)
