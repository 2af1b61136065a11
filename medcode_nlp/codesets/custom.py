"""A user's own code list, from CSV or JSON Lines.

CSV: a header row with ``code`` and ``description`` columns, and optionally ``aliases``
(several separated by ``|``), ``billable`` (true/false, yes/no, 1/0) and ``parent``. Any
other column is kept as text in ``CodeEntry.extra``. A tab in the header line makes the
file tab-separated. JSONL: one object per line with the same keys (``aliases`` a list of
strings). Empty lines are skipped. Malformed rows raise :class:`InputError` (E009) naming
the file and line.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from medcode_nlp.codesets.base import Alias, CodeEntry
from medcode_nlp.errors import Errors, InputError

logger = logging.getLogger(__name__)

_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
_KNOWN = {"code", "description", "aliases", "billable", "parent"}


def _fail(path: Path, fmt: str, detail: str) -> InputError:
    return InputError(Errors.E009.format(path=path, fmt=fmt, detail=detail))


def read_utf8_text(path: Path, fmt: str) -> str:
    """Text of a UTF-8 file (BOM allowed); E010 when missing, E009 when binary or not UTF-8."""
    if not path.exists():
        raise InputError(Errors.E010.format(path=path))
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise _fail(path, fmt, f"cannot be read ({error.strerror})") from error
    if b"\x00" in raw:
        raise _fail(path, fmt, "the file is binary (it contains NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        detail = f"line {line}: not valid UTF-8 (byte {error.start}); convert it to UTF-8 first"
        raise _fail(path, fmt, detail) from error


def guess_delimiter(text: str) -> str:
    """Delimiter of a delimited text: the first of tab, comma, semicolon, pipe in line one."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return next((d for d in "\t,;|" if d in first), ",")


def iter_csv_rows(
    path: Path, fmt: str, text: str, delimiter: str
) -> Iterator[tuple[int, list[str]]]:
    """(line number, trimmed cells) of each non-blank row; E009 on a CSV syntax error."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise _fail(path, fmt, f"line {reader.line_num}: {error}") from error
        cells = [cell.strip() for cell in row]
        if any(cells):
            yield reader.line_num, cells


def _billable(value: object) -> bool | None:
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, object]]]:
    fmt = "a custom code list (CSV)"
    header: list[str] | None = None
    delimiter = "\t" if guess_delimiter(text) == "\t" else ","  # "|" separates aliases
    for line, cells in iter_csv_rows(path, fmt, text, delimiter):
        if header is None:
            header = [cell.lower() for cell in cells]
            missing = {"code", "description"} - set(header)
            if missing:
                raise _fail(path, fmt, f"line {line}: header lacks {', '.join(sorted(missing))}")
            continue
        if len(cells) > len(header):
            detail = f"line {line}: {len(cells)} fields, the header has {len(header)}"
            raise _fail(path, fmt, detail)
        record: dict[str, object] = dict(zip(header, cells, strict=False))
        aliases = str(record.get("aliases") or "")
        record["aliases"] = [part.strip() for part in aliases.split("|") if part.strip()]
        yield line, record


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, object]]]:
    fmt = "a custom code list (JSONL)"
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise _fail(path, fmt, f"line {number}: invalid JSON ({error.msg})") from error
        if not isinstance(record, dict):
            raise _fail(path, fmt, f"line {number}: expected a JSON object")
        yield number, record


def _entry(path: Path, fmt: str, line: int, record: Mapping[str, object], system: str) -> CodeEntry:
    code = record.get("code")
    description = record.get("description")
    if not isinstance(code, str | int) or not str(code).strip():
        raise _fail(path, fmt, f"line {line}: missing code")
    code = str(code).strip()
    if not isinstance(description, str) or not description.strip():
        raise _fail(path, fmt, f"line {line}: code {code} has no description")
    description = " ".join(description.split())
    raw_aliases = record.get("aliases") or []
    if not isinstance(raw_aliases, list) or not all(isinstance(a, str) for a in raw_aliases):
        raise _fail(path, fmt, f"line {line}: aliases of {code} must be a list of strings")
    billable = _billable(record.get("billable"))
    if billable is None:
        detail = f"line {line}: billable of {code} must be true/false, got {record['billable']!r}"
        raise _fail(path, fmt, detail)
    aliases = [Alias(description, "description")]
    aliases += [Alias(" ".join(text.split()), "custom") for text in raw_aliases if text.strip()]
    parent = record.get("parent")
    extra = {
        str(key): str(value)
        for key, value in record.items()
        if key not in _KNOWN and value not in (None, "")
    }
    return CodeEntry(
        code=code,
        system=system,
        description=description,
        billable=billable,
        parent=str(parent).strip() if parent not in (None, "") else None,
        aliases=aliases,
        extra=extra,
    )


def load_custom(path: str | os.PathLike[str], system: str = "custom") -> list[CodeEntry]:
    """Read a custom code list (CSV/TSV with a header, or JSONL) into code entries.

    The format follows the extension (``.jsonl``/``.ndjson``/``.json`` = JSON Lines);
    for other extensions a first non-blank character ``{`` means JSON Lines, else CSV.
    Codes are kept as written (trimmed); a code listed twice is an error.
    """
    if not isinstance(system, str) or not system.strip():
        raise InputError(Errors.E014.format(name="system", detail="a non-empty string is needed"))
    path = Path(path)
    suffix = path.suffix.lower()
    is_jsonl = suffix in (".jsonl", ".ndjson", ".json")
    fmt = "a custom code list (JSONL)" if is_jsonl else "a custom code list (CSV)"
    text = read_utf8_text(path, fmt)
    if suffix not in (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt"):
        is_jsonl = text.lstrip().startswith("{")
        fmt = "a custom code list (JSONL)" if is_jsonl else "a custom code list (CSV)"
    rows = _jsonl_rows(path, text) if is_jsonl else _csv_rows(path, text)
    entries: dict[str, CodeEntry] = {}
    for line, record in rows:
        entry = _entry(path, fmt, line, record, system)
        if entry.code in entries:
            raise _fail(path, fmt, f"line {line}: code {entry.code} appears twice")
        entries[entry.code] = entry
    if not entries:
        raise _fail(path, fmt, "no codes found")
    logger.info("loaded %d %s codes from %s", len(entries), system, path.name)
    return list(entries.values())
