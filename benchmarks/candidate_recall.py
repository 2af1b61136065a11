"""Share of CodiEsp gold codes that reach the mention candidates, per knowledge base.

    python -m benchmarks.candidate_recall KB [KB ...] [--split dev]

KB is a knowledge-base directory or ``default``, the one ``medcode_nlp.load()`` uses (built
in the user cache from the shipped data). The published figures compare the default with the
same code sets without index aliases (``python -m benchmarks.kb_ranker_training DIR
--no-index``, the knowledge base before the Alphabetic Index was added):

    python -m benchmarks.kb_ranker_training /tmp/kb-train-no-index --no-index
    python -m benchmarks.candidate_recall default /tmp/kb-train-no-index

Runs the shipped NER (ranker off) over the split once per knowledge base and counts the gold
diagnosis codes found among any mention's ICD-10-CM candidates (all of them and the first 5),
and the gold procedure codes among the ICD-10-PCS candidates (a 4-character partial gold code
counts when a candidate starts with it). This is the ceiling of what the ranker can put first
from mention evidence alone; the whole-note classifier can add codes beyond it.
Writes ``benchmarks/results/candidate_recall.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, shared_data

SHARED = shared_data()
RESULTS = RESULTS / "candidate_recall.json"


def candidate_recall(kb: str, split: str) -> dict[str, Any]:
    import medcode_nlp
    from medcode_nlp.evaluation.datasets import normalize_code, read_codiesp

    docs = read_codiesp(SHARED / "codiesp", split)
    coder = medcode_nlp.load(kb=None if kb == "default" else kb, ranker="none")
    counts = {"diagnosis": 0, "diagnosis_found": 0, "diagnosis_found_top5": 0,
              "procedure": 0, "procedure_found": 0}
    for gold, doc in zip(docs, coder.nlp.pipe([d.text for d in docs], batch_size=16),
                         strict=True):
        cm: set[str] = set()
        cm_top5: set[str] = set()
        pcs: set[str] = set()
        for span in doc.ents:
            for rank, candidate in enumerate(span._.candidates or []):
                code = normalize_code(candidate.code)
                if candidate.system == "icd10cm":
                    cm.add(code)
                    if rank < 5:
                        cm_top5.add(code)
                elif candidate.system == "icd10pcs":
                    pcs.update((code, code[:4]))
        diagnoses, procedures = gold.codes["diagnosis"], gold.codes["procedure"]
        counts["diagnosis"] += len(diagnoses)
        counts["diagnosis_found"] += len(diagnoses & cm)
        counts["diagnosis_found_top5"] += len(diagnoses & cm_top5)
        counts["procedure"] += len(procedures)
        counts["procedure_found"] += len(procedures & pcs)
    return {"kb": kb.replace(str(Path.home()), "~"),
            "kb_dir": str(coder.kb.path).replace(str(Path.home()), "~"), "aliases": {s: coder.kb.info()["systems"][s].get("aliases")
                                  for s in ("icd10cm", "icd10pcs")},
            **counts,
            "diagnosis_share": round(counts["diagnosis_found"] / counts["diagnosis"], 4),
            "diagnosis_share_top5": round(counts["diagnosis_found_top5"] / counts["diagnosis"], 4),
            "procedure_share": round(counts["procedure_found"] / counts["procedure"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kbs", nargs="+",
                        help="knowledge-base directories, or 'default' (the user's)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = []
    for kb in args.kbs:
        result = candidate_recall(kb, args.split)
        print(json.dumps(result), flush=True)
        results.append(result)
    args.out.write_text(json.dumps({"split": args.split, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
