"""Knowledge-base load time, memory and candidate-search speed (issue 2, items 5 and 6).

Measures the default knowledge base, the one ``medcode_nlp.load()`` uses (built once in the
user cache from the data shipped in the package: ICD-10-CM, ICD-10-PCS, HCPCS Level II), or
the one given with ``--kb``: in a fresh process, the time to open it and load every candidate
index, the peak RSS, and exact candidate search throughput in batches.
Usage: python -m benchmarks.kb_load [--kb DIR] [--queries N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import RESULTS

RESULTS = RESULTS / "kb_load.json"


def default_kb() -> Path:
    """The default knowledge base's directory, built first if missing (not timed)."""
    from medcode_nlp.kb.store import load_kb

    kb = load_kb()
    kb.close()
    return kb.path


def measure(target: Path, n_queries: int) -> dict[str, object]:
    """Runs in a fresh interpreter: import, load, search."""
    started = time.perf_counter()
    from medcode_nlp.kb.index import CandidateIndex
    from medcode_nlp.kb.store import CodeKnowledgeBase

    imported = time.perf_counter()
    kb = CodeKnowledgeBase(target)  # verifies every checksum
    indexes = {s: CandidateIndex.load(target, s) for s in kb.systems}
    loaded = time.perf_counter()
    rss_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    entries = [kb.get("icd10cm", c) for c in kb.codes("icd10cm")[:n_queries]]
    descriptions = [e.description for e in entries if e is not None]  # every listed code
    # lower-case, drop the qualifiers after the first comma: mention-like queries
    queries = [d.split(",")[0].lower() for d in descriptions]
    speeds = {}
    for system, index in indexes.items():
        t0 = time.perf_counter()
        index.search(queries, top_k=10, batch_size=256)
        speeds[system] = round(len(queries) / (time.perf_counter() - t0), 1)
    return {
        "systems": kb.info()["systems"],
        "import_seconds": round(imported - started, 3),
        "load_seconds": round(loaded - imported, 3),
        "peak_rss_mb_after_load": round(rss_after_load, 1),
        "peak_rss_mb_after_search": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "queries": len(queries),
        "mentions_per_second_single_process": speeds,
        "targets": {"load_seconds": "< 1", "peak_rss_mb": "< 500", "mentions_per_second": ">= 1000"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", default=None, help="knowledge base (default: the user's)")
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.kb), args.queries)))
        return
    target = Path(args.kb) if args.kb else default_kb()
    done = subprocess.run([sys.executable, __file__, "--kb", str(target), "--queries",
                           str(args.queries), "--measure"], capture_output=True, text=True,
                          check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["command"] = "python -m benchmarks.kb_load" + (f" --kb {args.kb}" if args.kb else "")
    result["kb_dir"] = str(target).replace(str(Path.home()), "~", 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
