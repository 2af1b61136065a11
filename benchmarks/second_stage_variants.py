"""Document-stage (second-stage) recipes compared on the same saved rows, CodiEsp dev MAP.

    python -m medcode_nlp.training.train_ranker --kb /tmp/kb-train \\
        --index-kb /tmp/kb-train-no-index --save-document-rows /tmp/rows \\
        [--second-stage bagged --out /tmp/ranker]
    python -m benchmarks.second_stage_variants /tmp/rows [--variants ...] [--seeds 13 1 2]

``train_rows.npz`` holds the out-of-fold rows of CodiEsp train, ``dev_rows.npz`` the rows of
CodiEsp dev from the final mention ranker and note classifier, with the document features of
the run's recipe (every feature and the frequent-sibling candidates after ``--second-stage
bagged``; variants that need more are skipped). Each variant is fit on the train rows and ranks the
dev rows; MAP counts every gold code of a note (as ``medcode evaluate codiesp``), so codes
that never became candidates count as misses. Each variant is fit with several random
states (the early-stopping split moves a single model's MAP by about 0.005) and their mean is
reported beside each run. Trees are also timed on the dev rows (one thread, one note at a
time), since the document stage runs once per coded note. The two knowledge bases are the
ranker's training ones (``python -m benchmarks.kb_ranker_training``, see its docstring).

Writes ``benchmarks/results/second_stage_variants.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, shared_data
from medcode_nlp.evaluation.datasets import read_codiesp
from medcode_nlp.evaluation.metrics import mean_average_precision
from medcode_nlp.ranking.document_features import COMPACT_DOC_FEATURES, DOC_FEATURE_NAMES
from medcode_nlp.ranking.estimators import CodeRanker

SHARED = shared_data()
RESULTS = RESULTS / "second_stage_variants.json"
SIBLING = DOC_FEATURE_NAMES.index("category_sibling")
PCS_COLUMN = DOC_FEATURE_NAMES.index("system_icd10pcs")
N_COMPACT = len(COMPACT_DOC_FEATURES)

#: name -> (CodeRanker parameters, number of feature columns, keep sibling candidates)
VARIANTS: dict[str, tuple[dict[str, Any], int, bool]] = {
    "compact (shipped)": ({"calibration_cv": 3, "n_bags": 3, "max_features": 0.7,
                           "ensemble": False}, N_COMPACT, False),
    "compact, every feature per split": ({"calibration_cv": 3, "n_bags": 3,
                                          "ensemble": False}, N_COMPACT, False),
    "compact, learning rate 0.1, 150 iterations": ({"calibration_cv": 3, "n_bags": 3,
                                                    "max_features": 0.7, "ensemble": False,
                                                    "learning_rate": 0.1, "max_iter": 150},
                                                   N_COMPACT, False),
    "single (round 3)": ({"calibration_cv": 3}, N_COMPACT, False),
    "single, one tree set": ({"calibration_cv": 3, "ensemble": False}, N_COMPACT, False),
    "single, one model per code system": ({"calibration_cv": 3, "per_system": True},
                                          N_COMPACT, False),
    # these need rows of a ``--second-stage bagged`` run (every document feature)
    "bagged (round 4)": ({"calibration_cv": 3, "n_bags": 5, "max_features": 0.5},
                         len(DOC_FEATURE_NAMES), True),
    "bagged, one tree set each": ({"calibration_cv": 3, "n_bags": 5, "max_features": 0.5,
                                   "ensemble": False}, len(DOC_FEATURE_NAMES), True),
}
BASE = {"max_iter": 300, "learning_rate": 0.05, "l2_regularization": 1.0}


def load_rows(path: Path, columns: int, siblings: bool) -> dict[str, np.ndarray]:
    data = dict(np.load(path))
    has_siblings = data["X"].shape[1] > SIBLING
    keep = (data["X"][:, SIBLING] == 0 if has_siblings and not siblings
            else np.ones(len(data["y"]), dtype=bool))
    out = {k: v[keep] for k, v in data.items()}
    out["X"] = out["X"][:, :columns]
    return out


def dev_map(rows: dict[str, np.ndarray], scores: np.ndarray,
            gold: dict[str, dict[str, set[str]]]) -> dict[str, float]:
    """MAP per kind over the suggestable dev rows ranked by ``scores``."""
    out = {}
    for kind, system in (("diagnosis", "icd10cm"), ("procedure", "icd10pcs")):
        ranked: dict[str, list[tuple[str, float]]] = {}
        for doc, sys_, code, ok, score in zip(rows["doc"], rows["system"], rows["code"],
                                              rows["suggestable"], scores, strict=True):
            if sys_ == system and ok:
                ranked.setdefault(str(doc), []).append((str(code), float(score)))
        for codes in ranked.values():
            codes.sort(key=lambda c: (-c[1], c[0]))
        out[kind] = round(mean_average_precision(ranked, gold[kind]), 4)
    return out


class PerSystem:
    """One ranker per code system (the ``system_icd10pcs`` column splits the rows)."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.models: dict[bool, CodeRanker] = {}

    def fit(self, x: np.ndarray, y: np.ndarray) -> PerSystem:
        for value in (False, True):
            rows = (x[:, PCS_COLUMN] == 1) == value
            self.models[value] = CodeRanker(**self.params).fit(x[rows], y[rows])
        return self

    def score_pairs(self, x: np.ndarray) -> np.ndarray:
        scores = np.zeros(len(x))
        for value, model in self.models.items():
            rows = (x[:, PCS_COLUMN] == 1) == value
            if rows.any():
                scores[rows] = model.score_pairs(x[rows])
        return scores


