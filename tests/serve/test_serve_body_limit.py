"""Oversized bodies against a real ``medcode serve`` process: the client that sends the
whole body reads the 413 JSON error (no connection reset), and the server keeps serving."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow  # starts a server, a browser or runs notebooks

pytest.importorskip("uvicorn", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is missing")

START_TIMEOUT = 180.0
BODY_CHARS = 6_000_000  # over the default limit of 5 MiB


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``medcode serve`` with its defaults on a free loopback port; always stopped."""
    port = _free_port()
    db = tmp_path_factory.mktemp("serve_limit") / "reviews.sqlite3"
    process = subprocess.Popen(
        [sys.executable, "-m", "medcode_nlp.cli", "serve", "--port", str(port), "--db", str(db),
         "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, "medcode serve exited"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "medcode serve did not start listening"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)


def _assert_413(status: int, body: bytes) -> None:
    assert status == 413
    assert json.loads(body)["error"]["type"] == "request_too_large"


def test_urllib_sending_6_mb_reads_the_413(server: str) -> None:
    data = json.dumps({"text": "x" * BODY_CHARS}).encode()
    request = urllib.request.Request(server + "/v1/code", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=60)
    _assert_413(raised.value.code, raised.value.read())


def test_streamed_body_over_the_limit_reads_the_413(server: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(BODY_CHARS // 100_000):
            yield b"y" * 100_000
        yield b'"}'

    with httpx.Client(timeout=60) as client:
        response = client.post(server + "/v1/code", content=chunks(),
                               headers={"content-type": "application/json"})
        assert "content-length" not in {k.lower() for k in response.request.headers}
        _assert_413(response.status_code, response.content)
        # The server is still there for the next request.
        small = client.post(server + "/v1/code", json={"text": "Denies chest pain."},
                            timeout=180)
        assert small.status_code == 200, small.text[:200]


def _raw_post_headers(server: str, extra: str) -> bytes:
    """Send only the headers of a POST and return what the server answers (bounded wait)."""
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST /v1/code HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Content-Type: application/json\r\n{extra}\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


@pytest.mark.parametrize("extra", [
    "Content-Length: 6000000\r\nExpect: 100-continue\r\n",  # waits for "100 Continue"
    "Content-Length: 1000000000\r\n",  # beyond the drain bound: not read at all
])
def test_body_that_will_not_be_read_is_refused_at_once(server: str, extra: str) -> None:
    answer = _raw_post_headers(server, extra)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    assert b"connection: close" in answer.lower()
