"""Soak test of ``medcode serve``: steady load for minutes while the server's memory is watched.

Starts the real server (``medcode serve``, uvicorn) on 127.0.0.1 at a free port, waits for
``/healthz``, warms the workers up with the same number of clients, then runs ``--clients``
concurrent clients that POST the notes in examples/ (in turn) to /v1/code for ``--seconds``
seconds, checking every response. Every ``--sample-every`` seconds it records the resident
memory (RSS) of the server's process tree (the uvicorn supervisor and its workers). Only ever
talks to 127.0.0.1, and stops by itself. Run from the project root:

    python -m benchmarks.serve_soak [--seconds 300] [--clients 20] [--workers 2]

Flat memory: a line fitted to the RSS samples taken after the first minute (the last four
minutes of a five-minute run) rises by less than ``--max-growth-mb`` (20 MB) and by less than
``--max-growth-pct`` (5 %) of the RSS at the start of that window. The run passes when memory is
flat and no request failed (non-2xx responses and client exceptions count as errors).

Writes benchmarks/results/serve_soak.json and prints a summary table; exits 1 on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.common import RESULTS
from benchmarks.serve_load import (
    HOST,
    ROOT,
    percentile,
    running_server,
)

MB = 1024 * 1024


@dataclass
class Samples:
    """RSS of the server's process tree over time (seconds since the soak started)."""

    times: list[float] = field(default_factory=list)
    total_mb: list[float] = field(default_factory=list)
    per_process_mb: list[dict[int, float]] = field(default_factory=list)

    def add(self, t: float, rss: dict[int, float]) -> None:
        self.times.append(t)
        self.total_mb.append(sum(rss.values()))
        self.per_process_mb.append(rss)


def tree_rss_mb(pid: int) -> dict[int, float]:
    """RSS in MB of a process and all its descendants, by pid (vanished ones are skipped)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    found = {}
    for process in processes:
        try:
            found[process.pid] = process.memory_info().rss / MB
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def sample_memory(pid: int, every: float, started: float, stop: threading.Event,
                  samples: Samples) -> None:
    """Sample until ``stop`` is set (runs in its own thread, independent of the clients)."""
    while True:
        samples.add(time.perf_counter() - started, tree_rss_mb(pid))
        if stop.wait(every):
            samples.add(time.perf_counter() - started, tree_rss_mb(pid))
            return


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of ys over xs (slope 0 for fewer than 2 points)."""
    if len(xs) < 2:
        return 0.0, ys[0] if ys else 0.0
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, mean_y
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, mean_y - slope * mean_x


async def soak(base: str, notes: list[str], clients: int, seconds: float, started: float
               ) -> tuple[list[tuple[float, float, bool]], Counter[str]]:
    """(time since start, latency seconds, ok) per request, and error kinds."""
    records: list[tuple[float, float, bool]] = []
    errors: Counter[str] = Counter()
    deadline = started + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def one_client(index: int) -> None:
            j = 0
            while time.perf_counter() < deadline:
                text = notes[(index + j) % len(notes)]
                j += 1
                sent = time.perf_counter()
                ok = False
                try:
                    response = await client.post("/v1/code", json={"text": text})
                    if not 200 <= response.status_code < 300:
                        errors[f"HTTP {response.status_code}"] += 1
                    elif "codes" not in response.json():
                        errors["malformed body"] += 1
                    else:
                        ok = True
                except (httpx.HTTPError, ValueError) as error:
                    errors[type(error).__name__] += 1
                now = time.perf_counter()
                records.append((now - started, now - sent, ok))

        await asyncio.gather(*(one_client(i) for i in range(clients)))
    return records, errors


def latency_ms(latencies: list[float]) -> dict[str, float | None]:
    ms = [x * 1000 for x in latencies]
    if not ms:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    return {"p50": round(percentile(ms, 50), 1), "p95": round(percentile(ms, 95), 1),
            "p99": round(percentile(ms, 99), 1), "mean": round(statistics.mean(ms), 1),
            "max": round(max(ms), 1)}


