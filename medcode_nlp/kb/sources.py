"""Add official or licensed code-set files to a knowledge base (``medcode kb add``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medcode_nlp.errors import Errors, InputError
from medcode_nlp.integrity import sha256_file
from medcode_nlp.kb.build import KnowledgeBaseWriter
from medcode_nlp.kb.cache import clear
from medcode_nlp.kb.store import default_kb_path, load_kb

SOURCE_KINDS = ("hcpcs", "cpt", "custom", "icd10cm-index", "icd10pcs-tables", "icd10pcs-index")


def add_source(
    kind: str, file: Path, kb_path: Path | None = None, *, system: str = "custom"
) -> dict[str, Any]:
    """Load ``file`` as ``kind`` into the knowledge base and return its new info."""
    if kind not in SOURCE_KINDS:
        raise InputError(Errors.E011.format(value=kind, name="source kind", allowed=SOURCE_KINDS))
    file = Path(file)
    if not file.is_file():
        raise InputError(Errors.E010.format(path=file))
    target = Path(kb_path) if kb_path else default_kb_path()
    load_kb(kb_path).close()  # make sure it exists (builds the default once)
    source = {"source": f"file {file.name}", "sha256": sha256_file(file)}
    writer = KnowledgeBaseWriter(target)
    if kind == "hcpcs":
        from medcode_nlp.codesets.hcpcs import load_hcpcs, retire_terminated

        writer.replace_system("hcpcs", retire_terminated(load_hcpcs(file)),
                              {**source, "version": file.stem})
    elif kind == "cpt":
        from medcode_nlp.codesets.cpt import load_cpt

        writer.replace_system("cpt", load_cpt(file), {**source, "version": file.stem})
    elif kind == "custom":
        from medcode_nlp.codesets.custom import load_custom

        writer.replace_system(system, load_custom(file, system=system),
                              {**source, "version": file.stem})
    elif kind == "icd10cm-index":
        from medcode_nlp.codesets.icd10cm_index import load_icd10cm_index

        writer.add_index_terms(load_icd10cm_index(file), source)
    elif kind == "icd10pcs-tables":
        from medcode_nlp.codesets.icd10pcs_official import load_icd10pcs_tables

        writer.replace_system("icd10pcs", load_icd10pcs_tables(file),
                              {**source, "version": file.stem})
    else:
        from medcode_nlp.codesets.icd10pcs_official import load_icd10pcs_index

        writer.add_index_terms(load_icd10pcs_index(file), source)
    kb = writer.finish()
    clear()
    return kb.info()
