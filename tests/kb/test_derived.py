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


def test_arrays_are_built_once_and_memory_mapped(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    monkeypatch.setenv("MEDCODE_CACHE_DIR", str(tmp_path))
    calls = []

    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"a": np.arange(5, dtype=np.int32)}

    first = derived.cached_arrays("arrays", ["k"], build)
    second = derived.cached_arrays("arrays", ["k"], build)
    assert len(calls) == 1 and isinstance(second["a"], np.memmap)
    assert first["a"].tolist() == second["a"].tolist() == [0, 1, 2, 3, 4]
    (stored,) = tmp_path.glob("arrays-*.npz")
    stored.write_bytes(stored.read_bytes()[:-3] + b"xyz")  # digest no longer matches
    assert derived.cached_arrays("arrays", ["k"], build)["a"].tolist() == [0, 1, 2, 3, 4]
    assert len(calls) == 2
