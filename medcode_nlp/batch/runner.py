"""Batch coding of many notes: resumable local runs (joblib) and Dask clusters.

``run_batch`` reads notes from JSONL, CSV or Parquet (an id field and a text field) and writes
exactly one record per input record, in input order, to JSONL or Parquet::

    {"id": <the input's id>, "row": <1-based position>, "result": <CodingResult dict>}
    {"id": <the input's id or null>, "row": <1-based position>, "error": "<the problem>"}

Work is split into chunks of ``chunk_size`` records. Every finished chunk is committed to a
checkpoint directory beside the output (``<output>.checkpoint/``) as a part file written
atomically (temporary file, fsync, ``os.replace``). A manifest keyed by the input file's path,
size and modification time and by the run's options says which job the parts belong to, so
running the same command again after a crash (even SIGKILL) codes only the chunks that are
missing. The final output is assembled from the parts at the end, again atomically, and the
checkpoint directory is then removed.

Error messages name the record (id and row) and the problem; they never quote note text.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from medcode_nlp.about import __version__
from medcode_nlp.errors import Errors, InputError, IntegrityError, MedcodeError

if TYPE_CHECKING:  # pragma: no cover
    import dask.bag
    import dask.dataframe
    import pandas as pd

    from medcode_nlp.coder import Coder

logger = logging.getLogger(__name__)

INPUT_FORMATS = ("jsonl", "csv", "parquet")
OUTPUT_FORMATS = ("jsonl", "parquet")
_INPUT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
                   ".pq": "parquet"}
_OUTPUT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
                    ".pq": "parquet"}
DEFAULT_CHUNK_SIZE = 128
CHECKPOINT_FORMAT = 1
PIPE_BATCH_SIZE = 32

#: One input record on its way to a worker: (row, id, text or None, error or None).
Record = tuple[int, Any, str | None, str | None]


# --------------------------------------------------------------------------- summary
@dataclass
class BatchSummary:
    """What a batch run did. Rates count only the notes coded by this run."""

    input_path: str
    output_path: str
    input_format: str
    output_format: str
    records: int = 0
    coded: int = 0
    errors: int = 0
    chunks: int = 0
    resumed_chunks: int = 0
    workers: int = 1
    scheduler: str | None = None
    seconds: float = 0.0
    coded_this_run: int = 0
    characters_this_run: int = 0
    notes_per_second: float = 0.0
    characters_per_second: float = 0.0
    warm_characters_per_second: float = 0.0
    cpu_seconds: float = 0.0
    worker_peak_rss_mb: dict[str, float] = field(default_factory=dict)
    worker_load_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-serialisable)."""
        return asdict(self)


# ------------------------------------------------------------------ coders per process
_coders: dict[str, Coder] = {}
_coders_lock = threading.Lock()
_coding_lock = threading.Lock()
_load_seconds: dict[str, float] = {}


def _options_key(load_options: Mapping[str, Any]) -> str:
    """Canonical form of load options (None means the default, as in ``load``)."""
    given = {k: v for k, v in load_options.items() if v is not None}
    return json.dumps(given, sort_keys=True, default=str)


def get_coder(load_options: Mapping[str, Any] | None = None) -> Coder:
    """The coder for ``load_options``, loaded once per process (and reused by every task)."""
    options = dict(load_options or {})
    key = _options_key(options)
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
    key = _options_key(dict(load_options or {}))
    with _coders_lock:
        _coders[key] = coder
        _load_seconds.setdefault(key, 0.0)


def loaded_coders() -> dict[str, float]:
    """Options key -> load seconds of every coder loaded in this process (for tests, stats)."""
    return dict(_load_seconds)


def _peak_rss_mb() -> float:
    try:
        import resource
    except ImportError:  # pragma: no cover  (Windows)
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


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


