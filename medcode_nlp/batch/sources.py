"""Batch input: reading notes from JSONL, CSV and Parquet, record validation, chunks."""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from medcode_nlp.errors import Errors, InputError

if TYPE_CHECKING:  # pragma: no cover

    pass



INPUT_FORMATS = ("jsonl", "csv", "parquet")
OUTPUT_FORMATS = ("jsonl", "parquet")
INPUT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
                  ".pq": "parquet"}
OUTPUT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
                   ".pq": "parquet"}

#: One input record on its way to a worker: (row, id, text or None, error or None).
Record = tuple[int, Any, str | None, str | None]
# --------------------------------------------------------------------- validation
def _describe(record_id: Any, row: int | None) -> str:
    if record_id is not None:
        shown = repr(record_id)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"{shown} (row {row})" if row is not None else shown
    return f"at row {row}" if row is not None else "without id"


def record_error(record_id: Any, row: int | None, detail: str) -> str:
    """The error message of an invalid record: names the record and the problem only."""
    return Errors.E015.format(record=_describe(record_id, row), detail=detail)


def _valid_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (undecodable bytes, bad JSON escapes)
        return False
    return True


def check_record(
    row: int | None,
    record_id: Any,
    text: Any,
    *,
    id_field: str,
    text_field: str,
    max_chars: int,
    has_id: bool = True,
    has_text: bool = True,
    require_id: bool = True,
) -> Record:
    """Validate one input record: ``(row, id, text, None)`` or ``(row, id, None, error)``."""
    if record_id is not None and (
        isinstance(record_id, bool) or not isinstance(record_id, str | int)
    ):
        detail = (f"field {id_field!r} has type {type(record_id).__name__}; "
                  "expected a string or an integer")
        return (row or 0, None, None, record_error(None, row, detail))
    if isinstance(record_id, str) and not _valid_unicode(record_id):
        detail = f"field {id_field!r} is not valid UTF-8 text"
        return (row or 0, None, None, record_error(None, row, detail))
    if require_id and (not has_id or record_id is None):
        return (row or 0, None, None, record_error(None, row, f"missing field {id_field!r}"))

    def bad(detail: str) -> Record:
        return (row or 0, record_id, None, record_error(record_id, row, detail))

    if not has_text or text is None:
        return bad(f"missing field {text_field!r}")
    if not isinstance(text, str):
        return bad(f"field {text_field!r} has type {type(text).__name__}; expected a string")
    if not _valid_unicode(text):
        return bad(f"field {text_field!r} is not valid UTF-8 text")
    if not text.strip():
        return bad(f"field {text_field!r} is empty")
    if len(text) > max_chars:
        return bad(Errors.E003.format(length=len(text), limit=max_chars).rstrip("."))
    return (row or 0, record_id, text, None)


# ------------------------------------------------------------------------- readers
def format_of(path: Path, given: str | None, table: dict[str, str], allowed: tuple[str, ...],
              name: str) -> str:
    """The input or output format: ``given``, or guessed from the suffix of ``path``."""
    if given is not None:
        fmt = given.lower().lstrip(".")
        if fmt not in allowed:
            raise InputError(Errors.E011.format(value=given, name=name, allowed=allowed))
        return fmt
    guessed = table.get(path.suffix.lower())
    if guessed is None:
        raise InputError(Errors.E014.format(
            name=name, detail=f"cannot tell the format of {path.name!r} from its extension; "
                              f"use one of {sorted(table)} or pass the format"))
    return guessed


