"""Build the shipped ICD-10-CM Alphabetic Index tree from the CDC CSV exports.

    python3 -m scripts.build_index_tree [--source DIR] [--out medcode_nlp/data/icd10cm_index_tree.json.gz]

Reads ``ICD10CM_2025_Index.csv`` (required), ``ICD10CM_2025_neoplasms.csv`` and
``ICD10CM_2025_Drugs.csv`` (optional) from ``--source``, checks every code against the
FY2026 Tabular of the default knowledge base and writes a gzip-compressed JSON tree (rows
``[level, term, nonessential modifiers, see, see also, code(s)]`` in index order) with its
provenance, plus a ``.sha256`` sidecar checked by :meth:`IndexTree.load`.

Code repairs (FY2025 index -> FY2026 Tabular): a code that is no longer billable and was
not printed with a dash (FY2026 split it, ``R05`` -> ``R05.x``) is completed to its
unspecified child; a code absent from FY2026 is completed from its closest existing
parent; a code with no existing parent is dropped. Codes that need only a 7th character,
or are printed with a dash, are kept as printed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medcode_nlp.codesets.icd10cm_index import dotted_index_code
from medcode_nlp.codesets.icd10cm_index_tree import (
    CHECKSUM_SUFFIX,
    DATA_FILE,
    SYSTEM,
    TREE_FORMAT,
    complete_code,
    read_csv_rows,
)
from medcode_nlp.codesets.index_entries import DRUG_COLUMNS, NEOPLASM_COLUMNS
from medcode_nlp.kb.store import CodeKnowledgeBase, load_kb
from medcode_nlp.paths import shared_data_dir

DEFAULT_SOURCE = shared_data_dir() / "icd10cm-2025"
FILES = {
    "index": "ICD10CM_2025_Index.csv",
    "neoplasm": "ICD10CM_2025_neoplasms.csv",
    "drug": "ICD10CM_2025_Drugs.csv",
}


class CodeChecker:
    """Checks index codes against the FY2026 Tabular and repairs the ones it can."""

    def __init__(self, kb: CodeKnowledgeBase) -> None:
        self.kb = kb
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self._memo: dict[str, str] = {}

    def _note(self, kind: str, text: str) -> None:
        self.counts[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < 15 and text not in shown:
            shown.append(text)

    def check(self, raw: str) -> str:
        raw = raw.strip()
        if not raw or raw.strip("-") == "":
            return ""
        code = dotted_index_code(raw)
        if code is None:
            self._note("not a code (dropped)", raw)
            return ""
        if code in self._memo:
            result = self._memo[code]
        else:
            result = self._check(code)
            self._memo[code] = result
        self.counts["codes"] += 1
        return result

    def _check(self, code: str) -> str:
        dashed = code.endswith("-")
        base = code.rstrip("-").rstrip(".")
        entry = self.kb.get(SYSTEM, base)
        if entry is not None:
            if dashed or entry.billable:
                return code
            completed = complete_code(self.kb, base)
            if completed is None:
                self._note("unknown completion (dropped)", code)
                return ""
            if completed.replace(".", "").rstrip("X") == base.replace(".", ""):
                return code  # only a 7th character (and placeholders) missing
            self._note("not billable in FY2026, completed", f"{code} -> {completed}")
            return completed
        parent = base
        while len(parent.replace(".", "")) > 3:
            parent = parent[:-1].rstrip(".")
            if self.kb.get(SYSTEM, parent) is not None:
                completed = complete_code(self.kb, parent)
                if completed:
                    self._note("not in FY2026, completed from parent", f"{code} -> {completed}")
                    return completed
                break
        self._note("not in FY2026 (dropped)", code)
        return ""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DATA_FILE)
    args = parser.parse_args(argv)
    kb = load_kb()
    checker = CodeChecker(kb)
    data: dict[str, Any] = {"format": TREE_FORMAT}
    sources = {}
    for table, name in FILES.items():
        path = args.source / name
        if not path.is_file():
            if table == "index":
                parser.error(f"{path} not found")
            continue
        data[table] = read_csv_rows(path, table, checker.check)
        sources[table] = {"file": name, "sha256": _sha256(path), "rows": len(data[table])}
    data["provenance"] = {
        "source": "CDC ICD-10-CM FY2025 Alphabetic Index, Neoplasm Table, Table of Drugs and "
                  "Chemicals (CSV exports)",
        "files": sources,
        "codes_checked_against": kb.systems_info().get(SYSTEM, {}).get("version", "?"),
        "code_repairs": dict(checker.counts),
        "repair_examples": checker.examples,
        "neoplasm_columns": list(NEOPLASM_COLUMNS),
        "drug_columns": list(DRUG_COLUMNS),
        "built": datetime.now(UTC).strftime("%Y-%m-%d"),
        "builder": "scripts/build_index_tree.py",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with open(args.out, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9
    ) as handle:
        handle.write(payload)
    digest = _sha256(args.out)
    args.out.with_name(args.out.name + CHECKSUM_SUFFIX).write_text(
        f"{digest}  {args.out.name}\n", encoding="utf-8")
    print(json.dumps({"out": str(args.out), "bytes": args.out.stat().st_size, "sha256": digest,
                      "rows": {t: len(data.get(t, [])) for t in FILES},
                      "repairs": dict(checker.counts)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
