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
from functools import lru_cache
from pathlib import Path
from typing import Any

from medcode_nlp.codesets.base import Alias, CodeEntry
from medcode_nlp.codesets.registry import code_key  # noqa: F401  (re-exported)
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.integrity import verify_directory

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

    def descriptions(self, system: str, prefixes: tuple[str, ...]) -> dict[str, str]:
        """``{code: description}`` of the codes starting with one of ``prefixes``, in code
        order: one query, and no entry is built or cached (``get`` would hold them all)."""
        rows = self._query("SELECT code, description FROM codes WHERE system = ? ORDER BY code",
                           (system,))
        return {code: description for code, description in rows if code.startswith(prefixes)}

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


def kb_identity(path: Path) -> str:
    """What identifies a knowledge base's content: its manifest and checksum manifest."""
    from medcode_nlp.integrity import CHECKSUM_FILE
    from medcode_nlp.kb.derived import file_digest

    return f"{file_digest(path / MANIFEST_FILE)}:{file_digest(path / CHECKSUM_FILE)}"


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


def load_kb(path: Path | None = None, *, build: bool = True) -> CodeKnowledgeBase:
    """Open the knowledge base at ``path`` (default location), building the default once."""
    target = Path(path) if path is not None else default_kb_path()
    if not (target / MANIFEST_FILE).is_file():
        if path is not None or not build:
            raise InputError(Errors.E007.format(path=target, detail="run `medcode kb build`"))
        from medcode_nlp.kb.build import build_default_kb  # the builder imports this module

        return build_default_kb(target)
    return CodeKnowledgeBase(target)