def memory_report(samples: Samples, seconds: float, settle: float, max_growth_mb: float,
                  max_growth_pct: float) -> dict[str, Any]:
    window = [(t, m) for t, m in zip(samples.times, samples.total_mb, strict=True)
              if t >= settle]
    xs = [t / 60 for t, _ in window]
    ys = [m for _, m in window]
    slope, intercept = linear_fit(xs, ys)
    window_minutes = (xs[-1] - xs[0]) if len(xs) > 1 else 0.0
    fitted_start = intercept + slope * xs[0] if xs else 0.0
    growth_mb = slope * window_minutes
    growth_pct = 100 * growth_mb / fitted_start if fitted_start else 0.0
    flat = growth_mb < max_growth_mb and growth_pct < max_growth_pct
    first, last = samples.per_process_mb[0], samples.per_process_mb[-1]
    return {
        "sample_every_seconds": round(samples.times[1] - samples.times[0], 1)
        if len(samples.times) > 1 else None,
        "samples": len(samples.times),
        "rss_mb_start_after_warmup": round(samples.total_mb[0], 1),
        "rss_mb_end": round(samples.total_mb[-1], 1),
        "rss_mb_max": round(max(samples.total_mb), 1),
        "rss_mb_min": round(min(samples.total_mb), 1),
        "processes_start": len(first),
        "processes_end": len(last),
        "per_process_mb_start": sorted(round(v, 1) for v in first.values()),
        "per_process_mb_end": sorted(round(v, 1) for v in last.values()),
        "fit_window_seconds": [round(settle, 1), round(seconds, 1)],
        "slope_mb_per_minute": round(slope, 3),
        "fitted_growth_mb_over_window": round(growth_mb, 1),
        "fitted_growth_pct_over_window": round(growth_pct, 2),
        "raw_change_mb_over_window": round(ys[-1] - ys[0], 1) if ys else None,
        "flat_criterion": f"fitted RSS growth from {settle:.0f} s to the end < "
                          f"{max_growth_mb:g} MB and < {max_growth_pct:g} %",
        "flat": flat,
        "timeline": [{"t_seconds": round(t, 1), "rss_mb": round(m, 1)}
                     for t, m in zip(samples.times, samples.total_mb, strict=True)],
    }


