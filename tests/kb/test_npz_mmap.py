"""Memory-mapped reading of uncompressed .npz archives."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medcode_nlp.kb.npz_mmap import load_npz


def test_stored_members_are_mapped_and_equal(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    data = {"a": np.arange(10, dtype=np.float32), "b": np.array([[1, 2], [3, 4]], np.int64),
            "empty": np.zeros(0, dtype=np.int32)}
    np.savez(path, **data)
    loaded = load_npz(path)
    assert set(loaded) == set(data)
    for name, array in data.items():
        assert loaded[name].dtype == array.dtype
        assert np.array_equal(loaded[name], array)
    assert isinstance(loaded["a"], np.memmap)


def test_compressed_members_are_read(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    np.savez_compressed(path, a=np.arange(5))
    loaded = load_npz(path)
    assert np.array_equal(loaded["a"], np.arange(5))
    assert not isinstance(loaded["a"], np.memmap)


def test_a_mapped_array_is_copy_on_write(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    np.savez(path, a=np.arange(4, dtype=np.int32))
    loaded = load_npz(path)
    loaded["a"][0] = 99  # changes this process's copy only
    assert np.array_equal(load_npz(path)["a"], np.arange(4))
