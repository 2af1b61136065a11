"""Resumable runs: atomic files, the checkpoint of committed chunks, assembly of the output."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from medcode_nlp.errors import IntegrityError, MedcodeError

if TYPE_CHECKING:  # pragma: no cover

    pass

logger = logging.getLogger(__name__)


CHECKPOINT_FORMAT = 1
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
class Checkpoint:
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


def model_fingerprint(load_options: Mapping[str, Any]) -> Any:
    """What identifies the shipped model the workers will load (changes invalidate parts)."""
    if load_options.get("ner") is not None:
        return None
    from medcode_nlp.paths import models_dir

    meta = models_dir() / "ner" / "meta.json"
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


def assemble_jsonl(parts: list[tuple[Path, dict[str, Any]]], temp: Path) -> None:
    """Concatenate the committed JSONL parts into ``temp``, in chunk order."""
    with temp.open("w", encoding="utf-8") as out:
        for path, header in parts:
            for line in _iter_part(path, header["records"]):
                out.write(line)


def assemble_code_rows(parts: list[tuple[Path, dict[str, Any]]], temp: Path,
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


def assemble_parquet(parts: list[tuple[Path, dict[str, Any]]], temp: Path,
                     row_group: int = 10_000) -> None:
    """Write the committed parts into one Parquet file ``temp`` (id, row, result, error)."""
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
