"""Add official or licensed code-set files to a knowledge base (``medcode kb add``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medcode_nlp.codesets.registry import source_kind, source_kinds
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.integrity import sha256_file
from medcode_nlp.kb.build import KnowledgeBaseWriter
from medcode_nlp.kb.cache import clear
from medcode_nlp.kb.store import default_kb_path, load_kb


def add_source(
    kind: str, file: Path, kb_path: Path | None = None, *, system: str = "custom"
) -> dict[str, Any]:
    """Load ``file`` as ``kind`` into the knowledge base and return its new info."""
    if source_kind(kind) is None:
        raise InputError(Errors.E011.format(value=kind, name="source kind",
                                            allowed=source_kinds()))
    file = Path(file)
    if not file.is_file():
        raise InputError(Errors.E010.format(path=file))
    target = Path(kb_path) if kb_path else default_kb_path()
    load_kb(kb_path).close()  # make sure it exists (builds the default once)
    source = {"source": f"file {file.name}", "sha256": sha256_file(file)}
    writer = KnowledgeBaseWriter(target)
    spec = source_kind(kind)
    assert spec is not None
    filled = spec.system or system
    loaded = spec.load(file, filled)
    if spec.adds == "index_terms":
        writer.add_index_terms(loaded, source)
    else:
        writer.replace_system(filled, loaded, {**source, "version": file.stem})
    kb = writer.finish()
    clear()
    return kb.info()
