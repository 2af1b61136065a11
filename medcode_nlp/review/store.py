"""Coder review decisions in SQLite, with an append-only audit trail and CSV/JSONL export.

Every decision a reviewer makes (accept, reject, replace or add a code) is one row of the
``decisions`` table: who, when, which note, the suggested and the final code, the model's
confidence, the evidence spans, and the model and code-set versions that produced the
suggestion. Rows are never updated or deleted (triggers forbid it); a later decision about
the same item of the same note supersedes the earlier one, which stays in the trail.

The note text itself is never stored: only its id and the short evidence spans (offsets and
the mention text) needed to learn from the decision.

This module needs only the standard library (and ``platformdirs``), so
:mod:`medcode_nlp.review.feedback` can read a review database without the ``serve`` extra.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medcode_nlp.errors import Errors, InputError

DB_ENV = "MEDCODE_REVIEW_DB"
DB_FILE = "reviews.sqlite3"
STORE_SCHEMA_VERSION = 1
DECISIONS = ("accept", "reject", "replace", "add")

EXPORT_COLUMNS = (
    "id",
    "created_at",
    "reviewer",
    "note_id",
    "item_key",
    "decision",
    "suggested_system",
    "suggested_code",
    "suggested_description",
    "final_system",
    "final_code",
    "final_description",
    "confidence",
    "rank",
    "evidence",
    "comment",
    "medcode_version",
    "model_version",
    "ranker_version",
    "code_set_versions",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    note_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject', 'replace', 'add')),
    suggested_system TEXT,
    suggested_code TEXT,
    suggested_description TEXT,
    final_system TEXT,
    final_code TEXT,
    final_description TEXT,
    confidence REAL,
    rank INTEGER,
    evidence TEXT NOT NULL DEFAULT '[]',
    comment TEXT,
    medcode_version TEXT,
    model_version TEXT,
    ranker_version TEXT,
    code_set_versions TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS decisions_note ON decisions (note_id, item_key, id);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'review decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'review decisions are append-only'); END;
"""


def default_db_path() -> Path:
    """``$MEDCODE_REVIEW_DB``, else ``reviews.sqlite3`` in the user's data directory."""
    override = os.environ.get(DB_ENV)
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir("medcode_nlp")) / DB_FILE


@dataclass(slots=True)
class Decision:
    """One reviewer decision about one code of one note."""

    reviewer: str
    note_id: str
    decision: str
    suggested_system: str | None = None
    suggested_code: str | None = None
    suggested_description: str | None = None
    final_system: str | None = None
    final_code: str | None = None
    final_description: str | None = None
    confidence: float | None = None
    rank: int | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    comment: str | None = None
    medcode_version: str | None = None
    model_version: str | None = None
    ranker_version: str | None = None
    code_set_versions: dict[str, Any] = field(default_factory=dict)
    # Filled by the store:
    id: int | None = None
    created_at: str | None = None
    item_key: str | None = None

    def validate(self) -> None:
        """Raise InputError if the suggested/final codes do not fit the decision kind."""
        if self.decision not in DECISIONS:
            raise InputError(Errors.E011.format(value=self.decision, name="decision",
                                                allowed=DECISIONS))
        if not self.reviewer.strip():
            raise InputError(Errors.E014.format(name="reviewer", detail="must not be empty"))
        if not self.note_id.strip():
            raise InputError(Errors.E014.format(name="note_id", detail="must not be empty"))
        has_suggested = bool(self.suggested_code and self.suggested_system)
        has_final = bool(self.final_code and self.final_system)
        if self.decision in ("accept", "reject", "replace") and not has_suggested:
            raise InputError(Errors.E014.format(
                name="suggested_code", detail=f"a {self.decision} decision needs the suggested "
                "code and system"))
        if self.decision in ("replace", "add") and not has_final:
            raise InputError(Errors.E014.format(
                name="final_code", detail=f"a {self.decision} decision needs the final code "
                "and system"))
        if self.decision == "accept":
            if has_final and (self.final_code, self.final_system) != (
                    self.suggested_code, self.suggested_system):
                raise InputError(Errors.E014.format(
                    name="final_code", detail="an accept keeps the suggested code; use replace"))
        if self.decision == "reject" and has_final:
            raise InputError(Errors.E014.format(
                name="final_code", detail="a reject has no final code; use replace"))
        for span in self.evidence:
            start, end = span.get("start"), span.get("end")
            if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start <= end:
                raise InputError(Errors.E014.format(
                    name="evidence", detail="each span needs integer start <= end"))

    def normalised(self) -> Decision:
        """A copy with accept's final code filled in and the item key set."""
        copy = replace(self, evidence=[dict(e) for e in self.evidence],
                       code_set_versions=dict(self.code_set_versions))
        if copy.decision == "accept":
            copy.final_code = copy.suggested_code
            copy.final_system = copy.suggested_system
            copy.final_description = copy.final_description or copy.suggested_description
        copy.item_key = item_key(copy)
        return copy


