"""Site adaptation: a site model trained on part of a coded set, scored on the rest.

Seeded k-fold cross-validation over one coded JSONL set (CMC 2007 radiology dev by default).
For each fold the site model (:mod:`medcode_nlp.training.site_model`) is trained on the other
folds and codes the held-out notes; beside it, in the same run and on the same folds: a
one-vs-rest logistic regression on TF-IDF word 1-2 grams (threshold chosen in the training
folds the same way, and at the default 0.5), the shipped coder alone, and site-model variants
(:data:`VARIANTS`: the previous site model site-0.3.0, and the default's classifiers with
its global threshold only). Scored: micro P/R/F1
over required ICD-10-CM codes (a kept optional code is neither a hit nor a false positive;
external causes V00-Y99 ignored on both sides), all folds pooled, with 95% bootstrap
intervals over notes. Nothing is tuned on the held-out fold.

    python -m benchmarks.site_adaptation                      # CMC dev
    python -m benchmarks.site_adaptation --seed 7             # another fold split
    python -m benchmarks.site_adaptation --data mtsamples     # MTSamples dev
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, shared_data
from medcode_nlp.evaluation.metrics import prf

SHARED = shared_data()
DATA = {"cmc": SHARED / "cmc2007-radiology" / "dev.jsonl",
        "mtsamples": SHARED / "usnotes-mtsamples" / "dev.jsonl"}
SYSTEM = "icd10cm"
#: Site-model variants fitted on the same folds: the default and the previous default
#: (site-0.3.0: no per-code pass-through of the base coder's extra codes, no fallback, no
#: union with or deferral to the base coder's label codes, no post-posed uncertainty scopes).
VARIANTS: dict[str, dict[str, Any]] = {
    "site_model": {},
    "site_model_0_3_0": {"version": "site-0.3.0", "code_passthrough": False,
                         "fallback": False, "union": False, "backward": False,
                         "defer": False},
}


def _scored(code: tuple[str, str]) -> bool:
    """Counted in the score: ICD-10-CM, not an external cause (V00-Y99)."""
    return code[0] == SYSTEM and code[1][:1].upper() not in "VWXY"


def _keys(codes: Any) -> set[str]:
    from medcode_nlp.codesets.registry import code_key

    return {f"{s}|{code_key(c)}" for s, c in codes if _scored((s, c))}


def _eval_notes(notes: list[Any]) -> list[Any]:
    from medcode_nlp.training.site_model import CodedNote

    return [CodedNote(n.id, n.text, frozenset(c for c in n.required if _scored(c)),
                      frozenset(c for c in n.optional if _scored(c))) for n in notes]


def _prf(per_note: list[tuple[int, int, int]], rows: np.ndarray | None = None) -> dict[str, float]:
    counts = np.array(per_note)[rows] if rows is not None else np.array(per_note)
    tp, fp, n_gold = (int(v) for v in counts.sum(axis=0))
    p, r, f = prf(tp, fp, n_gold - tp)[:3]
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "gold": n_gold}


def _report(per_note: list[tuple[int, int, int]], seed: int, rounds: int = 1000
            ) -> dict[str, Any]:
    out: dict[str, Any] = {k: (round(v, 4) if isinstance(v, float) else v)
                           for k, v in _prf(per_note).items()}
    rng = np.random.default_rng(seed)
    samples = [_prf(per_note, rng.integers(0, len(per_note), len(per_note)))["f1"]
               for _ in range(rounds)]
    out["f1_ci95"] = [round(float(np.percentile(samples, q)), 4) for q in (2.5, 97.5)]
    return out


def _ovr_baseline(train: list[Any], test: list[Any], seed: int) -> tuple[list[set[str]],
                                                                       list[set[str]]]:
    """TF-IDF word 1-2 grams + one-vs-rest logistic regression: (tuned, default) predictions."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold
    from sklearn.multiclass import OneVsRestClassifier

    from medcode_nlp.training.site_model import choose_decision, kept_indexes

    labels = sorted({k for n in train for k in _keys(n.required | n.optional)})
    y = np.array([[int(k in _keys(n.required | n.optional)) for k in labels] for n in train])

    def fit(texts: list[str], targets: np.ndarray) -> Any:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        model = OneVsRestClassifier(LogisticRegression(C=10.0, solver="liblinear"))
        return vectorizer, model.fit(vectorizer.fit_transform(texts), targets)

    texts = [n.text for n in train]
    oof = np.zeros(y.shape)
    for inner_train, inner_test in KFold(3, shuffle=True, random_state=seed).split(texts):
        vectorizer, model = fit([texts[i] for i in inner_train], y[inner_train])
        oof[inner_test] = model.predict_proba(vectorizer.transform([texts[i] for i in inner_test]))
    threshold, floor, _ = choose_decision(oof, labels, _eval_notes(train))
    vectorizer, model = fit(texts, y)
    probs = model.predict_proba(vectorizer.transform([n.text for n in test]))
    tuned = [{labels[i] for i in row} for row in kept_indexes(probs, threshold, floor)]
    default = [{labels[i] for i in np.flatnonzero(row >= 0.5)} for row in probs]
    return tuned, default


