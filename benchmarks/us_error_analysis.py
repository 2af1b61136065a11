"""Error analysis of ICD-10-CM coding on a coded set: failure kinds counted, two runs side by side.

Reads the gold JSONL (``usnotes-mtsamples/dev.jsonl`` format) and prediction files written by
``medcode evaluate coding GOLD --predictions-out FILE`` (or ``benchmarks/us_coding_eval.py``,
whose files are in ``benchmarks/results/tmp/``), one per run, and counts each false positive and
miss of the main list by kind. Prints a Markdown table (figures only, no note text).

Usage: python -m benchmarks.us_error_analysis GOLD.jsonl NAME=PREDICTIONS.jsonl [NAME=...]
       NAME=@DIR codes the gold notes with the medcode_nlp package of checkout DIR (a git
       worktree of an earlier commit, say) in a subprocess, each note in its own setting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

#: Kinds, in the order a code is tested against them.
KINDS = (
    ("specificity", "right category, wrong code (specificity, laterality, 7th character)"),
    ("symptom_fp", "symptom coded beside or instead of a diagnosis (false positive R, M25.5, M79.6)"),
    ("injury_fn", "injury missed (S/T code, no code of its category suggested)"),
    ("combination_fn", "combination code missed (E08-E13 with, I12/I13, J44.0/J44.1, J96, K80)"),
    ("history_status_fp", "history or status Z code not required (false positive Z8x/Z9x/Z7x)"),
    ("other_fn", "other diagnosis missed"),
    ("other_fp", "other false positive"),
)
_COMBINATION = ("E08.", "E09.", "E10.", "E11.", "E13.", "I12.", "I13.", "J44.0", "J44.1",
                "J96.", "K80.")


def _symptom(code: str) -> bool:
    return code.startswith(("R", "M25.5", "M79.6"))


def _external(code: str) -> bool:
    return code[:1] in "VWXY"


def classify(gold_rows: list[dict], predictions: dict[str, list[str]]) -> Counter[str]:
    """Counts of each failure kind over the notes, ICD-10-CM main list against required gold."""
    counts: Counter[str] = Counter()
    for row in gold_rows:
        codes = [c for c in row["codes"] if c["system"] == "icd10cm" and not _external(c["code"])]
        required = {c["code"] for c in codes if not c.get("optional")}
        optional = {c["code"] for c in codes if c.get("optional")}
        predicted = {c for c in predictions.get(row["id"], []) if not _external(c)} - optional
        false_positives, misses = predicted - required, required - predicted
        missed_categories = {c[:3] for c in misses}
        wrong_categories = {c[:3] for c in false_positives}
        counts["true_positive"] += len(predicted & required)
        for code in misses:
            if code[:3] in wrong_categories:
                counts["specificity"] += 1
            elif code[0] in "ST":
                counts["injury_fn"] += 1
            elif code.startswith(_COMBINATION):
                counts["combination_fn"] += 1
            else:
                counts["other_fn"] += 1
        for code in false_positives:
            if code[:3] in missed_categories:
                continue  # counted once, as the miss of its category
            if _symptom(code):
                counts["symptom_fp"] += 1
            elif code.startswith(("Z8", "Z9", "Z7")):
                counts["history_status_fp"] += 1
            else:
                counts["other_fp"] += 1
    return counts


def read_predictions(path: Path) -> dict[str, list[str]]:
    """Main-list ICD-10-CM codes per note of the coder (method ``medcode_nlp``)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text("utf-8").splitlines():
        row = json.loads(line)
        if row.get("method", "medcode_nlp") != "medcode_nlp":
            continue
        found[row["id"]] = [c["code"] for c in row["codes"]
                            if c["system"] == "icd10cm" and c.get("main", True)]
    return found


_CODE_NOTES = """
import json, sys
import medcode_nlp
coder = medcode_nlp.load()
for line in open(sys.argv[1], encoding="utf-8"):
    row = json.loads(line)
    result = coder(row["text"], setting=row.get("setting", "outpatient"))
    codes = [{"system": c.system, "code": c.code, "main": True} for c in result.codes]
    print(json.dumps({"method": "medcode_nlp", "id": row["id"], "codes": codes}))
"""


def code_with_checkout(gold: Path, checkout: Path) -> dict[str, list[str]]:
    """Main-list ICD-10-CM codes of the package in ``checkout`` (run in a subprocess)."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.pop("MEDCODE_MODELS", None)
    done = subprocess.run([sys.executable, "-c", _CODE_NOTES, str(gold.resolve())], cwd=checkout,
                          env=env, check=True, capture_output=True, text=True)
    found: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            found[row["id"]] = [c["code"] for c in row["codes"] if c["system"] == "icd10cm"]
    return found


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    gold_rows = [json.loads(line) for line in Path(argv[0]).read_text("utf-8").splitlines()]
    runs = {}
    for item in argv[1:]:
        name, _, path = item.partition("=")
        predictions = (code_with_checkout(Path(argv[0]), Path(path[1:])) if path.startswith("@")
                       else read_predictions(Path(path)))
        runs[name] = classify(gold_rows, predictions)
    names = list(runs)
    print("| failure kind | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for key, label in (("true_positive", "true positives (for scale)"), *KINDS):
        print(f"| {label} | " + " | ".join(str(runs[n][key]) for n in names) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