# -------------------------------------------------------------------------- coding
def code_records(coder: Coder, records: Sequence[Record],
                 on_note: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Output records (``id``, ``row``, ``result`` or ``error``) for validated records.

    Valid notes go through ``coder.pipe`` together; if that fails, each note is retried on
    its own so that one bad note only costs its own record. ``on_note`` is called once per
    valid note as it is coded (progress).
    """
    todo = [i for i, (_, _, text, error) in enumerate(records) if error is None]
    texts = [records[i][2] for i in todo]
    results: list[Any] = []
    tick = on_note or (lambda: None)
    with _coding_lock:  # one coder per process; threads of a Dask worker take turns
        try:
            for result in coder.pipe(texts, batch_size=PIPE_BATCH_SIZE):  # type: ignore[arg-type]
                results.append(result)
                tick()
        except Exception as chunk_failure:  # noqa: BLE001  (fall back to one at a time)
            logger.warning("coding %d notes together failed (%s); coding them one by one",
                           len(todo), type(chunk_failure).__name__)
            ticked = len(results)
            results = []
            for n, i in enumerate(todo):
                if n >= ticked:
                    tick()
                try:
                    results.append(coder(records[i][2]))  # type: ignore[arg-type]
                except MedcodeError as failure:  # numbered messages never quote the note
                    results.append(failure)
                except Exception as failure:  # noqa: BLE001
                    results.append(RuntimeError(f"coding failed ({type(failure).__name__})"))
    by_position = dict(zip(todo, results, strict=True))
    out: list[dict[str, Any]] = []
    for i, (row, record_id, _, error) in enumerate(records):
        if error is not None:
            out.append({"id": record_id, "row": row, "error": error})
            continue
        result = by_position[i]
        if isinstance(result, Exception):
            out.append({"id": record_id, "row": row,
                        "error": record_error(record_id, row, str(result).rstrip("."))})
        else:
            out.append({"id": record_id, "row": row, "result": result.to_dict()})
    return out


class _Payload:
    """Records shipped to a Dask worker (an opaque object, so Dask never looks inside)."""

    __slots__ = ("records",)

    def __init__(self, records: list[Record]) -> None:
        self.records = records


def code_chunk(
    chunk: int, records: list[Record] | _Payload, load_options: Mapping[str, Any],
    on_note: Callable[[], None] | None = None,
) -> tuple[int, list[str], dict[str, Any]]:
    """Worker task: code one chunk; returns (chunk, JSON lines, stats). ``on_note``: called
    per coded note (progress, in this process only)."""
    if isinstance(records, _Payload):
        records = records.records
    key = _options_key(load_options)
    coder = get_coder(load_options)
    cpu = time.process_time()
    out = code_records(coder, records, on_note)
    lines = [json.dumps(rec, ensure_ascii=False) for rec in out]
    ids = {_id_kind(r[1]) for r in records}
    stats = {
        "records": len(records),
        "errors": sum(1 for r in out if "error" in r),
        "characters": sum(len(r[2]) for r in records if r[3] is None and r[2] is not None),
        "id_kinds": sorted(ids),
        "pid": os.getpid(),
        "host": _hostname(),
        "peak_rss_mb": _peak_rss_mb(),
        "load_seconds": round(_load_seconds.get(key, 0.0), 3),
        "cpu_seconds": round(time.process_time() - cpu, 4),
    }
    return chunk, lines, stats


@functools.cache
def _hostname() -> str:
    import socket

    return socket.gethostname()


def _id_kind(value: Any) -> str:
    if value is None:
        return "null"
    return "int" if isinstance(value, int) and -(2**63) <= value < 2**63 else "str"


# ------------------------------------------------------------------------- readers
def _format_of(path: Path, given: str | None, table: dict[str, str], allowed: tuple[str, ...],
               name: str) -> str:
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


class _Source:
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


def _chunks(records: Iterable[Record], size: int) -> Iterator[tuple[int, list[Record]]]:
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


# -------------------------------------------------------------------- atomic files
def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform/filesystem allows it
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path in ``target``'s directory that replaces ``target`` on success."""
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        with temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
        _fsync_dir(target.parent)
    finally:
        if temp.exists():
            temp.unlink()


def _write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as temp:
        temp.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------- checkpoints
class _Checkpoint:
    """Committed chunks of one job: ``manifest.json`` + ``part-NNNNNNNN.jsonl`` files.

    A part file's first line is a header (chunk number, record count, statistics); the
    following lines are the chunk's output records, in input order.
    """

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        self.directory = directory
        self.manifest = manifest
        self._lock_handle: IO[str] | None = None

    def open(self) -> None:
        """Lock the directory, and start over when it holds another job's parts."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock()
        for stale in self.directory.glob(".*.tmp"):  # left by a killed run
            stale.unlink(missing_ok=True)
        path = self.directory / "manifest.json"
        current: Any = None
        if path.is_file():
            with contextlib.suppress(ValueError, OSError):
                current = json.loads(path.read_text(encoding="utf-8"))
        if current != self.manifest:
            if current is not None:
                logger.warning("checkpoint %s belongs to a different input or different "
                               "options; starting over", self.directory)
            for part in self.directory.glob("part-*.jsonl"):
                part.unlink()
            _write_text_atomic(path, json.dumps(self.manifest, indent=2, sort_keys=True))

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover  (Windows: no lock)
            return
        handle = (self.directory / "lock").open("w")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise MedcodeError(
                f"Another batch run is writing {self.directory}; wait for it to finish."
            ) from None
        self._lock_handle = handle

    def close(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def part(self, chunk: int) -> Path:
        return self.directory / f"part-{chunk:08d}.jsonl"

    def header(self, chunk: int) -> dict[str, Any] | None:
        """The header of a committed chunk, or None."""
        try:
            with self.part(chunk).open("r", encoding="utf-8") as handle:
                header = json.loads(handle.readline())
        except (OSError, ValueError):
            return None
        if not isinstance(header, dict) or header.get("chunk") != chunk:
            return None
        return header

    def commit(self, chunk: int, lines: list[str], stats: dict[str, Any]) -> dict[str, Any]:
        header = {"chunk": chunk, **{k: stats[k] for k in
                                     ("records", "errors", "characters", "id_kinds")}}
        if len(lines) != header["records"]:
            raise IntegrityError(f"Chunk {chunk} returned {len(lines)} records for "
                                 f"{header['records']} inputs.")
        with atomic_path(self.part(chunk)) as temp, temp.open("w", encoding="utf-8") as out:
            out.write(json.dumps(header) + "\n")
            for line in lines:
                out.write(line + "\n")
        return header

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def _model_fingerprint(load_options: Mapping[str, Any]) -> Any:
    """What identifies the shipped model the workers will load (changes invalidate parts)."""
    if load_options.get("ner") is not None:
        return None
    from medcode_nlp.nlp.pipeline import default_ner_path

    meta = default_ner_path() / "meta.json"
    if not meta.is_file():
        return "no-shipped-ner"
    stat = meta.stat()
    return {"meta_size": stat.st_size, "meta_mtime_ns": stat.st_mtime_ns}


# ------------------------------------------------------------------------- assembly
def _iter_part(path: Path, expected: int) -> Iterator[str]:
    with path.open("r", encoding="utf-8") as handle:
        handle.readline()
        count = 0
        for line in handle:
            count += 1
            yield line
    if count != expected:
        raise IntegrityError(f"Checkpoint part {path} holds {count} records, expected "
                             f"{expected}; delete it and run again.")


def _assemble_jsonl(parts: list[tuple[Path, dict[str, Any]]], temp: Path) -> None:
    with temp.open("w", encoding="utf-8") as out:
        for path, header in parts:
            for line in _iter_part(path, header["records"]):
                out.write(line)


def _assemble_code_rows(parts: list[tuple[Path, dict[str, Any]]], temp: Path,
                        hcc_year: int | None, row_group: int = 10_000) -> None:
    """Parquet with one row per suggested code: the columns of
    :func:`medcode_nlp.to_dataframe`, then ``row`` and ``error``. A note without codes (or
    that failed) keeps one row with no code, so every input row is accounted for."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from medcode_nlp.batch.dataframe import COLUMNS, arrow_table, code_rows
    from medcode_nlp.schema import CodingResult

    schema = arrow_table([]).schema.append(pa.field("row", pa.int64())).append(
        pa.field("error", pa.string()))
    rows: list[dict[str, Any]] = []
    with pq.ParquetWriter(temp, schema, compression="zstd") as writer:
        for path, header in parts:
            for line in _iter_part(path, header["records"]):
                record = json.loads(line)
                note_id = None if record["id"] is None else str(record["id"])
                result = record.get("result")
                found = ([] if result is None else
                         code_rows(CodingResult.from_dict(result), note_id, hcc_year))
                if not found:
                    found = [{**dict.fromkeys(COLUMNS), "note_id": note_id}]
                rows.extend({**r, "row": record["row"], "error": record.get("error")}
                            for r in found)
                if len(rows) >= row_group:
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                    rows.clear()
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))