class RecordSource:
    """Records of an input file, read lazily; ``count()`` is exact."""

    def __init__(self, path: Path, fmt: str, id_field: str, text_field: str, max_chars: int,
                 batch_rows: int) -> None:
        self.path = path
        self.fmt = fmt
        self.id_field = id_field
        self.text_field = text_field
        self.max_chars = max_chars
        self.batch_rows = max(1, batch_rows)
        self._parquet_handle: Any = None
        if fmt == "csv":
            self._csv_columns()
        elif fmt == "parquet":
            self._parquet_file()

    def _check(self, row: int, record_id: Any, text: Any, has_id: bool, has_text: bool
               ) -> Record:
        return check_record(row, record_id, text, id_field=self.id_field,
                            text_field=self.text_field, max_chars=self.max_chars,
                            has_id=has_id, has_text=has_text)

    def count(self) -> int:
        """Number of records (what :meth:`records` yields)."""
        if self.fmt == "jsonl":
            with self.path.open("rb") as handle:
                return sum(1 for line in handle if line.strip())
        if self.fmt == "csv":
            return sum(1 for _ in self._csv_rows())
        return int(self._parquet_file().metadata.num_rows)

    def records(self) -> Iterator[Record]:
        """Validated records in file order."""
        if self.fmt == "jsonl":
            return self._jsonl()
        if self.fmt == "csv":
            return self._csv()
        return self._parquet()

    # JSONL: one JSON object per line; blank lines are skipped; row = line number.
    def _jsonl(self) -> Iterator[Record]:
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                line = raw.strip()
                if not line:
                    continue
                if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]
                try:
                    obj = json.loads(line.decode("utf-8"))
                except UnicodeDecodeError as error:
                    detail = f"the line is not valid UTF-8 (byte {error.start})"
                    yield (number, None, None, record_error(None, number, detail))
                    continue
                except (ValueError, RecursionError) as error:
                    where = (f" at column {error.colno}" if isinstance(error, json.JSONDecodeError)
                             else "")
                    detail = f"the line is not valid JSON{where}"
                    yield (number, None, None, record_error(None, number, detail))
                    continue
                if not isinstance(obj, dict):
                    detail = f"the line is a JSON {type(obj).__name__}, not an object"
                    yield (number, None, None, record_error(None, number, detail))
                    continue
                yield self._check(number, obj.get(self.id_field), obj.get(self.text_field),
                                  self.id_field in obj, self.text_field in obj)

    # CSV: a header row naming the columns; blank lines are skipped; row = record number.
    def _open_csv(self) -> IO[str]:
        return self.path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")

    def _csv_columns(self) -> tuple[int, int]:
        with self._open_csv() as handle:
            try:
                header = next(csv.reader(handle), None)
            except csv.Error as error:
                raise InputError(Errors.E009.format(path=self.path, fmt="CSV",
                                                    detail=f"bad header row ({error})")) from None
        if not header:
            raise InputError(Errors.E009.format(path=self.path, fmt="CSV", detail="no header row"))
        missing = [name for name in (self.id_field, self.text_field) if name not in header]
        if missing:
            raise InputError(Errors.E009.format(
                path=self.path, fmt="CSV",
                detail=f"no column {missing[0]!r} in the header ({_header_cells(header)})"))
        return header.index(self.id_field), header.index(self.text_field)

    def _csv_rows(self) -> Iterator[list[str] | str]:
        """Data rows as lists, or an error detail string for a row that does not parse."""
        _raise_csv_field_limit()
        with self._open_csv() as handle:
            reader = csv.reader(handle)
            next(reader, None)  # header
            while True:
                line = reader.line_num
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    yield f"the row could not be parsed as CSV ({error})"
                    if reader.line_num == line:  # no progress: stop rather than loop
                        return
                    continue
                if row:  # csv yields [] for a blank line: not a record
                    yield row

    def _csv(self) -> Iterator[Record]:
        id_col, text_col = self._csv_columns()
        for number, row in enumerate(self._csv_rows(), 1):
            if isinstance(row, str):
                yield (number, None, None, record_error(None, number, row))
                continue
            has_id, has_text = len(row) > id_col, len(row) > text_col
            yield self._check(number, row[id_col] if has_id else None,
                              row[text_col] if has_text else None, has_id, has_text)

    # Parquet: columns read in record batches; nulls are missing fields.
    def _parquet_file(self) -> Any:
        import pyarrow.parquet as pq

        if self._parquet_handle is not None:
            return self._parquet_handle
        try:
            parquet = pq.ParquetFile(self.path)
        except Exception as error:  # noqa: BLE001  (pyarrow raises several types)
            raise InputError(Errors.E009.format(path=self.path, fmt="Parquet",
                                                detail=type(error).__name__)) from None
        names = parquet.schema_arrow.names
        missing = [name for name in (self.id_field, self.text_field) if name not in names]
        if missing:
            raise InputError(Errors.E009.format(
                path=self.path, fmt="Parquet",
                detail=f"no column {missing[0]!r} (columns: "
                       f"{', '.join(repr(n) for n in names[:20])})"))
        self._parquet_handle = parquet
        return parquet

    def _parquet(self) -> Iterator[Record]:
        parquet = self._parquet_file()
        columns = list(dict.fromkeys([self.id_field, self.text_field]))
        number = 0
        for batch in parquet.iter_batches(batch_size=self.batch_rows, columns=columns):
            ids = batch.column(self.id_field).to_pylist()
            texts = batch.column(self.text_field).to_pylist()
            for record_id, text in zip(ids, texts, strict=True):
                number += 1
                yield self._check(number, record_id, text, True, True)


_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")


def _header_cells(header: Sequence[str]) -> str:
    """The header row for an error message: listed only when every cell looks like a column
    name. A file without a header row has a record there, which must not be quoted."""
    if all(_COLUMN_NAME.fullmatch(cell) for cell in header):
        return f"columns: {', '.join(repr(cell) for cell in header[:20])}"
    return (f"{len(header)} cells, not shown as some do not look like column names; "
            "is the header row missing?")


def _raise_csv_field_limit() -> None:
    limit = sys.maxsize
    while True:  # the largest value the C long accepts on this platform
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


def numbered_chunks(records: Iterable[Record], size: int) -> Iterator[tuple[int, list[Record]]]:
    """``records`` in chunks of ``size``, each with its number (0, 1, ...)."""
    chunk: list[Record] = []
    index = 0
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield index, chunk
            index += 1
            chunk = []
    if chunk:
        yield index, chunk
