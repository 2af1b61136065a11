"""Parity check: does a change alter any code, score or other part of the results?

    python -m benchmarks.parity [--baseline-python /tmp/venv-perfbase/bin/python]
                                [--notes 1000] [--baseline-digests FILE]

Codes the first ``--notes`` CodiEsp background notes (by file name) with this checkout and
with the previous release (the ``medcode_nlp`` that ``--baseline-python`` imports, e.g. a
venv of a worktree at the release commit; or digests saved by an earlier run), each in its own
process started from an empty folder so that each imports its own package, both at once.
Per note it keeps the codes with their scores, the excluded and "consider" codes, and a
SHA-256 of the whole result without its ``versions`` (entities, evidence offsets, prompts,
conflicts): no note text. The comparison says how many notes are identical, how many differ
only in scores (and the largest difference), and names each other difference.

Writes ``benchmarks/results/parity.json`` (the summary; the per-note digests go to
``--digests-dir``, default a temporary folder).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, parser, shared_data, write_json

DEFAULT_DATA = shared_data("codiesp", "background", "text_files_en")
TOLERANCE = 1e-6

#: Run by each interpreter: code the notes listed in argv[1], write digests to argv[2].
RECORD = r"""
import hashlib, json, sys, time, warnings
warnings.simplefilter("ignore")
import medcode_nlp
paths = json.load(open(sys.argv[1]))
coder = medcode_nlp.load()
texts = [open(p, encoding="utf-8").read() for p in paths]
started = time.process_time()
out = {}
for path, result in zip(paths, coder.pipe(texts, batch_size=32)):
    data = result.to_dict()
    data.pop("versions")
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    out[path.rsplit("/", 1)[-1][:-4]] = {
        "codes": [[c["system"], c["code"], c["score"]] for c in data["codes"]],
        "excluded": [[c["system"], c["code"], c["score"]] for c in data["excluded"]],
        "consider": [[c["system"], c["code"], c["score"]] for c in data["consider"]],
        "digest": digest,
    }
json.dump({"package": medcode_nlp.__file__, "cpu_seconds": time.process_time() - started,
           "notes": out}, open(sys.argv[2], "w"))
"""


def start(python: str, listing: Path, target: Path) -> subprocess.Popen[bytes]:
    """Record digests with ``python`` in a process started from an empty folder."""
    folder = tempfile.mkdtemp(prefix="medcode-parity-")
    return subprocess.Popen([python, "-c", RECORD, str(listing), str(target)], cwd=folder)


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """How the per-note digests of two runs differ."""
    identical, scores_only, differing = 0, 0, []
    largest = 0.0
    for note, old in before.items():
        new = after.get(note)
        if new is None:
            differing.append({"note": note, "what": "missing"})
            continue
        if old["digest"] == new["digest"]:
            identical += 1
            continue
        same_codes = all([r[:2] for r in old[k]] == [r[:2] for r in new[k]]
                         for k in ("codes", "excluded", "consider"))
        gap = max((abs(a[2] - b[2]) for k in ("codes", "excluded", "consider")
                   for a, b in zip(old[k], new[k], strict=False)), default=0.0)
        if same_codes and gap <= TOLERANCE:
            scores_only += 1
            largest = max(largest, gap)
            continue
        differing.append({
            "note": note,
            "what": "codes" if not same_codes else f"scores (max gap {gap:.2g})",
            "codes_before": [f"{s}:{c}:{v}" for s, c, v in old["codes"]],
            "codes_after": [f"{s}:{c}:{v}" for s, c, v in new["codes"]],
        })
    return {"notes": len(before), "identical": identical,
            "same_codes_scores_within_1e-6": scores_only, "largest_score_gap": largest,
            "other_differences": len(differing), "differences": differing}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser(__doc__)
    args.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args.add_argument("--notes", type=int, default=1000)
    args.add_argument("--baseline-python", default=None)
    args.add_argument("--baseline-digests", type=Path, default=None)
    args.add_argument("--digests-dir", type=Path, default=None)
    args.add_argument("--output", type=Path, default=RESULTS / "parity.json")
    options = args.parse_args(argv)
    if (options.baseline_python is None) == (options.baseline_digests is None):
        raise SystemExit("give one of --baseline-python or --baseline-digests")
    if not options.data.is_dir():
        raise SystemExit(f"data set not found: {options.data} (see ../shared/data/README.md)")
    folder = options.digests_dir or Path(tempfile.mkdtemp(prefix="medcode-parity-"))
    folder.mkdir(parents=True, exist_ok=True)
    listing = folder / "notes.json"
    paths = [str(p) for p in sorted(options.data.glob("*.txt"))[: options.notes]]
    listing.write_text(json.dumps(paths), encoding="utf-8")
    started = time.perf_counter()
    runs = {"current": start(sys.executable, listing, folder / "current.json")}
    if options.baseline_python:
        runs["baseline"] = start(options.baseline_python, listing, folder / "baseline.json")
    for name, process in runs.items():
        if process.wait() != 0:
            raise SystemExit(f"the {name} run failed ({process.returncode})")
    current = json.loads((folder / "current.json").read_text(encoding="utf-8"))
    baseline_file = options.baseline_digests or folder / "baseline.json"
    baseline = json.loads(Path(baseline_file).read_text(encoding="utf-8"))
    report = {
        "notes": len(paths),
        "baseline_package": baseline["package"],
        "current_package": current["package"],
        "coding_cpu_seconds": {"baseline": round(baseline["cpu_seconds"], 1),
                               "current": round(current["cpu_seconds"], 1)},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "digests": str(folder),
        **compare(baseline["notes"], current["notes"]),
    }
    write_json(options.output, report)
    print(json.dumps({k: v for k, v in report.items() if k != "differences"}, indent=2))
    return report


if __name__ == "__main__":
    main()
