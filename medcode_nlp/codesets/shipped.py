"""The public code sets shipped inside the package, as compact derived files.

``medcode_nlp/data/`` holds what ``scripts/build_codesets.py`` derives from the official
CMS and CDC files (US public domain), gzip-compressed, and ``codesets.json`` with
each file's SHA-256, row count and provenance (source file names, their SHA-256, versions):

=========================  =========================================================
file                       rows
=========================  =========================================================
``icd10cm_aliases.tsv.gz`` ``code<TAB>term<TAB>source``: Alphabetic Index, Neoplasm
                           Table and Table of Drugs terms (source ``index``,
                           ``neoplasm``, ``drug``), written as clinical mentions
``icd10pcs_codes.tsv.gz``  ``code<TAB>title``: every ICD-10-PCS code of the tables
``icd10pcs_index.tsv.gz``  ``code<TAB>term``: ICD-10-PCS Index terms
``hcpcs.jsonl.gz``         one HCPCS Level II code or modifier per line
=========================  =========================================================

Files are written with a fixed gzip timestamp, so the same sources give the same bytes.
Every read checks the file's SHA-256 against the manifest.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from medcode_nlp.codesets.base import Alias, CodeEntry, IndexTerm
from medcode_nlp.errors import Errors, InputError, IntegrityError

MANIFEST = "codesets.json"
FORMAT = 1
CM_INDEX = "icd10cm_aliases.tsv.gz"
PCS_CODES = "icd10pcs_codes.tsv.gz"
PCS_INDEX = "icd10pcs_index.tsv.gz"
HCPCS = "hcpcs.jsonl.gz"


def data_dir() -> Path:
    """Directory of the shipped code-set files."""
    return Path(__file__).resolve().parents[1] / "data"


@lru_cache(maxsize=4)
def manifest(directory: Path | None = None) -> dict[str, Any]:
    """The manifest of the shipped files (format, build date, files with provenance)."""
    path = (directory or data_dir()) / MANIFEST
    if not path.is_file():
        raise InputError(Errors.E007.format(path=path.parent, detail=f"{MANIFEST} missing"))
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def revision(directory: Path | None = None) -> str:
    """Short fingerprint of the shipped data (first 8 hex digits of the files' SHA-256)."""
    import hashlib

    files = manifest(directory)["files"]
    joined = "".join(files[name]["sha256"] for name in sorted(files))
    return hashlib.sha256(joined.encode("ascii")).hexdigest()[:8]


def _read(name: str, directory: Path | None) -> bytes:
    """Decompressed bytes of a shipped file after checking its SHA-256."""
    import hashlib

    folder = directory or data_dir()
    info = manifest(directory)["files"].get(name)
    path = folder / name
    if info is None or not path.is_file():
        raise IntegrityError(Errors.E007.format(path=path, detail="shipped code-set file missing"))
    raw = path.read_bytes()
    actual = hashlib.sha256(raw).hexdigest()
    if actual != info["sha256"]:
        raise IntegrityError(Errors.E008.format(path=path, expected=info["sha256"], actual=actual))
    return gzip.decompress(raw)


def _tsv(name: str, directory: Path | None) -> Iterator[list[str]]:
    for line in _read(name, directory).decode("utf-8").splitlines():
        if line:
            yield line.split("\t")


def source_info(name: str, directory: Path | None = None) -> dict[str, Any]:
    """Provenance of one shipped file, as stored in a knowledge-base manifest."""
    info = manifest(directory)["files"][name]
    return {
        "source": info["source"],
        "version": info["version"],
        "sha256": info["sha256"],
        "files": [source["file"] for source in info["sources"]],
    }


def icd10cm_index_terms(directory: Path | None = None) -> dict[str, list[IndexTerm]]:
    """ICD-10-CM index aliases per source (``index``, ``neoplasm``, ``drug``)."""
    found: dict[str, list[IndexTerm]] = {}
    for code, term, source in _tsv(CM_INDEX, directory):
        found.setdefault(source, []).append(IndexTerm(term=term, code=code, system="icd10cm"))
    return found


def icd10pcs_entries(directory: Path | None = None) -> list[CodeEntry]:
    """Every ICD-10-PCS code of the official tables (parent: its three-character table)."""
    return [
        CodeEntry(code=code, system="icd10pcs", description=title, parent=code[:3],
                  aliases=[Alias(title, "description")])
        for code, title in _tsv(PCS_CODES, directory)
    ]


def icd10pcs_index_terms(directory: Path | None = None) -> list[IndexTerm]:
    """ICD-10-PCS Index terms (full or partial codes)."""
    return [IndexTerm(term=term, code=code, system="icd10pcs")
            for code, term in _tsv(PCS_INDEX, directory)]


def hcpcs_entries(directory: Path | None = None) -> list[CodeEntry]:
    """HCPCS Level II codes and modifiers as the CMS loader reads them (terminated included)."""
    entries = []
    for line in _read(HCPCS, directory).decode("utf-8").splitlines():
        row = json.loads(line)
        entries.append(CodeEntry(
            code=row["code"], system="hcpcs", description=row["description"],
            billable=row["billable"], aliases=[Alias(t, k) for t, k in row["aliases"]],
            extra=row["extra"]))
    return entries


# ------------------------------------------------------------------ writing
def _gzip(text: str) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as out:
        out.write(text.encode("utf-8"))
    return buffer.getvalue()


def write_tsv(path: Path, rows: Iterable[tuple[str, ...]]) -> int:
    """Write rows as gzip-compressed TSV; returns the row count. Fields hold no tab/newline."""
    lines = []
    for row in rows:
        if any("\t" in field or "\n" in field for field in row):
            raise ValueError(f"tab or newline inside a field of {row[0]!r}")
        lines.append("\t".join(row))
    path.write_bytes(_gzip("\n".join(lines) + "\n"))
    return len(lines)


def write_hcpcs(path: Path, entries: Iterable[CodeEntry]) -> int:
    """Write HCPCS entries as gzip-compressed JSON lines; returns the row count."""
    lines = [
        json.dumps({"code": e.code, "description": e.description, "billable": e.billable,
                    "aliases": [[a.text, a.kind] for a in e.aliases], "extra": e.extra},
                   ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        for e in entries
    ]
    path.write_bytes(_gzip("\n".join(lines) + "\n"))
    return len(lines)
