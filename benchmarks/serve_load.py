"""Load test of ``medcode serve``: concurrent clients POST the sample notes to /v1/code.

Starts the real server (``medcode serve``, uvicorn) on 127.0.0.1 at a free port, waits for
``/healthz``, warms every worker up, then runs ``--clients`` concurrent clients that each send
``--requests`` requests (the notes in examples/, in turn) and checks every response. Only
ever talks to 127.0.0.1. Run from the project root:

    python -m benchmarks.serve_load [--clients 20] [--requests 500] [--workers 2]

Writes benchmarks/results/serve_load.json (errors, p50/p95/p99 latency, throughput) and
prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import RESULTS, ROOT

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def start_server(port: int, workers: int, db: Path, ner: str | None, log: Path
                 ) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "medcode_nlp.cli", "serve", "--host", HOST,
               "--port", str(port), "--workers", str(workers), "--db", str(db),
               "--log-level", "info"]
    if ner:
        command += ["--ner", ner]
    env = {k: v for k, v in os.environ.items() if k != "MEDCODE_API_TOKEN"}
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would stall the server
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink,
                                start_new_session=True)


def wait_ready(base: str, server: subprocess.Popen[bytes], log: Path, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            error = log.read_text(errors="replace")
            raise SystemExit(f"the server exited with {server.returncode}:\n{error[-2000:]}")
        try:
            response = httpx.get(f"{base}/healthz", timeout=5)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not answer /healthz within {timeout:.0f} s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)  # its own session: the server and its workers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


async def run_load(base: str, notes: list[str], clients: int, requests: int
                   ) -> tuple[list[float], Counter[str], float]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    done = 0
    total = clients * requests
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def one_client(index: int) -> None:
            nonlocal done
            for j in range(requests):
                text = notes[(index + j) % len(notes)]
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/code", json={"text": text})
                    elapsed = time.perf_counter() - started
                    if response.status_code != 200:
                        errors[f"HTTP {response.status_code}"] += 1
                    elif "codes" not in response.json():
                        errors["malformed body"] += 1
                    else:
                        latencies.append(elapsed)
                except httpx.HTTPError as error:
                    errors[type(error).__name__] += 1
                done += 1
                if done % 1000 == 0:
                    print(f"  {done}/{total} requests", file=sys.stderr, flush=True)

        started = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        wall = time.perf_counter() - started
    return latencies, errors, wall


@dataclass
class RunningServer:
    """A started, warmed-up ``medcode serve``; ``restarts`` is filled in once it has stopped."""

    base: str
    process: subprocess.Popen[bytes]
    health: dict[str, Any]
    startup_seconds: float
    restarts: int = 0


@contextmanager
def running_server(args: argparse.Namespace, notes: list[str], warmup_clients: int
                   ) -> Iterator[RunningServer]:
    """Start the server on a free loopback port, warm it up (not measured), stop it after."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        launched = time.perf_counter()
        log = Path(tmp) / "server.log"
        server = start_server(port, args.workers, Path(tmp) / "reviews.sqlite3", args.ner, log)
        running: RunningServer | None = None
        try:
            health = wait_ready(base, server, log, args.startup_timeout)
            running = RunningServer(base, server, health, time.perf_counter() - launched)
            # every worker codes every note a few times and starts the threads it will use
            asyncio.run(run_load(base, notes, warmup_clients, len(notes) * 2))
            yield running
        finally:
            stop_server(server)
            if running is not None:
                running.restarts = log.read_text(errors="replace").count("] died")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=500, help="per client")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="server worker processes (default: CPU count)")
    parser.add_argument("--ner", default=None, help="NER for the server (default: shipped)")
    parser.add_argument("--startup-timeout", type=float, default=600)
    parser.add_argument("--output", type=Path,
                        default=RESULTS / "serve_load.json")
    args = parser.parse_args()

    note_files = sorted((ROOT / "examples").glob("*.txt"))
    notes = [p.read_text(encoding="utf-8") for p in note_files]
    with running_server(args, notes, args.workers * 2) as server:
        print(f"server ready in {server.startup_seconds:.1f} s; {args.clients} clients x "
              f"{args.requests} requests ...", file=sys.stderr, flush=True)
        load_before = os.getloadavg()
        latencies, errors, wall = asyncio.run(
            run_load(server.base, notes, args.clients, args.requests))
        load_after = os.getloadavg()
    startup, health, restarts = server.startup_seconds, server.health, server.restarts

    total = args.clients * args.requests
    ms = [x * 1000 for x in latencies]
    report = {
        "benchmark": "medcode serve: POST /v1/code with the sample notes",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    # Other work on the machine slows the server down: note how busy it was.
                    "load_average_1min_before_after": [round(load_before[0], 2),
                                                       round(load_after[0], 2)]},
        "server": {"host": HOST, "workers": args.workers, "startup_seconds": round(startup, 1),
                   "worker_restarts": restarts,
                   "versions": health.get("versions")},
        "load": {"clients": args.clients, "requests_per_client": args.requests,
                 "requests": total, "notes": [p.name for p in note_files],
                 "mean_note_chars": round(statistics.mean(len(n) for n in notes))},
        "results": {
            "ok": len(latencies),
            "errors": sum(errors.values()),
            "error_kinds": dict(errors),
            "wall_seconds": round(wall, 2),
            "throughput_rps": round(total / wall, 1),
            "latency_ms": {
                "p50": round(percentile(ms, 50), 1) if ms else None,
                "p95": round(percentile(ms, 95), 1) if ms else None,
                "p99": round(percentile(ms, 99), 1) if ms else None,
                "mean": round(statistics.mean(ms), 1) if ms else None,
                "max": round(max(ms), 1) if ms else None,
            },
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    r = report["results"]
    print(f"{total} requests, {r['errors']} errors, {r['throughput_rps']} req/s, "
          f"p50 {r['latency_ms']['p50']} ms, p95 {r['latency_ms']['p95']} ms "
          f"-> {args.output}")
    if r["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
