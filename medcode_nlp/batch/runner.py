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

import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode_nlp.about import __version__
from medcode_nlp.coder_cache import options_key
from medcode_nlp.errors import Errors, InputError, IntegrityError

if TYPE_CHECKING:  # pragma: no cover

    pass
from medcode_nlp.batch.checkpoint import (
    CHECKPOINT_FORMAT,
    Checkpoint,
    assemble_code_rows,
    assemble_jsonl,
    assemble_parquet,
    atomic_path,
    model_fingerprint,
)
from medcode_nlp.batch.sources import (
    INPUT_FORMATS,
    INPUT_SUFFIXES,
    OUTPUT_FORMATS,
    OUTPUT_SUFFIXES,
    Record,
    RecordSource,
    format_of,
    numbered_chunks,
)
from medcode_nlp.batch.worker import WorkerPayload, code_chunk

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 128


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
    in_fmt = format_of(source_path, input_format, INPUT_SUFFIXES, INPUT_FORMATS,
                       "input_format")
    out_fmt = format_of(target, output_format, OUTPUT_SUFFIXES, OUTPUT_FORMATS,
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
    source = RecordSource(source_path, in_fmt, id_field, text_field, max_chars, chunk_size)

    stat = source_path.stat()
    manifest = {
        "format": CHECKPOINT_FORMAT,
        "medcode_nlp": __version__,
        "input": {"path": str(source_path.resolve()), "size": stat.st_size,
                  "mtime_ns": stat.st_mtime_ns, "format": in_fmt},
        "options": {"id_field": id_field, "text_field": text_field, "chunk_size": chunk_size,
                    "load_options": json.loads(options_key(options)), "max_chars": max_chars},
        "model": model_fingerprint(options),
    }
    checkpoint = Checkpoint(target.parent / f"{target.name}.checkpoint", manifest)
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
            for chunk, records in numbered_chunks(source.records(), chunk_size):
                if chunk not in headers:
                    yield chunk, records

        bar = progress_bar(total, done_records, progress)
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
                assemble_jsonl(parts, temp)
            elif rows == "codes":
                assemble_code_rows(parts, temp, hcc_year)
            else:
                assemble_parquet(parts, temp)
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


def progress_bar(total: int, initial: int, enabled: bool) -> Any:
    """The per-note progress bar on stderr (a no-op one when not ``enabled``)."""
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
            running.add(client.submit(code_chunk, chunk, WorkerPayload(records), options,
                                      pure=False, key=f"medcode-chunk-{chunk}-{os.getpid()}"
                                                      f"-{time.monotonic_ns()}"))
            while running.count() >= limit:
                commit(*next(running).result())
        for future in running:
            commit(*future.result())


