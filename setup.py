"""Build hook: put the trained models into the wheel as ``medcode_nlp/models/<name>/``.

``models/`` at the repository root stays the source of truth (with the model cards). A regular
build copies each model's checksum manifest, model card and the files the manifest lists,
after checking every digest, so a wheel can never carry a changed or half-written model. An
editable install copies nothing: the package then finds ``models/`` in the clone.
All other metadata lives in pyproject.toml.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED_MODELS = ("ner", "ranker")
MANIFEST = "checksums.sha256"
CARD = "MODEL_CARD.md"


def model_files(model: Path) -> list[str]:
    """Relative paths to ship for one model, after verifying them against its manifest."""
    manifest = model / MANIFEST
    if not manifest.is_file():
        raise SystemExit(f"cannot build: {manifest} is missing")
    files = [MANIFEST]
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, _, relative = line.partition("  ")
        path = model / relative.strip()
        if not path.is_file():
            raise SystemExit(f"cannot build: {path} is listed in {manifest} but missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest.strip():
            raise SystemExit(f"cannot build: {path} does not match its checksum in {manifest}")
        files.append(relative.strip())
    if (model / CARD).is_file() and CARD not in files:
        files.append(CARD)
    return files


class build_py_with_models(build_py):  # noqa: N801  (setuptools command naming)
    """``build_py`` that also copies the shipped models below the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in SHIPPED_MODELS:
            source = HERE / "models" / name
            target = Path(self.build_lib) / "medcode_nlp" / "models" / name
            for relative in model_files(source):
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / relative, destination)


setup(cmdclass={"build_py": build_py_with_models})
