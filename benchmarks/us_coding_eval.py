"""US-notes coding benchmark (issue 18): MTSamples and CMC 2007 radiology dev sets.

Runs ``medcode evaluate coding`` on each set in one process: the coder (shipped model by
default) and the TF-IDF one-vs-rest logistic-regression baseline, fitted out-of-fold on the set
itself (5 folds, seed 0), side by side; optionally a second ranker. Writes
benchmarks/results/us_coding_eval.json (figures only, no note text) and prints the tables and
a Markdown summary for docs/benchmarks.md.
Usage: python -m benchmarks.us_coding_eval [--kb DIR] [--compare-ranker DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, shared_data

SHARED = shared_data()
SETS = {
    "mtsamples": ("usnotes-mtsamples", "dev.jsonl"),
    "cmc2007": ("cmc2007-radiology", "dev.jsonl"),
}
KEYS = ("precision", "recall", "f1", "first_listed", "category_f1", "map")


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its text table (numbers and names only)."""
    return {k: v for k, v in report.items() if k not in ("table", "file", "predictions_out")}


def _fmt(metrics: dict[str, Any], key: str) -> str:
    if key not in metrics:
        return "-"
    ci = metrics.get("ci", {}).get(key)
    return f"{metrics[key]:.3f}" + (f" ({ci[0]:.2f}-{ci[1]:.2f})" if ci else "")


def markdown(results: dict[str, Any]) -> str:
    """One Markdown table: set x system x method, with bootstrap 95% intervals."""
    lines = ["| set | system | method | P | R | F1 (95% CI) | first-listed | category F1 | MAP |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, report in results["sets"].items():
        for method, per_method in report["methods"].items():
            for system, m in per_method["systems"].items():
                lines.append(f"| {name} | {system} | {method} | "
                             + " | ".join(_fmt(m, k) for k in KEYS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import medcode_nlp
    from medcode_nlp.evaluation.coding_run import evaluate_coded_notes

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--kb", default=None)
    parser.add_argument("--ranker", default=None, help="ranker directory (default: shipped)")
    parser.add_argument("--compare-ranker", default=None)
    parser.add_argument("--data", default=str(SHARED))
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--predictions-dir", default=str(RESULTS / "tmp"))
    parser.add_argument("--out", default=str(RESULTS
                                             / "us_coding_eval.json"))
    args = parser.parse_args(argv)
    started = time.time()
    coder = medcode_nlp.load(kb=args.kb, ranker=args.ranker)
    compare = (medcode_nlp.load(kb=args.kb, ranker=args.compare_ranker)
               if args.compare_ranker else None)
    loaded = time.time() - started
    results: dict[str, Any] = {
        "command": "python -m benchmarks.us_coding_eval " + " ".join(sys.argv[1:] if argv is None
                                                                    else argv),
        "versions": coder.versions(), "load_seconds": round(loaded, 1), "sets": {},
    }
    for name, (folder, filename) in SETS.items():
        path = Path(args.data) / folder / filename
        if not path.is_file():
            print(f"skipped {name}: {path} not found (see ../shared/data/README.md)")
            continue
        set_started = time.time()
        predictions = Path(args.predictions_dir) / f"us_coding_{name}.jsonl"
        report = evaluate_coded_notes(path, coder=coder, compare_coder=compare,
                                      folds=args.folds, seed=args.seed,
                                      n_bootstrap=args.bootstrap, predictions_out=predictions)
        print(f"== {name} ({report['notes']} notes)\n{report['table']}\n")
        results["sets"][name] = {**_summary(report), "seconds": round(time.time() - set_started,
                                                                         1)}
    results["seconds"] = round(time.time() - started, 1)
    results["markdown"] = markdown(results)
    print(results["markdown"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
