"""Memory-map the arrays of an uncompressed ``.npz`` file (as ``np.savez`` writes it).

``np.load`` reads every member of an ``.npz`` into the process's own memory, so each
worker holds a private copy of a candidate index. A member stored without compression is
an ``.npy`` file at a fixed offset of the archive: mapping it there lets the OS
share one copy of its pages between every process that opens the knowledge base, and read
only the pages a search touches. Compressed members (``np.savez_compressed``) and object
arrays are read as ``np.load`` reads them.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

#: Size of a ZIP local file header before its file name and extra field.
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of ``path`` by name (``.npy`` dropped), memory-mapped where stored."""
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        for info in archive.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            mapped = (_mapped(path, handle, info.header_offset)
                      if info.compress_type == zipfile.ZIP_STORED else None)
            if mapped is None:
                with archive.open(info) as member:
                    mapped = np.lib.format.read_array(member, allow_pickle=False)
            arrays[name] = mapped
    return arrays


def _mapped(path: Path, handle: BinaryIO, header_offset: int) -> np.ndarray | None:
    """The ``.npy`` member whose local header starts at ``header_offset``, mapped
    copy-on-write (None for object arrays, which cannot be mapped)."""
    handle.seek(header_offset)
    fields = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
    if fields[0] != _LOCAL_SIGNATURE:
        return None
    name_length, extra_length = fields[9], fields[10]
    start = header_offset + _LOCAL_HEADER.size + name_length + extra_length
    handle.seek(start)
    version = np.lib.format.read_magic(handle)
    reader = _HEADER_READERS.get(version)
    if reader is None:
        return None
    shape, fortran, dtype = reader(handle)
    if dtype.hasobject:
        return None
    offset = handle.tell()
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    # copy-on-write: pages stay the file's (shared) unless written, which nothing does; a
    # read-only map would be refused by extension kernels that take writable arrays
    return np.memmap(path, dtype=dtype, mode="c", offset=offset, shape=shape,
                     order="F" if fortran else "C")
