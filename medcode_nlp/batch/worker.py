"""What a batch worker does with a chunk: code its records (one bad note costs only its own record) and report its statistics."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from medcode_nlp.coder_cache import coding_lock, get_coder, loaded_coders, options_key
from medcode_nlp.errors import MedcodeError

if TYPE_CHECKING:  # pragma: no cover

    from medcode_nlp.coder import Coder
from medcode_nlp.batch.sources import (
    Record,
    record_error,
)

logger = logging.getLogger(__name__)
#: Notes per ``coder.pipe`` batch inside a chunk.
PIPE_BATCH_SIZE = 32


def _peak_rss_mb() -> float:
    try:
        import resource
    except ImportError:  # pragma: no cover  (Windows)
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


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
    with coding_lock:  # one coder per process; threads of a Dask worker take turns
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


class WorkerPayload:
    """Records shipped to a Dask worker (an opaque object, so Dask never looks inside)."""

    __slots__ = ("records",)

    def __init__(self, records: list[Record]) -> None:
        self.records = records


def code_chunk(
    chunk: int, records: list[Record] | WorkerPayload, load_options: Mapping[str, Any],
    on_note: Callable[[], None] | None = None,
) -> tuple[int, list[str], dict[str, Any]]:
    """Worker task: code one chunk; returns (chunk, JSON lines, stats). ``on_note``: called
    per coded note (progress, in this process only)."""
    if isinstance(records, WorkerPayload):
        records = records.records
    key = options_key(load_options)
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
        "load_seconds": round(loaded_coders().get(key, 0.0), 3),
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
