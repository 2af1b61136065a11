"""How many gold BC5CDR mentions fall on token boundaries, per tokenizer option.

A mention is misaligned when ``doc.char_span(start, end)`` is None (strict alignment): such a
mention can never be predicted exactly by a token-based NER. Run from the project root:

    python -m benchmarks.tokenizer_alignment [--data ../shared/data]

Writes benchmarks/results/tokenizer_alignment.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import spacy
from spacy.language import Language

from benchmarks.common import ROOT, shared_data
from medcode_nlp.evaluation.ner import read_pubtator
from medcode_nlp.nlp.tokenizer import create_clinical_tokenizer

FILES = (
    "CDR_TrainingSet.PubTator.txt",
    "CDR_DevelopmentSet.PubTator.txt",
    "CDR_TestSet.PubTator.txt",
)


def _scispacy(nlp: Language) -> Language:
    from scispacy.custom_tokenizer import combined_rule_tokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.tokenizer = combined_rule_tokenizer(nlp)
    return nlp


OPTIONS: dict[str, Callable[[Language], Language]] = {
    "spacy_default": lambda nlp: nlp,
    "scispacy_combined_rule": _scispacy,
    "medcode_clinical (chosen)": create_clinical_tokenizer,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data())
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/tokenizer_alignment.json"
    )
    args = parser.parse_args()
    examples = [ex for name in FILES for ex in read_pubtator(args.data / "bc5cdr" / name)]
    n_spans = sum(len(spans) for _, spans in examples)
    results: dict[str, dict[str, float | int]] = {}
    for name, make in OPTIONS.items():
        nlp = make(spacy.blank("en"))
        start = time.perf_counter()
        docs = list(nlp.pipe(text for text, _ in examples))
        seconds = time.perf_counter() - start
        bad = sum(
            doc.char_span(s, e) is None
            for doc, (_, spans) in zip(docs, examples, strict=True)
            for s, e, _ in spans
        )
        results[name] = {
            "mentions": n_spans,
            "misaligned": bad,
            "misaligned_pct": round(100 * bad / n_spans, 3),
            "tokens": sum(len(d) for d in docs),
            "seconds": round(seconds, 2),
        }
    report = {
        "corpus": "BC5CDR train+dev+test (1,500 abstracts, Chemical+Disease)",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{'tokenizer':28} {'mentions':>9} {'misaligned':>10} {'%':>7} {'tokens':>8}")
    for name, r in results.items():
        print(
            f"{name:28} {r['mentions']:>9} {r['misaligned']:>10} "
            f"{r['misaligned_pct']:>7.2f} {r['tokens']:>8}"
        )


if __name__ == "__main__":
    main()
