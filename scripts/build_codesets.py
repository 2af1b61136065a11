"""Build the code-set files shipped in ``medcode_nlp/data`` from the official CMS/CDC files.

    python scripts/build_codesets.py [--data ../shared/data] [--out medcode_nlp/data]

Sources (US public domain, CMS and CDC/NCHS):

* ICD-10-CM FY2025 Alphabetic Index, CSV export of the Index to Diseases and Injuries
  (``icd10cm-2025/ICD10CM_2025_Index.csv``), and the CDC XML of the Neoplasm Table and the
  Table of Drugs and Chemicals (``icd-10-cm-neoplasm-2025.xml``, ``icd-10-cm-drug-2025.xml``);
* ICD-10-PCS FY2025 tables and index XML (``icd10pcs-2025/icd10pcs_{tables,index}_2025.xml``);
* HCPCS Level II 2019 annual file, fixed-width text (``hcpcs-2019/HCPC2019_CONTR_ANWEB.txt``).

The ICD-10-CM tabular list is not built here: it comes from the PyPI package
``simple-icd-10-cm``. Output is deterministic (same inputs, same bytes); ``codesets.json``
records every file's SHA-256 and rows and every source file's name, SHA-256 and version.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medcode_nlp.codesets import shipped
from medcode_nlp.codesets.hcpcs import load_hcpcs
from medcode_nlp.codesets.icd10cm_index import load_icd10cm_index
from medcode_nlp.codesets.icd10cm_tables import load_table_terms
from medcode_nlp.codesets.icd10pcs_official import load_icd10pcs_index, load_icd10pcs_tables
from medcode_nlp.integrity import sha256_file
from medcode_nlp.paths import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
CM_INDEX = ("icd10cm-2025", "ICD10CM_2025_Index.csv")
CM_NEOPLASM = ("icd10cm-2025", "icd-10-cm-neoplasm-2025.xml")
CM_DRUG = ("icd10cm-2025", "icd-10-cm-drug-2025.xml")
PCS_TABLES = ("icd10pcs-2025", "icd10pcs_tables_2025.xml")
PCS_INDEX = ("icd10pcs-2025", "icd10pcs_index_2025.xml")
HCPCS = ("hcpcs-2019", "HCPC2019_CONTR_ANWEB.txt")


def _source(data: Path, parts: tuple[str, str]) -> dict[str, str]:
    path = data.joinpath(*parts)
    return {"file": "/".join(parts), "sha256": sha256_file(path)}


def build(data: Path, out: Path) -> dict[str, Any]:
    """Write every shipped file and the manifest into ``out``; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Any]] = {}

    def record(name: str, rows: int, source: str, version: str,
               sources: list[tuple[str, str]], **extra: Any) -> None:
        files[name] = {"rows": rows, "sha256": sha256_file(out / name), "bytes":
                       (out / name).stat().st_size, "source": source, "version": version,
                       "sources": [_source(data, s) for s in sources], **extra}

    # ICD-10-CM index aliases: disease index (CSV export), neoplasm and drug tables (XML).
    cm_rows: list[tuple[str, str, str]] = []
    counts = {}
    for label, parts in (("index", CM_INDEX), ("neoplasm", CM_NEOPLASM), ("drug", CM_DRUG)):
        path = data.joinpath(*parts)
        terms = load_icd10cm_index(path) if label == "index" else load_table_terms(path)
        rows = sorted({(t.code, t.term, label) for t in terms})
        counts[label] = len(rows)
        cm_rows.extend(rows)
    rows_written = shipped.write_tsv(out / shipped.CM_INDEX, cm_rows)
    record(shipped.CM_INDEX, rows_written, "CDC/NCHS ICD-10-CM Alphabetic Index",
           "FY2025", [CM_INDEX, CM_NEOPLASM, CM_DRUG], terms_per_source=counts)

    pcs = load_icd10pcs_tables(data.joinpath(*PCS_TABLES))
    rows_written = shipped.write_tsv(out / shipped.PCS_CODES,
                                     sorted((e.code, e.description) for e in pcs))
    sections = sorted({e.code[0] for e in pcs})
    record(shipped.PCS_CODES, rows_written, "CMS ICD-10-PCS tables", "FY2025", [PCS_TABLES],
           sections=sections)

    index = load_icd10pcs_index(data.joinpath(*PCS_INDEX))
    rows_written = shipped.write_tsv(out / shipped.PCS_INDEX,
                                     sorted({(t.code, t.term) for t in index}))
    record(shipped.PCS_INDEX, rows_written, "CMS ICD-10-PCS Index", "FY2025", [PCS_INDEX])

    hcpcs = sorted(load_hcpcs(data.joinpath(*HCPCS)), key=lambda e: e.code)
    rows_written = shipped.write_hcpcs(out / shipped.HCPCS, hcpcs)
    record(shipped.HCPCS, rows_written, "CMS HCPCS Level II annual file", "2019",
           [HCPCS])

    manifest = {
        "format": shipped.FORMAT,
        "built_by": "scripts/build_codesets.py",
        "built": datetime.now(UTC).date().isoformat(),
        "licence": "US public domain (CMS, CDC/NCHS); no CPT or CDT content",
        "files": files,
    }
    (out / shipped.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                        encoding="utf-8")
    return manifest


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir())
    parser.add_argument("--out", type=Path, default=ROOT / "medcode_nlp" / "data")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = build(args.data, args.out)
    total = sum(info["bytes"] for info in manifest["files"].values())
    for name, info in manifest["files"].items():
        print(f"{name}: {info['rows']} rows, {info['bytes'] / 1e6:.2f} MB")
    print(f"total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
