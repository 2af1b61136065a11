"""Building a knowledge base: the staged writer (codes, aliases, notes, candidate indexes, manifest) and the built-in sources."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medcode_nlp.about import __version__
from medcode_nlp.codesets.base import CodeEntry, IndexTerm
from medcode_nlp.codesets.registry import code_key, systems
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.integrity import write_checksums
from medcode_nlp.kb.store import (
    _NOTE_FIELDS,
    _SCHEMA,
    DB_FILE,
    KB_FORMAT,
    MANIFEST_FILE,
    CodeKnowledgeBase,
)

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------- writing
class KnowledgeBaseWriter:
    """Builds or changes a knowledge-base directory; call :meth:`finish` to seal it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        manifest_path = self.path / MANIFEST_FILE
        self.manifest: dict[str, Any] = (
            json.loads(manifest_path.read_text(encoding="utf-8"))
            if manifest_path.is_file()
            else {"kb_format": KB_FORMAT, "systems": {}}
        )
        self.db = sqlite3.connect(self.path / DB_FILE)
        self.db.executescript(_SCHEMA)
        self.changed: set[str] = set()

    def replace_system(
        self, system: str, entries: Iterable[CodeEntry], source: dict[str, Any]
    ) -> int:
        """Replace every code of ``system`` with ``entries``; returns the number stored."""
        if system not in systems():
            raise InputError(Errors.E005.format(system=system, known=", ".join(systems())))
        self.db.execute("DELETE FROM codes WHERE system = ?", (system,))
        self.db.execute("DELETE FROM aliases WHERE system = ?", (system,))
        count = 0
        code_rows = []
        alias_rows = []
        for entry in entries:
            notes = {name: getattr(entry, name) for name in _NOTE_FIELDS}
            code_rows.append(
                (
                    system,
                    entry.code,
                    code_key(entry.code),
                    entry.description,
                    int(entry.billable),
                    entry.parent,
                    json.dumps(notes, separators=(",", ":")),
                )
            )
            seen = set()
            for alias in entry.aliases:
                key = alias.text.lower()
                if alias.text and key not in seen:
                    seen.add(key)
                    alias_rows.append((system, entry.code, alias.text, alias.kind))
            count += 1
        self.db.executemany("INSERT OR REPLACE INTO codes VALUES (?,?,?,?,?,?,?)", code_rows)
        self.db.executemany(
            "INSERT INTO aliases (system, code, text, kind) VALUES (?,?,?,?)", alias_rows
        )
        self.manifest["systems"][system] = {**source, "codes": count}
        self.changed.add(system)
        logger.info("stored %d %s codes", count, system)
        return count

    def add_index_terms(self, terms: Iterable[IndexTerm], source: dict[str, Any]) -> int:
        """Attach index terms as ``index`` aliases of the codes they point to.

        A code ending in ``-`` (or lacking its last characters) attaches to the category it
        names. Terms whose code is not in the knowledge base are skipped and counted.
        """
        added = skipped = 0
        rows = []
        known: dict[tuple[str, str], str | None] = {}
        for term in terms:
            key = (term.system, code_key(term.code.rstrip("-").rstrip(".")))
            if key not in known:
                found = self.db.execute(
                    "SELECT code FROM codes WHERE system = ? AND code_key = ?", key
                ).fetchone()
                known[key] = found[0] if found else None
            code = known[key]
            if code is None:
                skipped += 1
                continue
            rows.append((term.system, code, term.term, "index"))
            self.changed.add(term.system)
            added += 1
        self.db.executemany("INSERT INTO aliases (system, code, text, kind) VALUES (?,?,?,?)", rows)
        for system in {r[0] for r in rows}:
            info = self.manifest["systems"].setdefault(system, {})
            info.setdefault("index_sources", []).append({**source, "terms": added})
        logger.info("added %d index aliases (%d skipped: code not in the knowledge base)",
                    added, skipped)
        return added

    def finish(self) -> CodeKnowledgeBase:
        """Rebuild candidate indexes of changed systems, write manifest and checksums."""
        from medcode_nlp.kb.index import CandidateIndex

        self.db.commit()
        for system in sorted(self.changed):
            alias_count = self.db.execute(
                "SELECT COUNT(*) FROM aliases WHERE system = ?", (system,)
            ).fetchone()[0]
            billable = self.db.execute(
                "SELECT COUNT(*) FROM codes WHERE system = ? AND billable = 1", (system,)
            ).fetchone()[0]
            self.manifest["systems"][system].update(aliases=alias_count, billable=billable)
        self.db.execute("ANALYZE")
        self.db.execute("VACUUM")
        self.db.close()
        self.manifest.update(
            kb_format=KB_FORMAT,
            built_by=f"medcode_nlp {__version__}",
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        (self.path / MANIFEST_FILE).write_text(
            json.dumps(self.manifest, indent=2, sort_keys=True), encoding="utf-8"
        )
        kb = CodeKnowledgeBase(self.path, verify=False)
        for system in sorted(self.changed):
            CandidateIndex.build(kb, system).save(self.path)
        kb.close()
        write_checksums(self.path)
        return CodeKnowledgeBase(self.path)


def fill_builtin(writer: KnowledgeBaseWriter) -> None:
    """Store every built-in code set: ICD-10-CM FY2026 (``simple-icd-10-cm``) with its
    Alphabetic Index, Neoplasm and Drug table aliases, the official ICD-10-PCS tables (every
    section) with the PCS Index, and HCPCS Level II (terminated codes retired); all but the
    ICD-10-CM tabular list come from the files shipped in the package
    (:mod:`medcode_nlp.codesets.shipped`)."""
    from medcode_nlp.codesets import icd10cm, shipped
    from medcode_nlp.codesets.hcpcs import retire_terminated

    writer.replace_system(
        "icd10cm",
        icd10cm.iter_icd10cm(),
        {"source": f"PyPI {icd10cm.PACKAGE}", "version": f"FY2026 ({icd10cm.PACKAGE} "
         f"{icd10cm.source_version()})"},
    )
    cm_source = shipped.source_info(shipped.CM_INDEX)
    for kind, terms in sorted(shipped.icd10cm_index_terms().items()):
        writer.add_index_terms(terms, {**cm_source, "part": kind})
    writer.replace_system("icd10pcs", shipped.icd10pcs_entries(),
                         shipped.source_info(shipped.PCS_CODES))
    writer.add_index_terms(shipped.icd10pcs_index_terms(), shipped.source_info(shipped.PCS_INDEX))
    writer.replace_system("hcpcs", retire_terminated(shipped.hcpcs_entries()),
                          shipped.source_info(shipped.HCPCS))


def build_default_kb(path: Path) -> CodeKnowledgeBase:
    """Build the built-in knowledge base (every code set of :func:`fill_builtin`) at
    ``path``, in a staging directory renamed into place when complete."""
    import shutil

    logger.info("building the built-in knowledge base at %s (once)", path)
    path = Path(path)
    staging = path.parent / f".{path.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    writer = KnowledgeBaseWriter(staging)
    fill_builtin(writer)
    writer.finish().close()
    try:
        staging.rename(path)  # atomic: concurrent builders never see a half-built directory
    except OSError:
        if not (path / MANIFEST_FILE).is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)  # another process finished first
    return CodeKnowledgeBase(path)
