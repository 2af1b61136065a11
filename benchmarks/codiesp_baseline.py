"""CodiEsp dev benchmark of the TF-IDF k-nearest-documents baseline (issue 5, item 7).

Trains on CodiEsp train (English text), picks k on dev by MAP and the decision threshold on dev
by micro F1 (the protocol the ranker follows too, so the side-by-side is like for like), then
reports every metric of :func:`medcode_nlp.evaluation.report.evaluation_report` for diagnoses
(CodiEsp-D) and procedures (CodiEsp-P) and writes ``benchmarks/results/codiesp_baseline.json``.

    python -m benchmarks.codiesp_baseline [--data ../shared/data/codiesp] [--seed 0]

No note text is printed or saved: only metrics, counts and settings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, shared_data
from medcode_nlp.evaluation.baselines import TfidfKnnBaseline
from medcode_nlp.evaluation.calibration import calibration_pairs, reliability_diagram
from medcode_nlp.evaluation.datasets import (
    CODIESP_KINDS,
    GoldDocument,
    gold_codes,
    read_codiesp,
)
from medcode_nlp.evaluation.metrics import choose_threshold, mean_average_precision
from medcode_nlp.evaluation.report import (
    evaluation_report,
    format_report_table,
    write_codiesp_predictions,
)

DEFAULT_DATA = (
    shared_data() / "codiesp"
)
DEFAULT_OUT = RESULTS / "codiesp_baseline.json"
K_GRID = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100)


def run_kind(
    train: list[GoldDocument],
    dev: list[GoldDocument],
    kind: str,
    *,
    seed: int,
    n_bootstrap: int,
    k_grid: tuple[int, ...],
) -> tuple[dict[str, Any], dict[str, list[tuple[str, float]]]]:
    """Fit on train, tune k and threshold on dev, and report on dev for one CodiEsp kind."""
    model = TfidfKnnBaseline(group=kind).fit(train)
    gold = gold_codes(dev, kind)
    texts = [d.text for d in dev]
    k_scores: dict[int, float] = {}
    for k in k_grid:
        model.k = k
        pred = dict(zip(gold, model.predict(texts), strict=True))
        k_scores[k] = mean_average_precision(pred, gold)
    best_k = max(k_grid, key=lambda k: (k_scores[k], -k))  # ties: smaller k
    model.k = best_k
    pred = dict(zip(gold, model.predict(texts), strict=True))
    threshold = choose_threshold(pred, gold)
    report = evaluation_report(pred, gold, threshold, seed, n_bootstrap=n_bootstrap)
    result = {
        "model": "TfidfKnnBaseline",
        "params": {"k": best_k, "ngram_range": [1, 2], "sublinear_tf": True, "min_df": 1},
        "code_system": CODIESP_KINDS[kind][1],
        "tuned_on": "dev (k by MAP, threshold by micro F1)",
        "map_by_k": {str(k): round(v, 4) for k, v in k_scores.items()},
        "report": report,
    }
    return result, pred


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CodiEsp root folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--k-grid", default=",".join(map(str, K_GRID)))
    parser.add_argument(
        "--predictions-dir", type=Path, default=None,
        help="also write CodiEsp submission files (dev_D.tsv, dev_P.tsv) here",
    )
    parser.add_argument(
        "--plots-dir", type=Path, default=None, help="also write reliability diagrams here"
    )
    args = parser.parse_args(argv)
    k_grid = tuple(int(k) for k in args.k_grid.split(","))

    start = time.perf_counter()
    train = read_codiesp(args.data, "train")
    dev = read_codiesp(args.data, "dev")
    results: dict[str, Any] = {}
    for kind, (suffix, _system) in CODIESP_KINDS.items():
        result, pred = run_kind(
            train, dev, kind, seed=args.seed, n_bootstrap=args.n_bootstrap, k_grid=k_grid
        )
        results[kind] = result
        report = result["report"]
        title = f"CodiEsp-{suffix} dev, TF-IDF kNN baseline (k={result['params']['k']})"
        print(format_report_table(report, title=title))
        print("MAP by k:", result["map_by_k"], "\n")
        if args.predictions_dir:
            write_codiesp_predictions(pred, args.predictions_dir / f"dev_{suffix}.tsv", kind)
        if args.plots_dir and report["ece"] is not None:
            scores, labels = calibration_pairs(pred, gold_codes(dev, kind))
            reliability_diagram(
                scores, labels, args.plots_dir / f"codiesp_baseline_reliability_{suffix}.png",
                title=f"{title}\nECE {report['ece']:.3f}",
            )

    output = {
        "benchmark": "codiesp_baseline",
        "command": "python -m benchmarks.codiesp_baseline",
        "data": {
            "corpus": "CodiEsp v4 (CLEF eHealth 2020), English machine translation",
            "train_documents": len(train),
            "dev_documents": len(dev),
        },
        "protocol": (
            "fit on train; k and threshold tuned on dev; metrics on dev (optimistic by the "
            "tuning); codes compared after normalising case and dots"
        ),
        "published_best_f1": {"diagnosis": 0.687, "procedure": 0.522},
        "seed": args.seed,
        "runtime_seconds": round(time.perf_counter() - start, 1),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return output


if __name__ == "__main__":
    main()
