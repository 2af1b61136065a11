"""CodiEsp end-to-end report and ablations (issues 3, 4 and 5).

Runs, on the same CodiEsp split in one process:
- medcode_nlp as shipped (NER + context + ranker), inpatient guidelines (CodiEsp's case
  reports are mostly hospital stays), with the TF-IDF k-NN baseline beside it;
- the same with the outpatient guidelines (uncertain diagnoses not coded);
- the same without the assertion component (every mention taken as present, as CodiEsp's
  annotators coded): issue 4's before/after;
- the same without ICD-10-PCS partial codes (only full 7-character procedure codes);
- the trained NER without the dictionary matcher as recall aid, and the dictionary matcher
  instead of the trained NER: issue 3's end-to-end gain.
Writes benchmarks/results/codiesp_eval.json and the reliability diagrams to docs/img/.
Usage: python -m benchmarks.codiesp_eval [--split dev] [--kb DIR] [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.common import RESULTS, ROOT, shared_data

SHARED = shared_data()


def _summary(report: dict) -> dict:
    keep = ("map", "precision", "recall", "f1", "precision_at_5", "precision_at_10",
            "recall_at_10", "ece", "ece_above_threshold", "brier", "ci", "threshold")
    return {kind: {method: {k: r.get(k) for k in keep} for method, r in methods.items()}
            for kind, methods in report["systems"].items()}


def main() -> None:
    import medcode_nlp
    from medcode_nlp.evaluation.run import evaluate_codiesp_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev")
    parser.add_argument("--codiesp", default=str(SHARED / "codiesp"))
    parser.add_argument("--kb", default=None)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--setting", default="inpatient")
    parser.add_argument("--ablations", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", default=str(RESULTS / "codiesp_eval.json"))
    args = parser.parse_args()
    root = Path(args.codiesp)
    results: dict = {"command": "python -m benchmarks.codiesp_eval " + " ".join(
        f"--{k} {v}" for k, v in (("split", args.split), ("kb", args.kb),
                                  ("setting", args.setting)) if v)}
    started = time.time()
    coder = medcode_nlp.load(kb=args.kb, setting=args.setting)
    full = evaluate_codiesp_dir(root, args.split, coder=coder, n_bootstrap=args.bootstrap,
                                plot_dir=ROOT / "docs" / "img")
    print(full["table"])
    results["shipped"] = _summary(full)
    results["versions"] = full["versions"]
    if args.ablations:
        other = "outpatient" if args.setting == "inpatient" else "inpatient"
        coder.options.setting = other
        other_report = evaluate_codiesp_dir(root, args.split, coder=coder, baseline=False,
                                            n_bootstrap=args.bootstrap)
        print(f"{other} setting:\n" + other_report["table"])
        results[f"{other}_setting"] = _summary(other_report)
        coder.options.setting = args.setting
        no_context = evaluate_codiesp_dir(root, args.split, coder=coder, baseline=False,
                                          n_bootstrap=args.bootstrap, assertions="ignore")
        print("without assertion (context) component:\n" + no_context["table"])
        results["without_context"] = _summary(no_context)
        full_codes_only = evaluate_codiesp_dir(root, args.split, coder=coder, baseline=False,
                                               n_bootstrap=args.bootstrap, partial_codes=False)
        print("without ICD-10-PCS partial codes:\n" + full_codes_only["table"])
        results["without_partial_codes"] = _summary(full_codes_only)
        no_matcher = medcode_nlp.load(kb=args.kb, matcher="off", setting=args.setting)
        matcher_report = evaluate_codiesp_dir(root, args.split, coder=no_matcher,
                                              baseline=False, n_bootstrap=args.bootstrap)
        print("NER without the dictionary matcher as recall aid:\n" + matcher_report["table"])
        results["ner_without_dictionary_matcher"] = _summary(matcher_report)
        dictionary = medcode_nlp.load(kb=args.kb, ner="dictionary", setting=args.setting)
        dict_report = evaluate_codiesp_dir(root, args.split, coder=dictionary, baseline=False,
                                           n_bootstrap=args.bootstrap)
        print("dictionary matcher instead of NER:\n" + dict_report["table"])
        results["dictionary_matcher"] = _summary(dict_report)
    results["seconds"] = round(time.time() - started, 1)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