def model_prompt(model: Any) -> str:
    """The prompt the site model puts on the codes it keeps."""
    return f"site model {model.version}"


def run(data: Path, folds: int, seed: int, cache_dir: Path, inner_folds: int = 3
        ) -> dict[str, Any]:
    """Cross-validate the site model, the OvR baseline and the shipped coder on one set."""
    from sklearn.model_selection import KFold

    import medcode_nlp
    from medcode_nlp.kb.cache import shared_kb
    from medcode_nlp.training.site_model import (
        code_notes,
        fit_site_model,
        micro_counts,
        read_coded_notes,
    )

    notes = read_coded_notes(data)
    coder = medcode_nlp.load()
    started = time.perf_counter()
    results = code_notes(coder, notes, cache_dir / f"{data.parent.name}-{data.stem}.jsonl")
    base_seconds = time.perf_counter() - started
    scored = _eval_notes(notes)
    systems = (*VARIANTS, "site_model_no_per_code_thresholds", "ovr_lr_tuned",
               "ovr_lr_default", "shipped_coder")
    predicted: dict[str, list[set[str]]] = {s: [set() for _ in notes] for s in systems}
    fold_meta = []
    no_evidence = dict.fromkeys(VARIANTS, 0)  # kept codes without a span, per variant
    for fold, (train, test) in enumerate(KFold(folds, shuffle=True, random_state=seed)
                                         .split(notes)):
        fit_seconds: dict[str, float] = {}
        for name, options in VARIANTS.items():
            started = time.perf_counter()
            model = fit_site_model([notes[i] for i in train], [results[i] for i in train],
                                   seed=seed, kb=shared_kb(), inner_folds=inner_folds,
                                   **options)
            fit_seconds[name] = round(time.perf_counter() - started, 1)
            for i in test:
                merged = model.apply(notes[i].text, results[i])
                no_evidence[name] += sum(1 for c in merged.codes
                                   if not c.evidence and c.prompts[:1] == [model_prompt(model)])
                predicted[name][i] = _keys((c.system, c.code) for c in merged.codes)
            if name == "site_model":  # the same classifiers with the global threshold only
                shipped, thresholds = model, model.meta["thresholds"]
                model.meta["thresholds"] = None
                for i in test:
                    predicted["site_model_no_per_code_thresholds"][i] = _keys(
                        (c.system, c.code) for c in model.apply(notes[i].text, results[i]).codes)
                model.meta["thresholds"] = thresholds
        for i in test:
            predicted["shipped_coder"][i] = _keys((c.system, c.code) for c in results[i].codes)
        model = shipped
        tuned, default = _ovr_baseline([notes[i] for i in train], [notes[i] for i in test], seed)
        for i, t, d in zip(test, tuned, default, strict=True):
            predicted["ovr_lr_tuned"][i], predicted["ovr_lr_default"][i] = t, d
        fold_meta.append({"fold": fold, "train": len(train), "test": len(test),
                          "fit_seconds": fit_seconds,
                          **{k: model.meta.get(k) for k in (
                              "threshold", "floor", "members", "base_weight", "passthrough",
                              "passthrough_codes", "fallback", "union", "deferred")},
                          "inner_micro_f1": model.meta["training"]["inner_micro_f1"]})
        logging.info("fold %d: %s", fold, fold_meta[-1])
    report: dict[str, Any] = {}
    for system in systems:
        per_note = [micro_counts([keys], [note]) for keys, note in
                    zip(predicted[system], scored, strict=True)]
        report[system] = _report(per_note, seed)
    return {"inner_folds": inner_folds, "data": str(data.relative_to(SHARED)) if data.is_relative_to(SHARED) else data.name,
            "notes": len(notes), "folds": folds, "seed": seed,
            "scope": "required ICD-10-CM codes; external causes V00-Y99 ignored; optional "
                     "codes neither hit nor false positive; all folds pooled",
            "base_coder_versions": coder.versions(), "base_coder_seconds": round(base_seconds, 1),
            "systems": report, "site_codes_without_evidence": no_evidence,
            "fold_details": fold_meta}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cmc", help="cmc, mtsamples or a coded JSONL file")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inner-folds", type=int, default=3,
                        help="folds inside each training part that choose C and thresholds")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/medcode_site_cache"))
    parser.add_argument("--out", type=Path,
                        default=RESULTS / "site_adaptation.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = DATA.get(args.data, Path(args.data))
    if not data.is_file():
        sys.exit(f"coded notes not found: {data}")
    report = run(data, args.folds, args.seed, args.cache_dir, args.inner_folds)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    name = args.data if args.data in DATA else data.stem
    results[name if args.seed == 0 else f"{name}_seed{args.seed}"] = report
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    for name, scores in report["systems"].items():
        print(f"{name:15s} P {scores['precision']:.3f} R {scores['recall']:.3f} "
              f"F1 {scores['f1']:.3f} {scores['f1_ci95']}")


if __name__ == "__main__":
    main()
