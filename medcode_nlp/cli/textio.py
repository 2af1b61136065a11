"""Reading notes from files and stdin with clear errors for non-text input."""

from __future__ import annotations

import sys
from pathlib import Path

from medcode_nlp.errors import Errors, InputError


def decode_note(data: bytes, source: str) -> str:
    """UTF-8 text of a note; binary or non-UTF-8 input raises InputError naming ``source``."""
    if b"\x00" in data:
        raise InputError(Errors.E002.format(path=source))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        position = error.start
    # Raised outside the handler: the decode error (which holds the note) is not its context.
    raise InputError(Errors.E001.format(path=source, position=position))


def read_note(path: str | Path) -> str:
    """A note from a file, or from standard input when ``path`` is ``-``."""
    if str(path) == "-":
        return decode_note(sys.stdin.buffer.read(), "<stdin>")
    file = Path(path)
    if not file.is_file():
        raise InputError(Errors.E010.format(path=file))
    return decode_note(file.read_bytes(), str(file))
