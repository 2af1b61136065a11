"""``medcode batch --scheduler`` against a Dask cluster run the way users run one:
``dask scheduler`` and ``dask worker`` as separate processes, the CLI as a third."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, read_jsonl, write_jsonl

pytestmark = pytest.mark.cluster
pytest.importorskip("distributed", reason="the dask extra is not installed")

NOTES = [
    "Assessment: community acquired pneumonia. Plan: start amoxicillin.",
    "Known hypertension, on lisinopril. Denies chest pain.",
    "Chronic kidney disease stage 3. History of type 2 diabetes mellitus.",
    "Fracture of the left radius after a fall.",
    "Presents with acute otitis media.",
    "Appendectomy in 2010. Mother had breast cancer.",
    "",  # a bad record travels through the cluster too
]
START_TIMEOUT = 120.0
CLI_TIMEOUT = 600.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process and everything it started (its own session), SIGKILL if it lingers."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=20)


def _wait_for_workers(address: str, count: int, processes: list[subprocess.Popen[bytes]]) -> None:
    from distributed import Client

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        dead = [p.args for p in processes if p.poll() is not None]
        assert not dead, f"cluster process exited early: {dead}"
        try:
            with Client(address, timeout=10, set_as_default=False) as client:
                client.wait_for_workers(count, timeout=max(1.0, deadline - time.monotonic()))
                return
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    """A scheduler and two single-threaded worker processes on 127.0.0.1; always torn down."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    common = {"cwd": tmp_path, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
              "start_new_session": True}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            **common))  # type: ignore[call-overload]
        processes.append(subprocess.Popen(
            [*dask, "worker", address, "--nworkers", "2", "--nthreads", "1",
             "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(tmp_path)],
            **common))  # type: ignore[call-overload]
        _wait_for_workers(address, 2, processes)
        yield address
    finally:
        for process in reversed(processes):
            _stop(process)


def _batch(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "medcode_nlp.cli", "batch", *args,
                           "--chunk-size", "2", "--no-progress"],
                          capture_output=True, cwd=ROOT, timeout=CLI_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def test_cli_batch_on_a_subprocess_cluster_matches_the_local_run(
    tmp_path: Path, cluster: str
) -> None:
    source = tmp_path / "notes.jsonl"
    write_jsonl(source, [{"id": f"n{i}", "text": text} for i, text in enumerate(NOTES)])
    local, remote = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    local_summary = _batch(str(source), str(local))
    remote_summary = _batch(str(source), str(remote), "--scheduler", cluster)
    assert remote_summary["scheduler"] == cluster
    assert remote_summary["records"] == local_summary["records"] == len(NOTES)
    assert remote_summary["errors"] == local_summary["errors"] == 1
    assert len(remote_summary["worker_peak_rss_mb"]) >= 1  # type: ignore[arg-type]
    assert read_jsonl(remote) == read_jsonl(local)
