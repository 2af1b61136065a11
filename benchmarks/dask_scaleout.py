"""Scale-out: the same notes on a local Dask cluster against the joblib run, and a projection.

    python -m benchmarks.dask_scaleout [--notes 1000] [--workers 2] [--core-hour-usd 0.05]

Codes the first ``--notes`` CodiEsp background notes (by file name) with ``medcode batch``
twice, back to back: ``--workers N`` (joblib, one process per worker) and ``--scheduler`` on
a Dask cluster started here as separate processes (one ``dask scheduler`` and N
``dask worker --nworkers 1 --nthreads 1``, all on 127.0.0.1). Both are end to end: the
command's wall clock, worker start-up and model loading included (the Dask workers are
started before the clock, the coder loads inside the first task). The ratio says whether
Dask costs more than 15% over joblib.

From the measured coding CPU seconds per note and per character, peak RSS per worker and
load time, it projects 1M notes of the same mean length on 1, 2, 8 and 32 workers (dedicated
cores), and the cost per 1M characters at ``--core-hour-usd`` per core-hour (an assumption,
stated in the result). Writes ``benchmarks/results/dask_scaleout.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.batch_throughput import batch_run, child_env, load_notes
from benchmarks.common import RESULTS, parser, shared_data, write_json

DEFAULT_DATA = shared_data("codiesp", "background", "text_files_en")
HOST = "127.0.0.1"
PROJECTED_NOTES = 1_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_cluster(workers: int, folder: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A scheduler and ``workers`` single-threaded worker processes on 127.0.0.1."""
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or "dask"
    port = free_port()
    address = f"tcp://{HOST}:{port}"
    env = child_env()
    log = (folder / "cluster.log").open("ab")
    processes = [subprocess.Popen(
        [dask, "scheduler", "--host", HOST, "--port", str(port), "--no-dashboard"],
        stdout=log, stderr=log, env=env, cwd=folder)]
    time.sleep(2)
    for _ in range(workers):
        processes.append(subprocess.Popen(
            [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", HOST,
             "--no-dashboard", "--memory-limit", "0"],
            stdout=log, stderr=log, env=env, cwd=folder))
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, processes


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def dask_run(source: Path, folder: Path, address: str, characters: int,
             notes: int) -> dict[str, Any]:
    out = folder / "coded-dask.jsonl"
    command = [sys.executable, "-m", "medcode_nlp.cli", "batch", str(source), str(out),
               "--scheduler", address, "--chunk-size", "32", "--no-progress"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"medcode batch on Dask failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    assert out.read_text(encoding="utf-8").count("\n") == notes
    return {"wall_seconds": round(wall, 2), "characters_per_second": round(characters / wall, 1),
            "coding_cpu_seconds": summary["cpu_seconds"], "errors": summary["errors"],
            "peak_rss_mb_per_worker": sorted(summary["worker_peak_rss_mb"].values()),
            "load_seconds_per_worker": sorted(summary["worker_load_seconds"].values())}


def projection(cpu_per_note: float, mean_characters: float, load_seconds: float,
               rss_mb: float, core_hour_usd: float) -> dict[str, Any]:
    """1M notes on N dedicated workers, from measured per-note costs."""
    rows = {}
    for workers in (1, 2, 8, 32):
        seconds = load_seconds + PROJECTED_NOTES * cpu_per_note / workers
        rows[str(workers)] = {"hours": round(seconds / 3600, 2),
                              "memory_gb": round(workers * rss_mb / 1024, 1)}
    core_seconds_per_million_chars = cpu_per_note / mean_characters * 1e6
    return {"notes": PROJECTED_NOTES, "mean_characters": mean_characters,
            "coding_cpu_seconds_per_note": round(cpu_per_note, 4),
            "workers": rows,
            "core_seconds_per_million_characters": round(core_seconds_per_million_chars, 1),
            "core_hour_usd_assumed": core_hour_usd,
            "usd_per_million_characters": round(
                core_seconds_per_million_chars / 3600 * core_hour_usd, 4)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser(__doc__)
    args.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args.add_argument("--notes", type=int, default=1000)
    args.add_argument("--workers", type=int, default=2)
    args.add_argument("--core-hour-usd", type=float, default=0.05)
    args.add_argument("--output", type=Path, default=RESULTS / "dask_scaleout.json")
    options = args.parse_args(argv)
    notes = load_notes(options.data, options.notes)
    characters = sum(len(t) for _, t in notes)
    report: dict[str, Any] = {"notes": len(notes), "characters": characters,
                              "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="medcode-dask-") as tmp:
        folder = Path(tmp)
        source = folder / "notes.jsonl"
        with source.open("w", encoding="utf-8") as handle:
            for note_id, text in notes:
                handle.write(json.dumps({"id": note_id, "text": text}) + "\n")
        report["joblib"] = batch_run(source, folder, options.workers, None, 32, characters,
                                     len(notes))
        print("joblib:", report["joblib"], file=sys.stderr)
        address, processes = start_cluster(options.workers, folder)
        try:
            report["dask"] = dask_run(source, folder, address, characters, len(notes))
        finally:
            stop(processes)
        print("dask:", report["dask"], file=sys.stderr)
    report["dask_over_joblib_wall"] = round(
        report["dask"]["wall_seconds"] / report["joblib"]["wall_seconds"], 3)
    report["within_15_percent"] = report["dask_over_joblib_wall"] <= 1.15
    run = report["joblib"]
    report["projection"] = projection(
        run["coding_cpu_seconds"] / len(notes), characters / len(notes),
        max(run["load_seconds_per_worker"]), max(run["peak_rss_mb_per_worker"]),
        options.core_hour_usd)
    report["load_average_after"] = os.getloadavg()
    write_json(options.output, report)
    print(json.dumps({k: v for k, v in report.items() if k not in ("joblib", "dask")},
                     indent=2))
    return report


if __name__ == "__main__":
    main()
