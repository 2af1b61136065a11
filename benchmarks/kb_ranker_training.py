"""Build the ranker's training knowledge bases from the data shipped in the package.

The shipped ranker (``models/ranker``) was trained on ICD-10-CM FY2026 with the ICD-10-CM
Alphabetic Index (disease index) as aliases and every ICD-10-PCS table code with the PCS Index:
the default knowledge base minus its Neoplasm/Drug table aliases and HCPCS, which the recipe
does not use. Its recipe also needs one without any index aliases (``--no-index``) to search
the index terms it learns from (``train_ranker --index-kb``): in a knowledge base holding the
Index every term finds itself as an alias.

    python -m benchmarks.kb_ranker_training /tmp/kb-train
    python -m benchmarks.kb_ranker_training /tmp/kb-train-no-index --no-index
    python -m medcode_nlp.training.train_ranker --kb /tmp/kb-train --index-kb /tmp/kb-train-no-index

Not for evaluation: every published figure is measured on the default knowledge base
(``medcode kb build``); the linking benchmark takes its held-out terms out of that one itself.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from medcode_nlp.codesets import icd10cm, shipped
from medcode_nlp.kb.build import KnowledgeBaseWriter


def main() -> None:
    """Build into the directory given as the first argument (``--no-index``: no index aliases)."""
    target = Path(sys.argv[1])
    with_index = "--no-index" not in sys.argv[2:]
    shutil.rmtree(target, ignore_errors=True)
    writer = KnowledgeBaseWriter(target)
    writer.replace_system("icd10cm", icd10cm.iter_icd10cm(),
                          {"source": "simple-icd-10-cm", "version": "FY2026"})
    if with_index:
        writer.add_index_terms(shipped.icd10cm_index_terms()["index"], {"source": "Index CSV"})
    writer.replace_system("icd10pcs", shipped.icd10pcs_entries(),
                          {"source": "ICD-10-PCS tables", "version": "FY2025"})
    if with_index:
        writer.add_index_terms(shipped.icd10pcs_index_terms(), {"source": "ICD-10-PCS index"})
    writer.finish().close()


if __name__ == "__main__":
    main()
