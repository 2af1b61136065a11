"""ConText test-kit benchmark of the assertion components (issue 4, item 3).

Runs :func:`medcode_nlp.evaluation.context.evaluate_context` (``medcode_sections`` +
``medcode_context`` on ``spacy.blank("en")``) on the test kit's dev half, writes
``benchmarks/results/context_eval.json`` and prints the table with the issue's thresholds.

    python -m benchmarks.context_eval [--data ../shared/data/context-testkit/dev.tsv]

No note text is printed or saved: only metrics, counts and row ids.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.common import RESULTS, shared_data
from medcode_nlp.evaluation.context import (
    evaluate_context,
    format_context_report,
    read_context_testkit,
)

DEFAULT_DATA = shared_data() / "context-testkit" / "dev.tsv"
THRESHOLDS = {
    ("negation", "Negated"): 0.95,
    ("temporality", "Historical"): 0.75,
    ("temporality", "Hypothetical"): 0.90,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "context_eval.json"
    )
    args = parser.parse_args(argv)

    rows = read_context_testkit(args.data)
    started = time.perf_counter()
    report = evaluate_context(None, rows)
    seconds = time.perf_counter() - started
    checks = {
        f"F1({label})>={limit}": report[dim]["classes"][label]["f1"] >= limit
        for (dim, label), limit in THRESHOLDS.items()
    }
    result = {
        "data": str(args.data.name),
        "pipeline": ["tokenizer: spacy.blank('en')", "medcode_sections", "medcode_context"],
        "seconds": round(seconds, 3),
        "rows_per_second": round(len(rows) / seconds, 1) if seconds else None,
        "thresholds_met": checks,
        **report,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(format_context_report(report))
    for name, ok in checks.items():
        print(f"{name}: {'met' if ok else 'NOT met'}")
    print(f"{len(rows)} rows in {seconds:.2f} s; results written to {args.out}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
