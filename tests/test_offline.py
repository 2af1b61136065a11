"""Nothing reaches the network: loading and coding work with outbound connections refused."""

from __future__ import annotations

import socket

import pytest


def _refuse_remote(original):
    def connect(self, address, *args, **kwargs):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost")
                                      or host.startswith("/")):
            return original(self, address, *args, **kwargs)
        raise AssertionError(f"network connection attempted to {host!r}")
    return connect


def test_offline_load_and_code_without_network(monkeypatch):
    import medcode_nlp
    from medcode_nlp.kb.search import search_terms

    monkeypatch.setattr(socket.socket, "connect", _refuse_remote(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse_remote(socket.socket.connect_ex))
    coder = medcode_nlp.load()
    result = coder("Assessment: community acquired pneumonia. Plan: chest x-ray.")
    assert result.codes
    assert search_terms(["iron deficiency anemia"], top_k=3)[0]


def test_offline_guard_catches_a_remote_connection(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _refuse_remote(socket.socket.connect))
    with socket.socket() as sock, pytest.raises(AssertionError, match="network connection"):
        sock.connect(("192.0.2.1", 80))
