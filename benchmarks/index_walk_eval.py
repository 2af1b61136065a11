"""Index walk vs similarity search on the gold evidence quotes of coded US notes (issue 18).

For every ICD-10-CM gold code of ``usnotes-mtsamples/dev.jsonl`` that has an ``evidence``
quote, the quote is looked up (a) by walking the Alphabetic Index tree
(:class:`~medcode_nlp.codesets.icd10cm_index_tree.IndexTree`, context = the sentence(s) of
the note holding the quote), (b) by the n-gram similarity search of ``medcode search``,
(c) by the same search re-ordered by the shipped term ranker (``medcode search --ranked``),
and (d) by the walk with the search filling the places it leaves empty. Every method's codes go
through the same :func:`complete_code` (dash dropped, unspecified child, 7th character
``A`` when one is needed), duplicates removed, before scoring acc@1 and recall@5, on the
exact code and on the 3-character category.

Writes benchmarks/results/index_walk_eval.json (figures only; no note text or quote).
Usage: python -m benchmarks.index_walk_eval [--data FILE] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, ROOT, shared_data

DATA = shared_data() / "usnotes-mtsamples" / "dev.jsonl"
OUT = RESULTS / "index_walk_eval.json"
TOP = 5
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=[A-Z ]{3,}:)")


def sentence_context(text: str, quote: str) -> str:
    """The sentence(s) of ``text`` that hold ``quote`` ('' when the quote is not found)."""
    start = text.lower().find(quote.lower())
    if start < 0:
        return ""
    end = start + len(quote)
    bounds = [0, *(m.end() for m in _SENTENCE_END.finditer(text)), len(text)]
    left = max(b for b in bounds if b <= start)
    right = min((b for b in bounds if b >= end), default=len(text))
    return text[left:right]


def items(path: Path) -> list[dict[str, str]]:
    """(gold code, quote, context) for each ICD-10-CM gold code with an evidence quote."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            note = json.loads(line)
            for gold in note.get("codes", []):
                quote = (gold.get("evidence") or "").strip()
                if gold.get("system") == "icd10cm" and quote:
                    rows.append({"gold": gold["code"], "quote": quote,
                                 "context": sentence_context(note["text"], quote),
                                 "optional": bool(gold.get("optional"))})
    return rows


def finish(kb: Any, codes: list[str]) -> list[str]:
    """Codes completed to FY2026 billable form (7th character A), duplicates removed."""
    from medcode_nlp.codesets.icd10cm_index_tree import complete_code

    done: list[str] = []
    for code in codes:
        full = complete_code(kb, code)
        if full is None:
            continue
        entry = kb.get("icd10cm", full)
        if entry is None or not entry.billable:
            with_a = full + "A"
            if kb.get("icd10cm", with_a) is not None:
                full = with_a
        if full not in done:
            done.append(full)
    return done


def score(golds: list[str], predictions: list[list[str]]) -> dict[str, float]:
    """acc@1 and recall@5, exact code and 3-character category."""
    n = len(golds)

    def rate(hits: int) -> float:
        return round(hits / n, 4) if n else 0.0

    return {
        "acc@1": rate(sum(bool(p) and p[0] == g for g, p in zip(golds, predictions, strict=True))),
        "recall@5": rate(sum(g in p[:TOP] for g, p in zip(golds, predictions, strict=True))),
        "category_acc@1": rate(sum(bool(p) and p[0][:3] == g[:3]
                                   for g, p in zip(golds, predictions, strict=True))),
        "category_recall@5": rate(sum(g[:3] in {c[:3] for c in p[:TOP]}
                                      for g, p in zip(golds, predictions, strict=True))),
        "empty": rate(sum(not p for p in predictions)),
    }


