"""Held-out index terms of the linking benchmark: which Alphabetic Index rows are eligible
as mentions (:func:`eligible_mentions`), the seeded draw (:func:`select_heldout`) and the
RowIDs file that keeps it (:func:`load_or_select`). No term text is saved.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from medcode_nlp.codesets.index_terms import IndexRow, alias_key, full_term, mention_text

logger = logging.getLogger("linking_benchmark")

BILLABLE_FORM = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?")


@dataclass(frozen=True, slots=True)
class Mention:
    """A held-out mention: its index RowID, mention text, gold code and index level."""

    row_id: int
    text: str
    code: str
    level: int


def eligible_mentions(
    rows: Iterable[IndexRow],
    alias_keys: set[str],
    billable: set[str] | frozenset[str],
    stats: Counter[str] | None = None,
) -> list[Mention]:
    """Index rows usable as held-out mentions, in RowID order.

    Kept: the row has one code in plain form, billable in the knowledge base; the mention
    text, the printed index entry and the row's own term are none of them an alias of the
    knowledge base (compared with :func:`alias_key`). Mention texts built from several rows
    are kept once if all point to the same code and dropped if they disagree (ambiguous).
    """
    stats = stats if stats is not None else Counter()
    by_text: dict[str, list[Mention]] = {}
    for row in rows:
        stats["rows"] += 1
        if not row.code:
            stats["no_code"] += 1
            continue
        if not BILLABLE_FORM.fullmatch(row.code) or row.code not in billable:
            stats["code_not_billable_fy2026"] += 1
            continue
        text = mention_text(row.path)
        key = alias_key(text)
        if not key:
            stats["empty_text"] += 1
            continue
        if {key, alias_key(full_term(row.path)), alias_key(row.term)} & alias_keys:
            stats["text_is_kb_alias"] += 1
            continue
        by_text.setdefault(key, []).append(Mention(row.row_id, text, row.code, row.level))
    kept = []
    for found in by_text.values():
        if len({m.code for m in found}) > 1:
            stats["ambiguous_text"] += len(found)
            continue
        stats["duplicate_text"] += len(found) - 1
        kept.append(found[0])
    stats["eligible"] = len(kept)
    return sorted(kept, key=lambda m: m.row_id)


def select_heldout(eligible: list[Mention], n: int, seed: int) -> list[Mention]:
    """``n`` mentions drawn uniformly with ``random.Random(seed)``, in RowID order."""
    if n > len(eligible):
        raise SystemExit(f"only {len(eligible)} eligible index terms, {n} requested")
    chosen = random.Random(seed).sample(eligible, n)
    return sorted(chosen, key=lambda m: m.row_id)


def load_or_select(
    args: argparse.Namespace, eligible: list[Mention], source_sha: str, kb_version: str
) -> list[Mention]:
    """The held-out mentions: from the RowIDs file, or a fresh seeded draw saved there."""
    by_id = {m.row_id: m for m in eligible}
    if args.heldout.is_file() and not args.reselect:
        saved = json.loads(args.heldout.read_text(encoding="utf-8"))
        if saved.get("source_sha256") != source_sha:
            logger.warning("index CSV differs from the one the held-out RowIDs were drawn from")
        missing = [i for i in saved["row_ids"] if i not in by_id]
        if missing:  # e.g. the knowledge base gained one of these texts as an alias
            logger.warning("%d held-out RowIDs are no longer eligible and are left out of "
                           "this run (--reselect draws a new set)", len(missing))
            args.heldout_missing = len(missing)
        return [by_id[i] for i in saved["row_ids"] if i in by_id]
    chosen = select_heldout(eligible, args.n, args.seed)
    args.heldout.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "description": "RowIDs of ICD10CM_2025_Index.csv held out for the linking benchmark "
        "(benchmarks/linking_benchmark.py); leave these rows out of ranker training.",
        "source": "ICD10CM_2025_Index.csv (CDC ICD-10-CM FY2025 Alphabetic Index, CSV export)",
        "source_sha256": source_sha,
        "knowledge_base": kb_version,
        "seed": args.seed,
        "n": len(chosen),
        "eligible": len(eligible),
        "selection": "billable FY2026 code in the knowledge base; mention text, printed "
        "entry and row term not a knowledge-base alias; unambiguous mention text; uniform "
        "sample with random.Random(seed).sample",
        "row_ids": [m.row_id for m in chosen],
    }
    args.heldout.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return chosen
