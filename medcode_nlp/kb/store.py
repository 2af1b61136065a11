"""CodeKnowledgeBase: every code of every loaded code system, with its aliases, on disk.

The artifact is a directory holding ``kb.sqlite`` (codes, aliases, notes), one candidate
index per code system (see :mod:`medcode_nlp.kb.index`), ``manifest.json`` (format,
sources, versions, counts) and ``checksums.sha256`` verified on every load.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from medcode_nlp.about import __version__
from medcode_nlp.codesets.base import SYSTEMS, Alias, CodeEntry, IndexTerm
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.integrity import verify_directory, write_checksums

logger = logging.getLogger(__name__)

KB_FORMAT = 1
#: Bumped when the built-in code sets are read differently (a new cache directory is built).
#: 2: single-category blocks (B20, C50, R99...) are kept as codes.
#: 3: every built-in code set from the shipped data (ICD-10-CM index, neoplasm and drug table
#: aliases; every ICD-10-PCS section and its index; HCPCS Level II).
KB_CONTENT_REVISION = 3
DB_FILE = "kb.sqlite"
MANIFEST_FILE = "manifest.json"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS codes (
    system TEXT NOT NULL, code TEXT NOT NULL, code_key TEXT NOT NULL,
    description TEXT NOT NULL, billable INTEGER NOT NULL, parent TEXT,
    notes TEXT NOT NULL, PRIMARY KEY (system, code));
CREATE INDEX IF NOT EXISTS codes_key ON codes (system, code_key);
CREATE INDEX IF NOT EXISTS codes_parent ON codes (system, parent);
CREATE TABLE IF NOT EXISTS aliases (
    id INTEGER PRIMARY KEY, system TEXT NOT NULL, code TEXT NOT NULL,
    text TEXT NOT NULL, kind TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS aliases_code ON aliases (system, code);
"""
_NOTE_FIELDS = (
    "excludes1",
    "excludes2",
    "code_first",
    "use_additional",
    "seventh_characters",
    "extra",
)


def code_key(code: str) -> str:
    """Lookup form of a code: upper case, no dots, no spaces."""
    return code.strip().upper().replace(".", "")


