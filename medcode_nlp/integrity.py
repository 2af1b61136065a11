"""SHA-256 manifests for artifacts on disk (models, knowledge bases)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from medcode_nlp.errors import Errors, IntegrityError

CHECKSUM_FILE = "checksums.sha256"


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(directory: Path, exclude: tuple[str, ...] = ()) -> Path:
    """Write ``checksums.sha256`` (``<hex>  <relative path>`` lines) for every file below."""
    lines = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if relative == CHECKSUM_FILE or relative in exclude:
            continue
        lines.append(f"{sha256_file(path)}  {relative}")
    target = directory / CHECKSUM_FILE
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def read_checksums(directory: Path) -> dict[str, str]:
    """Map relative path -> expected hex digest from ``checksums.sha256``."""
    manifest = directory / CHECKSUM_FILE
    if not manifest.is_file():
        raise IntegrityError(
            Errors.E007.format(path=directory, detail=f"no {CHECKSUM_FILE} manifest")
        )
    expected: dict[str, str] = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, _, relative = line.partition("  ")
            expected[relative.strip()] = digest.strip()
    return expected


def verify_directory(directory: Path) -> None:
    """Check every file listed in the manifest; raise IntegrityError naming the first bad one."""
    for relative, digest in read_checksums(directory).items():
        path = directory / relative
        if not path.is_file():
            raise IntegrityError(Errors.E007.format(path=path, detail="file listed but missing"))
        actual = sha256_file(path)
        if actual != digest:
            raise IntegrityError(Errors.E008.format(path=path, expected=digest, actual=actual))


def verify_file(directory: Path, relative: str) -> None:
    """Check one file listed in the manifest of ``directory`` (a file read after the
    directory was verified, e.g. on first use)."""
    path = directory / relative
    digest = read_checksums(directory).get(relative)
    if digest is None or not path.is_file():
        raise IntegrityError(Errors.E007.format(path=path, detail="file not in the manifest"))
    actual = sha256_file(path)
    if actual != digest:
        raise IntegrityError(Errors.E008.format(path=path, expected=digest, actual=actual))