def main(argv: list[str] | None = None) -> None:
    from medcode_nlp.codesets.icd10cm_index_tree import IndexTree
    from medcode_nlp.kb.search import search_terms
    from medcode_nlp.kb.store import load_kb
    from medcode_nlp.ranking.model import load_default_ranker

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = items(args.data)
    kb = load_kb()
    tree = IndexTree.load()
    golds = [r["gold"] for r in rows]
    quotes = [r["quote"] for r in rows]
    timings: dict[str, float] = {}
    predictions: dict[str, list[list[str]]] = {}

    started = time.perf_counter()
    walked = [[h.code for h in tree.walk(r["quote"], r["context"], limit=TOP * 2)] for r in rows]
    timings["index walk"] = time.perf_counter() - started
    predictions["index walk"] = [finish(kb, codes)[:TOP] for codes in walked]
    started = time.perf_counter()
    walked_quote = [[h.code for h in tree.walk(q, "", limit=TOP * 2)] for q in quotes]
    timings["index walk, no context"] = time.perf_counter() - started
    predictions["index walk, no context"] = [finish(kb, c)[:TOP] for c in walked_quote]
    try:  # the coder's completion: side, episode and displacement from the sentence
        from medcode_nlp.nlp.tabular_completion import complete as sentence_complete
    except ImportError:
        sentence_complete = None
    if sentence_complete is not None:
        completed = []
        for r, codes in zip(rows, walked, strict=True):
            text = f"{r['quote']} {r['context']}"
            done = [c for c in (sentence_complete(kb, code, text) for code in codes) if c]
            completed.append(list(dict.fromkeys(done))[:TOP])
        predictions["index walk, sentence-aware completion"] = completed

    started = time.perf_counter()
    found = search_terms(quotes, ["icd10cm"], TOP * 2)
    timings["similarity search"] = time.perf_counter() - started
    predictions["similarity search"] = [finish(kb, [c["code"] for c in f])[:TOP] for f in found]
    ranker = load_default_ranker()
    started = time.perf_counter()
    ranked = search_terms(quotes, ["icd10cm"], TOP * 2, None, ranker)
    timings["similarity search, ranked"] = time.perf_counter() - started
    predictions["similarity search, ranked"] = [
        finish(kb, [c["code"] for c in f])[:TOP] for f in ranked]
    predictions["index walk + ranked search fill"] = [
        finish(kb, [*w, *s])[:TOP]
        for w, s in zip(predictions["index walk"], predictions["similarity search, ranked"],
                        strict=True)]

    required = [i for i, r in enumerate(rows) if not r["optional"]]
    not_z = [i for i, r in enumerate(rows) if not r["gold"].startswith("Z")]
    results: dict[str, Any] = {
        "data": str(args.data.relative_to(ROOT.parent)) if args.data.is_relative_to(ROOT.parent)
        else args.data.name,
        "items": len(rows),
        "required_items": len(required),
        "not_z_items": len(not_z),
        "notes": "gold ICD-10-CM codes with an evidence quote; context = the quote's sentence",
        "index_tree": tree.provenance.get("files", {}),
        "kb": kb.systems_info().get("icd10cm", {}).get("version"),
        "methods": {},
    }
    for method, predicted in predictions.items():
        results["methods"][method] = {
            "all": score(golds, predicted),
            "required": score([golds[i] for i in required], [predicted[i] for i in required]),
            "not_z": score([golds[i] for i in not_z], [predicted[i] for i in not_z]),
            "seconds": round(timings.get(method, 0.0), 2),
        }
    # Failure kinds of the walk (counts only).
    kinds: Counter[str] = Counter()
    for gold, codes, predicted in zip(golds, walked, predictions["index walk"], strict=True):
        if not codes:
            kinds["no main term / no hit"] += 1
        elif predicted and predicted[0] == gold:
            kinds["top-1 exact"] += 1
        elif gold in predicted:
            kinds["exact in top-5, not first"] += 1
        elif predicted and predicted[0][:3] == gold[:3]:
            kinds["right category, wrong code"] += 1
        else:
            kinds["wrong category"] += 1
    results["walk_outcomes"] = dict(kinds.most_common())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"{len(rows)} gold codes with evidence ({len(required)} required, "
          f"{len(not_z)} outside chapter Z)")
    print("| method | acc@1 | recall@5 | category acc@1 | category recall@5 | no code "
          "| acc@1 / recall@5 outside Z | s |")
    print("|---|---|---|---|---|---|---|---|")
    for method, m in results["methods"].items():
        a, z = m["all"], m["not_z"]
        print(f"| {method} | {a['acc@1']:.3f} | {a['recall@5']:.3f} | {a['category_acc@1']:.3f} "
              f"| {a['category_recall@5']:.3f} | {a['empty']:.3f} "
              f"| {z['acc@1']:.3f} / {z['recall@5']:.3f} | {m['seconds']} |")
    print(json.dumps(results["walk_outcomes"]))


if __name__ == "__main__":
    main()