def item_key(decision: Decision) -> str:
    """What a decision is about: the suggested code, or for an added code the added code.

    A later decision with the same key for the same note supersedes an earlier one.
    """
    if decision.decision == "add":
        return f"add:{decision.final_system}:{decision.final_code}"
    return f"suggested:{decision.suggested_system}:{decision.suggested_code}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ReviewStore:
    """The review-decision database at ``path`` (created on first use)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                       (str(STORE_SCHEMA_VERSION),))
            found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if found is None or int(found[0]) > STORE_SCHEMA_VERSION:
            raise InputError(Errors.E007.format(
                path=self.path, detail=f"review schema {found and found[0]} is newer than "
                f"this version of medcode_nlp supports ({STORE_SCHEMA_VERSION})"))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection (one per operation: safe across threads and processes)."""
        db = sqlite3.connect(self.path, timeout=30.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            with db:  # one transaction, committed on success
                yield db
        finally:
            db.close()

    # ---------------------------------------------------------------- writing
    def record(self, decisions: Sequence[Decision]) -> list[Decision]:
        """Validate and append decisions (all or none); return them with id and time."""
        prepared = []
        for decision in decisions:
            decision.validate()
            prepared.append(decision.normalised())
        created = _now()
        with self._connect() as db:
            for decision in prepared:
                decision.created_at = created
                row = _to_row(decision)
                columns = [c for c in EXPORT_COLUMNS if c != "id"]
                cursor = db.execute(
                    f"INSERT INTO decisions ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' for _ in columns)})",
                    [row[c] for c in columns],
                )
                decision.id = cursor.lastrowid
        return prepared

    # ---------------------------------------------------------------- reading
    def decisions(
        self, note_id: str | None = None, *, latest_only: bool = True
    ) -> list[Decision]:
        """Decisions in the order they were made; by default only the current one per item."""
        where, params = ("WHERE note_id = ?", (note_id,)) if note_id is not None else ("", ())
        if latest_only:
            sql = (f"SELECT * FROM decisions WHERE id IN (SELECT MAX(id) FROM decisions {where} "
                   "GROUP BY note_id, item_key) ORDER BY id")
        else:
            sql = f"SELECT * FROM decisions {where} ORDER BY id"
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(sql, params).fetchall()
        return [_from_row(dict(row)) for row in rows]

    def note_ids(self) -> list[str]:
        """Ids of all reviewed notes, in the order they were first reviewed."""
        with self._connect() as db:
            rows = db.execute("SELECT note_id FROM decisions GROUP BY note_id ORDER BY MIN(id)")
            return [row[0] for row in rows]

    def count(self) -> int:
        """Number of decision rows (the whole audit trail)."""
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])

    # -------------------------------------------------------------- exporting
    def export_rows(
        self, note_id: str | None = None, *, latest_only: bool = True
    ) -> list[dict[str, Any]]:
        """Decisions as flat dicts with the export columns."""
        return [_to_export(d) for d in self.decisions(note_id, latest_only=latest_only)]

    def export_jsonl(self, note_id: str | None = None, *, latest_only: bool = True) -> str:
        """One JSON object per decision and line."""
        lines = []
        for decision in self.decisions(note_id, latest_only=latest_only):
            record = _to_export(decision)
            record["evidence"] = decision.evidence
            record["code_set_versions"] = decision.code_set_versions
            lines.append(json.dumps(record, ensure_ascii=False))
        return "".join(line + "\n" for line in lines)

    def export_csv(self, note_id: str | None = None, *, latest_only: bool = True) -> str:
        """CSV with a header row; cells that a spreadsheet would run as a formula are quoted."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.export_rows(note_id, latest_only=latest_only):
            writer.writerow({k: _csv_safe(v) for k, v in row.items()})
        return buffer.getvalue()

    def export(self, path: str | Path, fmt: str | None = None, *, latest_only: bool = True
               ) -> Path:
        """Write an export file; ``fmt`` is ``csv`` or ``jsonl`` (default: from the suffix)."""
        target = Path(path)
        kind = (fmt or target.suffix.lstrip(".")).lower()
        if kind not in ("csv", "jsonl"):
            raise InputError(Errors.E011.format(value=kind, name="export format",
                                                allowed=("csv", "jsonl")))
        text = (self.export_csv(latest_only=latest_only) if kind == "csv"
                else self.export_jsonl(latest_only=latest_only))
        target.write_text(text, encoding="utf-8")
        return target


def _to_row(decision: Decision) -> dict[str, Any]:
    row = asdict(decision)
    row["evidence"] = json.dumps(decision.evidence, ensure_ascii=False)
    row["code_set_versions"] = json.dumps(decision.code_set_versions, ensure_ascii=False,
                                          sort_keys=True)
    return row


def _from_row(row: dict[str, Any]) -> Decision:
    row = dict(row)
    row["evidence"] = json.loads(row.get("evidence") or "[]")
    row["code_set_versions"] = json.loads(row.get("code_set_versions") or "{}")
    return Decision(**row)


def _to_export(decision: Decision) -> dict[str, Any]:
    data = asdict(decision)
    data["evidence"] = ";".join(f"{e['start']}-{e['end']}" for e in decision.evidence)
    data["code_set_versions"] = ";".join(
        f"{k}={v}" for k, v in sorted(decision.code_set_versions.items()))
    return {column: data[column] for column in EXPORT_COLUMNS}


def _csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formula injection (=, +, -, @ at the start of text)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
