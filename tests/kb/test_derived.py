"""Derived tables kept on disk between processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcode_nlp.kb import derived


def test_a_table_is_built_once_per_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCODE_CACHE_DIR", str(tmp_path))
    calls = []

    def build() -> dict[str, str]:
        calls.append(1)
        return {"key": "value"}

    assert derived.cached("table", ["k1"], build) == {"key": "value"}
    assert derived.cached("table", ["k1"], build) == {"key": "value"}
    assert len(calls) == 1
    derived.cached("table", ["k2"], build)  # another key: worked out again
    assert len(calls) == 2


def test_a_damaged_file_is_worked_out_again(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCODE_CACHE_DIR", str(tmp_path))
    derived.cached("table", ["k"], lambda: {"a": "b"})
    (stored,) = tmp_path.glob("table-*.msgpack")
    stored.write_bytes(b"not msgpack")
    assert derived.cached("table", ["k"], lambda: {"a": "c"}) == {"a": "c"}


def test_source_digest_follows_the_code() -> None:
    one = derived.source_digest(["medcode_nlp.kb.derived"])
    assert one == derived.source_digest(["medcode_nlp.kb.derived"])
    assert one != derived.source_digest(["medcode_nlp.kb.search_cache"])