def per_note_seconds(model: Any, rows: dict[str, np.ndarray]) -> float:
    """Mean seconds to score one dev note's rows (one thread, as at run time)."""
    docs = rows["doc"]
    starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
    bounds = list(zip(starts, [*starts[1:], len(docs)], strict=True))
    started = time.perf_counter()
    for a, b in bounds:
        model.score_pairs(rows["X"][a:b])
    return (time.perf_counter() - started) / len(bounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path, help="directory with train_rows.npz and dev_rows.npz")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="*", default=[13, 1, 2])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    dev_docs = read_codiesp(SHARED / "codiesp", "dev")
    gold = {kind: {d.id: set(d.codes.get(kind, set())) for d in dev_docs}
            for kind in ("diagnosis", "procedure")}
    saved_columns = np.load(args.rows / "train_rows.npz")["X"].shape[1]
    results = []
    for name in args.variants:
        params, columns, siblings = VARIANTS[name]
        if columns > saved_columns:
            print(f"{name}: skipped, the saved rows have {saved_columns} features", flush=True)
            continue
        train = load_rows(args.rows / "train_rows.npz", columns, siblings)
        dev = load_rows(args.rows / "dev_rows.npz", columns, siblings)
        options = {k: v for k, v in params.items() if k != "per_system"}
        for seed in args.seeds:
            started = time.perf_counter()
            estimator = {**BASE, **options, "random_state": seed}
            model: Any = (PerSystem(estimator) if params.get("per_system")
                          else CodeRanker(**estimator))
            model.fit(train["X"], train["y"])
            fit_seconds = time.perf_counter() - started
            result = {"variant": name, "seed": seed, "params": {**BASE, **params},
                      "features": columns, "siblings": siblings,
                      "train_rows": len(train["y"]), "dev_rows": len(dev["y"]),
                      "dev_map": dev_map(dev, model.score_pairs(dev["X"]), gold),
                      "fit_seconds": round(fit_seconds, 1),
                      "ms_per_note": round(1000 * per_note_seconds(model, dev), 2)}
            print(json.dumps(result), flush=True)
            results.append(result)
    summary = {}
    for name in dict.fromkeys(r["variant"] for r in results):
        runs = [r for r in results if r["variant"] == name]
        summary[name] = {kind: round(float(np.mean([r["dev_map"][kind] for r in runs])), 4)
                         for kind in ("diagnosis", "procedure")}
        summary[name]["ms_per_note"] = round(float(np.mean([r["ms_per_note"] for r in runs])), 2)
        print(name, summary[name], flush=True)
    args.out.write_text(json.dumps({"rows": str(args.rows), "seeds": args.seeds,
                                    "mean_over_seeds": summary, "results": results},
                                   indent=1) + "\n")


if __name__ == "__main__":
    main()