def _assemble_parquet(parts: list[tuple[Path, dict[str, Any]]], temp: Path,
                      row_group: int = 10_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = {kind for _, header in parts for kind in header["id_kinds"]}
    id_type = pa.int64() if kinds and kinds <= {"int", "null"} else pa.string()
    schema = pa.schema([("id", id_type), ("row", pa.int64()), ("result", pa.string()),
                        ("error", pa.string())])
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}

    def flush(writer: Any) -> None:
        if columns["row"]:
            writer.write_table(pa.table(columns, schema=schema))
            for values in columns.values():
                values.clear()

    with pq.ParquetWriter(temp, schema, compression="zstd") as writer:
        for path, header in parts:
            for line in _iter_part(path, header["records"]):
                record = json.loads(line)
                record_id = record["id"]
                if id_type == pa.string() and record_id is not None:
                    record_id = str(record_id)
                columns["id"].append(record_id)
                columns["row"].append(record["row"])
                result = record.get("result")
                columns["result"].append(
                    None if result is None else json.dumps(result, ensure_ascii=False))
                columns["error"].append(record.get("error"))
                if len(columns["row"]) >= row_group:
                    flush(writer)
        flush(writer)


# ---------------------------------------------------------------------------- runner
def run_batch(
    input_path: str | Path,
    output_path: str | Path,
    *,
    id_field: str = "id",
    text_field: str = "text",
    input_format: str | None = None,
    output_format: str | None = None,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    load_options: Mapping[str, Any] | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    keep_checkpoint: bool = False,
    rows: str = "notes",
    hcc_year: int | None = 2026,
) -> BatchSummary:
    """Code every note of ``input_path`` into ``output_path``; resumable after a crash.

    ``load_options`` are passed to :func:`medcode_nlp.load` in every worker (``ner``, ``kb``,
    ``setting``, ``systems``, ``top_k``, ``min_score``, ``max_chars``, ...). ``workers``:
    processes on this machine (joblib/loky; ``-1`` = one per core). ``scheduler``: address of
    a Dask distributed scheduler (``tcp://host:8786``) to run the chunks on its workers.
    ``rows="codes"`` (Parquet only) writes one row per suggested code with the columns of
    :func:`medcode_nlp.to_dataframe` (``hcc`` for payment year ``hcc_year``).
    """
    started = time.perf_counter()
    source_path = Path(input_path)
    target = Path(output_path)
    if not source_path.is_file():
        raise InputError(Errors.E010.format(path=source_path))
    if target.resolve() == source_path.resolve():
        raise InputError(Errors.E014.format(name="output", detail="it is the input file"))
    if not target.parent.is_dir():
        raise InputError(Errors.E010.format(path=target.parent))
    in_fmt = _format_of(source_path, input_format, _INPUT_SUFFIXES, INPUT_FORMATS,
                        "input_format")
    out_fmt = _format_of(target, output_format, _OUTPUT_SUFFIXES, OUTPUT_FORMATS,
                         "output_format")
    if chunk_size < 1:
        raise InputError(Errors.E014.format(name="chunk_size", detail="must be at least 1"))
    if rows not in ("notes", "codes"):
        raise InputError(Errors.E011.format(value=rows, name="rows", allowed="notes, codes"))
    if rows == "codes" and out_fmt != "parquet":
        raise InputError(Errors.E014.format(name="rows", detail="one row per code is "
                                            "written to Parquet output only"))
    if workers == -1 or workers == 0:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise InputError(Errors.E014.format(name="workers", detail="must be at least 1 or -1"))
    options = dict(load_options or {})
    if options.get("max_chars") is not None:
        max_chars = int(options["max_chars"])
    else:
        from medcode_nlp.coder import DEFAULT_MAX_CHARS

        max_chars = DEFAULT_MAX_CHARS
    source = _Source(source_path, in_fmt, id_field, text_field, max_chars, chunk_size)

    stat = source_path.stat()
    manifest = {
        "format": CHECKPOINT_FORMAT,
        "medcode_nlp": __version__,
        "input": {"path": str(source_path.resolve()), "size": stat.st_size,
                  "mtime_ns": stat.st_mtime_ns, "format": in_fmt},
        "options": {"id_field": id_field, "text_field": text_field, "chunk_size": chunk_size,
                    "load_options": json.loads(_options_key(options)), "max_chars": max_chars},
        "model": _model_fingerprint(options),
    }
    checkpoint = _Checkpoint(target.parent / f"{target.name}.checkpoint", manifest)
    checkpoint.open()
    summary = BatchSummary(str(source_path), str(target), in_fmt, out_fmt,
                           workers=1 if scheduler else workers, scheduler=scheduler)
    try:
        total = source.count()
        n_chunks = math.ceil(total / chunk_size)
        headers: dict[int, dict[str, Any]] = {}
        done_records = 0
        for chunk in range(n_chunks):
            header = checkpoint.header(chunk)
            expected = min(chunk_size, total - chunk * chunk_size)
            if header is not None and header.get("records") == expected:
                headers[chunk] = header
                done_records += expected
        summary.resumed_chunks = len(headers)
        if summary.resumed_chunks:
            logger.info("resuming: %d of %d chunks already committed", len(headers), n_chunks)

        def pending() -> Iterator[tuple[int, list[Record]]]:
            for chunk, records in _chunks(source.records(), chunk_size):
                if chunk not in headers:
                    yield chunk, records

        bar = _progress_bar(total, done_records, progress)
        run = _RunStats(bar)

        def commit(chunk: int, lines: list[str], stats: dict[str, Any]) -> None:
            headers[chunk] = checkpoint.commit(chunk, lines, stats)
            run.add(stats)

        try:
            if n_chunks > len(headers):
                if scheduler:
                    _run_dask(scheduler, pending(), options, commit)
                elif workers > 1:
                    _run_joblib(workers, pending(), options, commit)
                else:
                    for chunk, records in pending():
                        commit(*code_chunk(chunk, records, options, run.note))
        finally:
            bar.close()
        if progress:
            run.final_line(total)
        missing = [c for c in range(n_chunks) if c not in headers]
        if missing:
            raise IntegrityError(f"Chunks {missing[:5]} were not committed; run again.")
        parts = [(checkpoint.part(c), headers[c]) for c in range(n_chunks)]
        with atomic_path(target) as temp:
            if out_fmt == "jsonl":
                _assemble_jsonl(parts, temp)
            elif rows == "codes":
                _assemble_code_rows(parts, temp, hcc_year)
            else:
                _assemble_parquet(parts, temp)
        summary.records = total
        summary.errors = sum(h["errors"] for h in headers.values())
        summary.coded = total - summary.errors
        summary.chunks = n_chunks
        run.fill(summary)
    except BaseException:
        checkpoint.close()
        raise
    if keep_checkpoint:
        checkpoint.close()
    else:
        checkpoint.remove()
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


