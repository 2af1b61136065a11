"""Build the hand-made ``kb-full`` of the earlier benchmarks from the shipped data (issue 17).

``kb-full`` was the built-in knowledge base plus three ``medcode kb add`` files: the ICD-10-PCS
tables and index, the ICD-10-CM Index CSV. The same content comes from the shipped files
(the disease index part only: no Neoplasm/Drug table aliases, no HCPCS), so the CodiEsp
figures of the default knowledge base can be set beside the previous ones in one run:

    python benchmarks/kb_previous_full.py /tmp/kb-full
    medcode evaluate codiesp ../shared/data/codiesp --split dev --kb /tmp/kb-full --no-baseline

``--no-index`` leaves the index aliases out: the knowledge base the ranker recipe searches
held-out index terms in (``train_ranker --index-kb``) and the linking benchmark needs one
without them, or every index term finds itself as an alias.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from medcode_nlp.codesets import icd10cm, shipped
from medcode_nlp.kb import KnowledgeBaseWriter


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