class CodeKnowledgeBase:
    """Read access to a knowledge-base directory, plus the operations that change it."""

    def __init__(self, path: Path, *, verify: bool = True) -> None:
        self.path = Path(path)
        manifest_path = self.path / MANIFEST_FILE
        if not (self.path / DB_FILE).is_file() or not manifest_path.is_file():
            raise InputError(
                Errors.E007.format(path=self.path, detail=f"{DB_FILE} or {MANIFEST_FILE} missing")
            )
        if verify:
            verify_directory(self.path)
        self.manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
        self._lock = threading.Lock()
        self._connect()
        self.get = lru_cache(maxsize=200_000)(self._get)
        self.children = lru_cache(maxsize=50_000)(self._children)  # type: ignore[method-assign]
        self.first_with_prefix = lru_cache(maxsize=50_000)(  # type: ignore[method-assign]
            self._first_with_prefix)

    def _connect(self) -> None:
        self._pid = os.getpid()
        self._db = sqlite3.connect(
            f"file:{self.path / DB_FILE}?mode=ro", uri=True, check_same_thread=False
        )

    def _connection(self) -> sqlite3.Connection:
        """The connection of this process: a forked worker (``nlp.pipe(n_process=2)``) opens
        its own (SQLite connections must not cross a fork)."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self._connect()
        return self._db

    # ----------------------------------------------------------------- reading
    @property
    def systems(self) -> list[str]:
        """Code systems present in this knowledge base."""
        return sorted(self.manifest.get("systems", {}))

    @property
    def version(self) -> str:
        """Short identifier of the code-set versions, for result records."""
        parts = [f"{s}:{info.get('version', '?')}" for s, info in self.systems_info().items()]
        return ";".join(parts)

    def systems_info(self) -> dict[str, dict[str, Any]]:
        """Per-system counts, source and version from the manifest."""
        return dict(self.manifest.get("systems", {}))

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db = self._connection()
        with self._lock:
            return db.execute(sql, params).fetchall()

    def _get(self, system: str, code: str) -> CodeEntry | None:
        rows = self._query(
            "SELECT code, description, billable, parent, notes FROM codes "
            "WHERE system = ? AND code_key = ?",
            (system, code_key(code)),
        )
        if not rows:
            return None
        found, description, billable, parent, notes = rows[0]
        aliases = [
            Alias(text, kind)
            for text, kind in self._query(
                "SELECT text, kind FROM aliases WHERE system = ? AND code = ? ORDER BY id",
                (system, found),
            )
        ]
        return CodeEntry(
            code=found,
            system=system,
            description=description,
            billable=bool(billable),
            parent=parent,
            aliases=aliases,
            **json.loads(notes),
        )

    def find(self, code: str, systems: Iterable[str] | None = None) -> list[CodeEntry]:
        """Entries with this code in any of ``systems`` (all by default)."""
        found = []
        for system in systems or self.systems:
            entry = self.get(system, code)
            if entry is not None:
                found.append(entry)
        return found

    def first_with_prefix(self, system: str, prefix: str) -> str | None:
        """The first code (in code order) whose lookup form starts with ``prefix``, if any."""
        return self._first_with_prefix(system, prefix)

    def _first_with_prefix(self, system: str, prefix: str) -> str | None:
        key = code_key(prefix)
        if not key:
            return None
        rows = self._query(
            "SELECT code FROM codes INDEXED BY codes_key WHERE system = ? AND code_key >= ? "
            "AND code_key < ? ORDER BY code_key LIMIT 1",
            (system, key, key + "\uffff"),
        )
        return str(rows[0][0]) if rows else None

    def children(self, system: str, code: str) -> list[str]:
        """Direct children of a code (cached per instance)."""
        return self._children(system, code)

    def _children(self, system: str, code: str) -> list[str]:
        rows = self._query(
            "SELECT code FROM codes INDEXED BY codes_parent WHERE system = ? AND parent = ?",
            (system, code),
        )
        return sorted(row[0] for row in rows)

    def billable_descendants(self, system: str, code: str, limit: int = 50) -> list[str]:
        """Billable codes below ``code`` (breadth first, at most ``limit``)."""
        found: list[str] = []
        frontier = [code]
        while frontier and len(found) < limit:
            next_frontier = []
            for parent in frontier:
                for child in self.children(system, parent):
                    entry = self.get(system, child)
                    if entry is not None and entry.billable:
                        found.append(child)
                    next_frontier.append(child)
            frontier = next_frontier
        return found[:limit]

    def ancestors(self, system: str, code: str) -> list[str]:
        """Parent chain of a code, nearest first."""
        chain = []
        entry = self.get(system, code)
        while entry is not None and entry.parent:
            chain.append(entry.parent)
            entry = self.get(system, entry.parent)
        return chain

    def iter_aliases(self, system: str) -> Iterator[tuple[int, str, str, str]]:
        """(alias id, code, text, kind) for every alias of a system, in id order."""
        db = self._connection()
        with self._lock:
            rows = db.execute(
                "SELECT id, code, text, kind FROM aliases WHERE system = ? ORDER BY id", (system,)
            ).fetchall()
        yield from rows

    def alias(self, alias_id: int) -> tuple[str, str]:
        """(text, kind) of one alias."""
        rows = self._query("SELECT text, kind FROM aliases WHERE id = ?", (alias_id,))
        return (rows[0][0], rows[0][1]) if rows else ("", "")

    def alias_texts(self, alias_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
        """(text, kind) for many alias ids in one query."""
        ids = sorted(set(int(i) for i in alias_ids))
        if not ids:
            return {}
        placeholders = ",".join("?" * len(ids))
        rows = self._query(
            f"SELECT id, text, kind FROM aliases WHERE id IN ({placeholders})", tuple(ids)
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def codes(self, system: str, billable_only: bool = False) -> list[str]:
        """All codes of a system, sorted."""
        sql = "SELECT code FROM codes WHERE system = ?" + (" AND billable = 1" if billable_only else "")
        return [row[0] for row in self._query(sql + " ORDER BY code", (system,))]

    def info(self) -> dict[str, Any]:
        """Counts and versions per system, for ``medcode kb info``."""
        return {
            "path": str(self.path),
            "kb_format": self.manifest.get("kb_format"),
            "built_by": self.manifest.get("built_by"),
            "created": self.manifest.get("created"),
            "systems": self.systems_info(),
        }

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()


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
        if system not in SYSTEMS:
            raise InputError(Errors.E005.format(system=system, known=", ".join(SYSTEMS)))
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


# ------------------------------------------------------------ default location
@lru_cache(maxsize=1)
def default_kb_path() -> Path:
    """Where the built-in knowledge base lives: ``$MEDCODE_KB`` or the user cache."""
    import os

    from platformdirs import user_cache_dir

    from medcode_nlp.codesets import icd10cm, shipped

    if os.environ.get("MEDCODE_KB"):
        return Path(os.environ["MEDCODE_KB"])
    tag = (f"kb{KB_FORMAT}r{KB_CONTENT_REVISION}-cm{icd10cm.source_version()}"
           f"-data{shipped.revision()}")
    return Path(user_cache_dir("medcode_nlp")) / tag


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
    import os
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


def load_kb(path: Path | None = None, *, build: bool = True) -> CodeKnowledgeBase:
    """Open the knowledge base at ``path`` (default location), building the default once."""
    target = Path(path) if path is not None else default_kb_path()
    if not (target / MANIFEST_FILE).is_file():
        if path is not None or not build:
            raise InputError(Errors.E007.format(path=target, detail="run `medcode kb build`"))
        return build_default_kb(target)
    return CodeKnowledgeBase(target)
