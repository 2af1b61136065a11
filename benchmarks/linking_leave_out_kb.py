"""The default knowledge base without the held-out terms: its ``index`` aliases that are a
held-out mention are deleted from a cached copy whose candidate index is rebuilt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medcode_nlp.codesets.index_terms import (
    IndexRow,
    alias_key,
    full_term,
    mention_text,
    read_index_rows,
)

logger = logging.getLogger("linking_benchmark")


def heldout_keys(rows: Iterable[IndexRow], row_ids: Iterable[int]) -> set[str]:
    """Comparison forms of the held-out rows: mention text, printed entry and row term, the
    three texts :func:`eligible_mentions` checks against the knowledge-base aliases."""
    wanted = set(row_ids)
    keys: set[str] = set()
    for row in rows:
        if row.row_id in wanted:
            keys |= {alias_key(mention_text(row.path)), alias_key(full_term(row.path)),
                     alias_key(row.term)}
    keys.discard("")
    return keys


def leave_out_kb_dir(cache_dir: Path, source: Path, row_ids: list[int]) -> Path:
    """Cache directory of ``source`` without the held-out terms (named by both)."""
    digest = hashlib.sha256(json.dumps(sorted(row_ids)).encode()).hexdigest()[:12]
    return cache_dir / f"{source.name}-minus-linking-heldout-{digest}"


def build_leave_out_kb(source: Path, target: Path, keys: set[str],
                       system: str = "icd10cm") -> dict[str, Any]:
    """Copy the knowledge base at ``source`` to ``target`` without the ``index`` aliases of
    ``system`` whose :func:`alias_key` is in ``keys``; rebuild that system's candidate index.

    Built in a staging directory renamed into place; returns what was removed (also stored
    in the manifest under ``linking_benchmark_left_out``).
    """
    import sqlite3

    from medcode_nlp.kb.build import KnowledgeBaseWriter
    from medcode_nlp.kb.store import DB_FILE

    staging = target.parent / f".{target.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    with sqlite3.connect(staging / DB_FILE) as db:
        found = db.execute("SELECT id, text FROM aliases WHERE system = ? AND kind = 'index'",
                           (system,)).fetchall()
        drop = [(alias_id,) for alias_id, text in found if alias_key(text) in keys]
        db.executemany("DELETE FROM aliases WHERE id = ?", drop)
    writer = KnowledgeBaseWriter(staging)
    info = {"source": str(source), "system": system, "kind": "index",
            "held_out_keys": len(keys), "aliases_removed": len(drop)}
    writer.manifest["linking_benchmark_left_out"] = info
    writer.changed.add(system)
    writer.finish().close()
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return info


def default_kb_minus_heldout(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """(default knowledge base, the same without the held-out terms, what was left out)."""
    from medcode_nlp.kb.store import MANIFEST_FILE, load_kb

    default = load_kb(None)
    if args.reselect or not args.heldout.is_file():
        raise SystemExit("the default knowledge base holds the Index as aliases, so no index "
                         "term is eligible there: draw held-out rows with --kb DIR, a "
                         "knowledge base without index aliases")
    row_ids = json.loads(args.heldout.read_text(encoding="utf-8"))["row_ids"]
    target = leave_out_kb_dir(args.cache_dir, default.path, row_ids)
    if not (target / MANIFEST_FILE).is_file():
        logger.info("building the default knowledge base minus the held-out terms in %s "
                    "(once)", target)
        target.parent.mkdir(parents=True, exist_ok=True)
        keys = heldout_keys(read_index_rows(args.index_csv), row_ids)
        build_leave_out_kb(default.path, target, keys)
    kb = load_kb(target)
    return default, kb, dict(kb.manifest["linking_benchmark_left_out"])
