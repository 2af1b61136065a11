"""Accuracy and speed of the shipped NER model (models/ner).

* BC5CDR test set (500 abstracts, PubTator): exact-match P/R/F1 per label and micro,
  PROBLEM + DRUG against Disease + Chemical (PROCEDURE predictions are not scored).
* NCBI Disease test set (IOB): PROBLEM against Disease.
* Load time of the model (``spacy.load``, first load in this process).
* Speed with ``nlp.pipe`` on one core (single-threaded BLAS) on the BC5CDR test abstracts and
  the CodiEsp dev case reports, next to a blank spaCy English tokenizer on the same texts in the
  same run (the upper bound). Best of ``--repeats`` runs.

Run from the project root:  python -m benchmarks.ner_eval [--data ../shared/data]
Writes benchmarks/results/ner_eval.json and prints a table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import spacy  # noqa: E402

from benchmarks.common import ROOT, shared_data  # noqa: E402
from medcode_nlp.evaluation.ner import (  # noqa: E402
    DISEASE_LABEL_MAP,
    evaluate_ner,
    read_conll,
    read_pubtator,
)


def _speed(nlp: Any, texts: list[str], repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` throughput of ``nlp.pipe`` over ``texts``.

    ``*_per_cpu_s`` divides by the CPU time of this (single-threaded) process, which is what one
    core delivers even when other jobs share the machine; ``*_per_s`` divides by wall time.
    """
    wall = cpu = float("inf")
    tokens = 0
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        tokens = sum(len(doc) for doc in nlp.pipe(texts, batch_size=256))
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - cpu_start)
    words = sum(len(t.split()) for t in texts)
    return {
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "tokens": tokens,
        "words": words,
        "tokens_per_cpu_s": round(tokens / cpu),
        "words_per_cpu_s": round(words / cpu),
        "tokens_per_s": round(tokens / wall),
        "words_per_s": round(words / wall),
    }


def _round(result: dict[str, Any]) -> dict[str, Any]:
    def r(d: dict[str, Any]) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}

    out = dict(result)
    out["labels"] = {k: r(v) for k, v in result["labels"].items()}
    out["micro"] = r(result["micro"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data())
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "ner")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ner_eval.json")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    start, cpu_start = time.perf_counter(), time.process_time()
    nlp = spacy.load(args.model)
    load_seconds = time.perf_counter() - start
    load_cpu_seconds = time.process_time() - cpu_start
    reload_seconds = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        spacy.load(args.model)
        reload_seconds = min(reload_seconds, time.perf_counter() - start)

    bc5cdr = read_pubtator(args.data / "bc5cdr" / "CDR_TestSet.PubTator.txt")
    ncbi = read_conll(args.data / "ncbi-disease" / "test.tsv")
    results: dict[str, Any] = {
        "model": str(
            args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model
        ),
        "model_version": nlp.meta.get("version"),
        # first spacy.load in the process: also imports every installed spacy_factories
        # entry point (spaCy does that when it creates the first Language)
        "load_seconds": round(load_seconds, 3),
        "load_cpu_seconds": round(load_cpu_seconds, 3),
        # later loads: the model files alone
        "reload_seconds": round(reload_seconds, 3),
        "bc5cdr_test": _round(evaluate_ner(nlp, bc5cdr)),
        "ncbi_disease_test": _round(evaluate_ner(nlp, ncbi, DISEASE_LABEL_MAP)),
    }

    corpora = {"bc5cdr_test_abstracts": [text for text, _ in bc5cdr]}
    dev_dir = args.data / "codiesp" / "dev" / "text_files_en"
    if dev_dir.exists():
        corpora["codiesp_dev_case_reports"] = [
            p.read_text(encoding="utf-8") for p in sorted(dev_dir.glob("*.txt"))
        ]
    blank = spacy.blank("en")
    speed: dict[str, Any] = {}
    for name, texts in corpora.items():
        speed[name] = {
            "ner_pipeline": _speed(nlp, texts, args.repeats),
            "blank_spacy_tokenizer": _speed(blank, texts, args.repeats),
        }
    results["speed"] = speed
    results["environment"] = {
        "python": platform.python_version(),
        "spacy": spacy.__version__,
        "machine": platform.machine(),
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
        "note": "one process, single-threaded BLAS, nlp.pipe(batch_size=256), best of repeats; "
        "words = whitespace-separated words, tokens = tokens of each pipeline's tokenizer",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    print(
        f"model {results['model']} v{results['model_version']}: first load {load_seconds:.2f}s "
        f"({load_cpu_seconds:.2f}s CPU), later loads {reload_seconds:.2f}s"
    )
    print(f"{'set':22} {'label':10} {'P':>6} {'R':>6} {'F1':>6} {'support':>8}")
    for key in ("bc5cdr_test", "ncbi_disease_test"):
        res = results[key]
        for label, m in [*res["labels"].items(), ("micro", res["micro"])]:
            print(
                f"{key:22} {label:10} {100 * m['p']:6.2f} {100 * m['r']:6.2f} "
                f"{100 * m['f']:6.2f} {m['support']:8d}"
            )
    print(f"{'speed, one core':40} {'tokens/cpu-s':>12} {'words/cpu-s':>12} {'words/wall-s':>12}")
    for name, s in speed.items():
        for what, m in s.items():
            print(
                f"{name[:24]:24} {what[:15]:15} {m['tokens_per_cpu_s']:12d} "
                f"{m['words_per_cpu_s']:12d} {m['words_per_s']:12d}"
            )


if __name__ == "__main__":
    main()