def per_minute(records: list[tuple[float, float, bool]], samples: Samples, seconds: float
               ) -> list[dict[str, Any]]:
    rows = []
    minutes = max(1, int((seconds + 59) // 60))
    for minute in range(minutes):
        lo, hi = minute * 60, min((minute + 1) * 60, seconds)
        last = minute == minutes - 1  # it also gets the requests that ended after the deadline
        chunk = [r for r in records if lo <= r[0] and (last or r[0] < hi)]
        rss = [m for t, m in zip(samples.times, samples.total_mb, strict=True) if lo <= t <= hi]
        rows.append({
            "minute": minute + 1,
            "requests": len(chunk),
            "errors": sum(1 for r in chunk if not r[2]),
            "rps": round(len(chunk) / (hi - lo), 1) if hi > lo else None,
            "p50_ms": latency_ms([r[1] for r in chunk if r[2]])["p50"],
            "rss_mb_max": round(max(rss), 1) if rss else None,
        })
    return rows


def print_table(report: dict[str, Any]) -> None:
    r, m = report["results"], report["memory"]
    lat = r["latency_ms"]
    rows = [
        ("duration", f"{r['wall_seconds']:.0f} s, {report['load']['clients']} clients, "
                     f"{report['server']['workers']} worker(s)"),
        ("requests", f"{r['requests']:,}"),
        ("errors (non-2xx + exceptions)", f"{r['errors']}"),
        ("throughput", f"{r['throughput_rps']} req/s"),
        ("latency p50 / p95 / p99", f"{lat['p50']} / {lat['p95']} / {lat['p99']} ms"),
        ("RSS start (after warm-up)", f"{m['rss_mb_start_after_warmup']:,.1f} MB"),
        ("RSS end / max", f"{m['rss_mb_end']:,.1f} / {m['rss_mb_max']:,.1f} MB"),
        ("RSS slope after 1st minute", f"{m['slope_mb_per_minute']:+.2f} MB/min"),
        ("fitted growth over window", f"{m['fitted_growth_mb_over_window']:+.1f} MB "
                                      f"({m['fitted_growth_pct_over_window']:+.2f} %)"),
        ("flat memory", f"{'yes' if m['flat'] else 'NO'} ({m['flat_criterion']})"),
        ("verdict", "PASS" if report["pass"] else "FAIL"),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print()
    print("minute  requests  errors   req/s   p50 ms   max RSS MB")
    for row in report["per_minute"]:
        print(f"{row['minute']:>6}  {row['requests']:>8}  {row['errors']:>6}  "
              f"{row['rps'] if row['rps'] is not None else '-':>6}  "
              f"{row['p50_ms'] if row['p50_ms'] is not None else '-':>7}  "
              f"{row['rss_mb_max'] if row['rss_mb_max'] is not None else '-':>11}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300, help="length of the soak")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="server worker processes (default: CPU count)")
    parser.add_argument("--sample-every", type=float, default=5.0,
                        help="seconds between RSS samples")
    parser.add_argument("--settle", type=float, default=60.0,
                        help="seconds at the start left out of the memory fit")
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    parser.add_argument("--max-growth-pct", type=float, default=5.0)
    parser.add_argument("--ner", default=None, help="NER for the server (default: shipped)")
    parser.add_argument("--startup-timeout", type=float, default=600)
    parser.add_argument("--output", type=Path,
                        default=RESULTS / "serve_soak.json")
    args = parser.parse_args()
    if args.seconds <= 0 or args.clients < 1 or args.sample_every <= 0:
        parser.error("--seconds, --clients and --sample-every must be positive")
    settle = min(args.settle, args.seconds / 2)

    note_files = sorted((ROOT / "examples").glob("*.txt"))
    notes = [p.read_text(encoding="utf-8") for p in note_files]
    samples = Samples()
    # warm-up at the soak's concurrency, so that the request threads exist before measuring
    with running_server(args, notes, args.clients) as server:
        print(f"server ready in {server.startup_seconds:.1f} s; {args.clients} clients for "
              f"{args.seconds:.0f} s, RSS every {args.sample_every:g} s ...",
              file=sys.stderr, flush=True)
        load_before = os.getloadavg()
        stop = threading.Event()
        started = time.perf_counter()
        sampler = threading.Thread(target=sample_memory, daemon=True, args=(
            server.process.pid, args.sample_every, started, stop, samples))
        sampler.start()
        records, errors = asyncio.run(soak(server.base, notes, args.clients, args.seconds,
                                           started))
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        load_after = os.getloadavg()
    startup, health, restarts = server.startup_seconds, server.health, server.restarts

    ok = [latency for _, latency, good in records if good]
    error_count = sum(errors.values())
    memory = memory_report(samples, args.seconds, settle, args.max_growth_mb,
                           args.max_growth_pct)
    report: dict[str, Any] = {
        "benchmark": "medcode serve soak: POST /v1/code with the sample notes, RSS sampled",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "python -m benchmarks.serve_soak " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "packages": {name: version(name) for name in
                                 ("uvicorn", "fastapi", "httpx", "psutil", "spacy")},
                    # Other work on the machine slows the server down: note how busy it was.
                    "load_average_1min_before_after": [round(load_before[0], 2),
                                                       round(load_after[0], 2)]},
        "server": {"host": HOST, "workers": args.workers, "startup_seconds": round(startup, 1),
                   "worker_restarts": restarts, "versions": health.get("versions")},
        "load": {"clients": args.clients, "seconds": args.seconds,
                 "notes": [p.name for p in note_files],
                 "mean_note_chars": round(statistics.mean(len(n) for n in notes))},
        "results": {
            "requests": len(records),
            "ok": len(ok),
            "errors": error_count,
            "error_kinds": dict(errors),
            "wall_seconds": round(wall, 1),
            "throughput_rps": round(len(records) / wall, 1),
            "latency_ms": latency_ms(ok),
        },
        "memory": memory,
        "per_minute": per_minute(records, samples, args.seconds),
    }
    report["pass"] = bool(memory["flat"] and error_count == 0 and restarts == 0)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(report)
    print(f"-> {args.output}")
    if not report["pass"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