class _RunStats:
    """Throughput and per-worker figures of the chunks coded by this run."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.started = time.perf_counter()
        self.last = self.started
        self.first: tuple[float, int] | None = None  # (time, characters) at the first commit
        self.characters = 0
        self.coded = 0
        self.cpu = 0.0
        self.rss: dict[str, float] = {}
        self.loads: dict[str, float] = {}
        self.noted = 0  # notes of the current chunk already shown on the bar

    def note(self) -> None:
        """One note of the chunk being coded in this process is done."""
        self.noted += 1
        self.bar.update(1)

    def final_line(self, total: int) -> None:
        """The one line left on stderr when the bar closes."""
        seconds = time.perf_counter() - self.started
        rate = f", {self.coded / seconds:.1f} notes/s" if self.coded and seconds > 0 else ""
        print(f"coded {total} notes ({self.coded} this run{rate}) in {seconds:.1f} s",
              file=sys.stderr, flush=True)

    def add(self, stats: dict[str, Any]) -> None:
        self.last = time.perf_counter()
        worker = f"{stats['host']}:{stats['pid']}"
        self.rss[worker] = max(self.rss.get(worker, 0.0), stats["peak_rss_mb"])
        if stats["load_seconds"]:
            self.loads[worker] = stats["load_seconds"]
        self.characters += stats["characters"]
        self.coded += stats["records"] - stats["errors"]
        self.cpu += stats["cpu_seconds"]
        if self.first is None:
            self.first = (self.last, self.characters)
        self.bar.update(stats["records"] - self.noted)  # errors, and chunks coded elsewhere
        self.noted = 0
        elapsed = max(self.last - self.started, 1e-9)
        self.bar.set_postfix_str(f"{self.characters / elapsed:,.0f} chars/s", refresh=False)

    def fill(self, summary: BatchSummary) -> None:
        seconds = max(self.last - self.started, 1e-9)
        summary.coded_this_run = self.coded
        summary.characters_this_run = self.characters
        summary.cpu_seconds = round(self.cpu, 3)
        if self.coded:
            summary.notes_per_second = round(self.coded / seconds, 2)
            summary.characters_per_second = round(self.characters / seconds, 1)
        if self.first is not None and self.last > self.first[0]:
            warm = (self.characters - self.first[1]) / (self.last - self.first[0])
            summary.warm_characters_per_second = round(warm, 1)
        summary.worker_peak_rss_mb = self.rss
        summary.worker_load_seconds = self.loads


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    # leave=False: the bar is erased at the end and _RunStats.final_line says the outcome once.
    return tqdm(total=total, initial=initial, unit="note", disable=not enabled, leave=False,
                dynamic_ncols=True, smoothing=0.05, file=sys.stderr, desc="coding")


CommitFn = Callable[[int, list[str], dict[str, Any]], None]


def _run_joblib(workers: int, chunks: Iterator[tuple[int, list[Record]]],
                options: dict[str, Any], commit: CommitFn) -> None:
    from joblib import Parallel, delayed

    if options.get("kb") is None:
        from medcode_nlp.kb.store import MANIFEST_FILE, default_kb_path, load_kb

        if not (default_kb_path() / MANIFEST_FILE).is_file():
            load_kb(None).close()  # build the default knowledge base once, not per worker
    parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered",
                        pre_dispatch="2*n_jobs", batch_size=1)
    for result in parallel(delayed(code_chunk)(chunk, records, options)
                           for chunk, records in chunks):
        commit(*result)


def _run_dask(address: str, chunks: Iterator[tuple[int, list[Record]]],
              options: dict[str, Any], commit: CommitFn) -> None:
    from distributed import Client, as_completed

    with Client(address, set_as_default=False) as client:
        threads = sum(client.nthreads().values()) or 1
        limit = 2 * threads
        # This client is not the default one: the iterator must be given its loop.
        running = as_completed(loop=client.loop)
        for chunk, records in chunks:
            running.add(client.submit(code_chunk, chunk, _Payload(records), options,
                                      pure=False, key=f"medcode-chunk-{chunk}-{os.getpid()}"
                                                      f"-{time.monotonic_ns()}"))
            while running.count() >= limit:
                commit(*next(running).result())
        for future in running:
            commit(*future.result())


# ------------------------------------------------------------------------ Dask API
def _code_items(items: Iterable[Any], *, id_field: str, text_field: str,
                load_options: dict[str, Any]) -> list[dict[str, Any]]:
    coder = get_coder(load_options)
    max_chars = coder.max_chars
    records: list[Record] = []
    for item in items:
        if isinstance(item, str):
            records.append(check_record(None, None, item, id_field=id_field,
                                        text_field=text_field, max_chars=max_chars,
                                        require_id=False))
        elif isinstance(item, Mapping):
            records.append(check_record(None, item.get(id_field), item.get(text_field),
                                        id_field=id_field, text_field=text_field,
                                        max_chars=max_chars, has_id=id_field in item,
                                        has_text=text_field in item, require_id=False))
        else:
            detail = f"item has type {type(item).__name__}; expected a string or a mapping"
            records.append((0, None, None, record_error(None, None, detail)))
    out = code_records(coder, records)
    for record in out:
        del record["row"]
    return out


def code_bag(bag: dask.bag.Bag, *, id_field: str = "id", text_field: str = "text",
             **load_options: Any) -> dask.bag.Bag:
    """Code a Dask bag of notes (strings, or mappings with an id and a text field).

    Each item becomes ``{"id", "result": CodingResult dict}`` or ``{"id", "error"}`` (``id``
    is None for string items). Runs with ``map_partitions``; every worker process loads the
    coder once (``load_options`` as for :func:`medcode_nlp.load`).
    """
    task = functools.partial(_code_items, id_field=id_field, text_field=text_field,
                             load_options=dict(load_options))
    return bag.map_partitions(task)


def _code_frame(frame: pd.DataFrame, *, text_column: str, id_column: str,
                load_options: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    texts = frame[text_column].tolist()
    ids = frame[id_column].tolist()
    items = [{id_column: _plain(i), text_column: None if _is_missing(t) else t}
             for i, t in zip(ids, texts, strict=True)]
    out = _code_items(items, id_field=id_column, text_field=text_column,
                      load_options=load_options)
    result = pd.DataFrame(index=frame.index)
    result[id_column] = frame[id_column]
    result["result"] = pd.Series(
        [json.dumps(r["result"], ensure_ascii=False) if "result" in r else None for r in out],
        index=frame.index, dtype=object)
    result["error"] = pd.Series([r.get("error") for r in out], index=frame.index, dtype=object)
    return result


def _is_missing(value: Any) -> bool:
    """None, NaN, pandas.NA and NaT (how a dataframe marks a missing cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def _plain(value: Any) -> Any:
    """Numpy scalars as Python ones; missing values as None."""
    if _is_missing(value):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str) else value


def code_dataframe(ddf: dask.dataframe.DataFrame, text_column: str = "text",
                   id_column: str = "id", **load_options: Any) -> dask.dataframe.DataFrame:
    """Code the notes of a Dask dataframe; returns ``[id_column, "result", "error"]``.

    ``result`` holds the CodingResult as a JSON string (None when the row has an error),
    ``error`` the problem (None when coded). The index is kept. Runs with
    ``map_partitions``; every worker process loads the coder once.
    """
    import pandas as pd

    meta = pd.DataFrame({
        id_column: pd.Series([], dtype=ddf[id_column].dtype),
        "result": pd.Series([], dtype=object),
        "error": pd.Series([], dtype=object),
    })
    task = functools.partial(_code_frame, text_column=text_column, id_column=id_column,
                             load_options=dict(load_options))
    return ddf.map_partitions(task, meta=meta)
