"""Bounded cost: time of one ``coder(text)`` call against the length and shape of the note.

    python -m benchmarks.bounded_cost [--sizes 1000 10000 100000 1000000]
        [--pathological-sizes 100000 1000000] [--repeats 3] [--max-ratio 3.0]
        [--max-linear-ratio 2.0] [--ner dictionary] [--output PATH]

Loads the default coder (``medcode_nlp.load()``: shipped NER and ranker) once, then times
``coder(text)`` on

* *normal* notes: the project's example notes (``examples/*.txt``) concatenated, each note
  whole, in a fixed shuffled order, until the length is reached (cut at exactly that length);
* *pathological* notes of the same lengths: one token of letters with no space at all,
  ``"no "`` repeated, one giant bulleted list (``"- item"`` lines), repeated punctuation,
  the normal note on a single line (line breaks turned into spaces), nothing but section
  headers (every header wording of the packaged section rules, one per line, with a colon),
  and two lists dense in mentions with no full stop, so that the whole note is one sentence:
  a bulleted problem list and ``"no <finding>"`` repeated (a review of systems on one line).

Each input is timed ``--repeats`` times (once above 100,000 characters) and the fastest run
is kept. Wall-clock and CPU seconds of the process are both recorded; the ratios use CPU
seconds, which move less with other people's work on a shared machine. Numeric libraries
run on one thread (``OMP_NUM_THREADS`` etc. default to 1; set them to measure otherwise).
Cost grows with the length and with the number of mentions found, so an input holding more
mentions than the normal note of its length is compared with a normal note holding as many
mentions (its cost scaled by the ratio of mentions): the *adjusted* ratio.

Bound checked (the exit status is 1 when it is broken):

* no pathological input costs more than ``--max-ratio`` times the normal note of the same
  length, or, when it holds more mentions, times a normal note with as many mentions
  (adjusted ratio);
* time is about linear in the length: the CPU time per character of the largest normal note
  is at most ``--max-linear-ratio`` times that of the 10,000-character one.

Writes ``benchmarks/results/bounded_cost.json``; the note texts are never written or printed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import re
import resource
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, ROOT

EXAMPLES = ROOT / "examples"
RESULTS = RESULTS / "bounded_cost.json"
DEFAULT_SIZES = [1_000, 10_000, 100_000, 1_000_000]
DEFAULT_PATHOLOGICAL_SIZES = [100_000, 1_000_000]
LINEAR_BASE = 10_000  # per-character time of this normal note is the linearity reference

# One thread, as in a batch worker: on a busy 2-core machine the ranker's OpenMP threads
# spin-wait on each other and a 1,000-character note then costs seconds instead of 0.06 s.
# Set before numpy, scikit-learn and thinc are imported (in main).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _variable in THREAD_VARIABLES:
    os.environ.setdefault(_variable, "1")


# ------------------------------------------------------------------------------ inputs
PROBLEMS = ("hypertension", "type 2 diabetes mellitus", "chronic kidney disease stage 3",
            "congestive heart failure", "COPD", "atrial fibrillation", "hyperlipidemia",
            "history of colon cancer", "osteoarthritis of the right knee", "GERD")
FINDINGS = ("fever", "chills", "chest pain", "cough", "dyspnea", "nausea", "vomiting",
            "headache", "rash", "edema", "syncope", "palpitations")
def example_notes(directory: Path = EXAMPLES) -> list[str]:
    """The project's example notes (project-written text)."""
    notes = [p.read_text(encoding="utf-8").strip() for p in sorted(directory.glob("*.txt"))]
    if not notes:
        raise SystemExit(f"no example notes in {directory}")
    return notes


def repeat_to(unit: str, length: int) -> str:
    """``unit`` repeated and cut to exactly ``length`` characters."""
    return (unit * (length // len(unit) + 1))[:length]


def normal_note(notes: list[str], length: int, seed: int = 0) -> str:
    """Whole example notes in shuffled order, separated by blank lines, cut to ``length``."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < length:
        batch = notes[:]
        rng.shuffle(batch)
        for note in batch:
            parts.append(note + "\n\n")
            total += len(note) + 2
    return "".join(parts)[:length]


def header_lines() -> str:
    """Every header wording of the packaged section rules, upper case, one per line."""
    from medcode_nlp.nlp.components.sections import load_section_rules

    wordings = sorted(load_section_rules().headers)
    return "".join(f"{w.upper()}:\n" for w in wordings)


def pathological_inputs(notes: list[str]) -> dict[str, tuple[str, Callable[[int], str]]]:
    """name -> (description, builder of a note of a given length)."""
    letters = re.sub(r"[^A-Za-z]", "", "".join(notes))
    headers = header_lines()
    problems = "".join(f"- {item}\n" for item in PROBLEMS)
    negated = "".join(f"no {finding} " for finding in FINDINGS)
    return {
        "long_token": ("one token, letters only, no space",
                       lambda n: repeat_to(letters, n)),
        "no_repeated": ('"no " repeated (33,334x at 100k, 333,334x at 1M)',
                        lambda n: repeat_to("no ", n)),
        "bullet_list": ('one bulleted list, "- item" lines', lambda n: repeat_to("- item\n", n)),
        "punctuation": ('"!!!!....----????" repeated, no space',
                        lambda n: repeat_to("!!!!....----????", n)),
        "single_line": ("the normal note with line breaks turned into spaces",
                        lambda n: re.sub(r"\r?\n", " ", normal_note(notes, n))),
        "section_headers": (f"only section headers ({len(headers.splitlines())} wordings, "
                            "one per line, colon)", lambda n: repeat_to(headers, n)),
        "problem_list": ("one bulleted list of problems, no full stop (~3x the mentions of "
                         "a normal note)", lambda n: repeat_to(problems, n)),
        "negated_list": ('"no <finding>" repeated on one line, no full stop (a mention and a '
                         "negation trigger every ~14 characters)", lambda n: repeat_to(negated, n)),
    }


# ---------------------------------------------------------------------------- timing
def time_call(coder: Any, text: str, repeats: int) -> dict[str, Any]:
    """Fastest of ``repeats`` calls: wall and CPU seconds, with counts from the result."""
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeats):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = coder(text)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    assert result is not None
    return {
        "characters": len(text),
        "seconds": round(best_wall, 4),
        "cpu_seconds": round(best_cpu, 4),
        "characters_per_second": round(len(text) / best_wall, 1),
        "characters_per_cpu_second": round(len(text) / max(best_cpu, 1e-9), 1),
        "entities": len(result.entities),
        "codes": len(result.codes),
        "repeats": repeats,
    }


def versions(coder: Any) -> dict[str, Any]:
    import numpy
    import sklearn
    import spacy

    found = coder.versions()
    return {"medcode_nlp": found["medcode_nlp"], "model": found["model"],
            "ranker": found["ranker"], "spacy": spacy.__version__,
            "scikit_learn": sklearn.__version__, "numpy": numpy.__version__}


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("input", "chars", "seconds", "cpu s", "chars/s", "entities", "x normal",
              "x adjusted")
    print(f"{header[0]:<16}{header[1]:>10}{header[2]:>10}{header[3]:>10}{header[4]:>11}"
          f"{header[5]:>10}{header[6]:>10}{header[7]:>11}")
    for row in rows:
        ratio, adjusted = row.get("ratio_to_normal"), row.get("ratio_adjusted")
        print(f"{row['input']:<16}{row['characters']:>10,}{row['seconds']:>10.3f}"
              f"{row['cpu_seconds']:>10.3f}{row['characters_per_second']:>11,.0f}"
              f"{row['entities']:>10,}{'' if ratio is None else f'{ratio:.2f}':>10}"
              f"{'' if adjusted is None else f'{adjusted:.2f}':>11}")


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES)
    parser.add_argument("--pathological-sizes", type=int, nargs="+",
                        default=DEFAULT_PATHOLOGICAL_SIZES)
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed calls per input up to 100,000 characters (fastest kept)")
    parser.add_argument("--max-ratio", type=float, default=3.0,
                        help="bound: pathological CPU time / normal note of the same length "
                             "(adjusted for mentions)")
    parser.add_argument("--max-linear-ratio", type=float, default=2.0,
                        help="bound: CPU time per character, largest normal note / 10k note")
    parser.add_argument("--ner", default=None, help="'dictionary' (default: shipped NER)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    import medcode_nlp

    started = time.perf_counter()
    coder = medcode_nlp.load(**({"ner": args.ner} if args.ner else {}))
    load_seconds = time.perf_counter() - started
    limit = coder.max_chars
    sizes = sorted({n for n in args.sizes if n <= limit})
    pathological_sizes = sorted({n for n in args.pathological_sizes if n in sizes})
    skipped = sorted({*args.sizes, *args.pathological_sizes} - set(sizes))
    if skipped:
        print(f"skipped (over max_chars {limit:,} or without a normal note): {skipped}",
              file=sys.stderr)
    notes = example_notes()
    coder(normal_note(notes, 5_000, seed=1))  # warm up: loads every candidate index
    builders = pathological_inputs(notes)
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    normal: dict[int, dict[str, Any]] = {}
    for size in sizes:
        repeats = args.repeats if size <= 100_000 else 1
        row = {"input": "normal", "size": size, **time_call(coder, normal_note(notes, size),
                                                              repeats)}
        normal[size] = row
        rows.append(row)
        print(row, file=sys.stderr)
        if size not in pathological_sizes:
            continue
        for name, (_, build) in builders.items():
            row = {"input": name, "size": size, **time_call(coder, build(size), repeats)}
            row["ratio_to_normal"] = round(row["cpu_seconds"] / normal[size]["cpu_seconds"], 3)
            # against a normal note of the same length, or of as many mentions if more
            scale = max(1.0, row["entities"] / max(normal[size]["entities"], 1))
            row["ratio_adjusted"] = round(row["ratio_to_normal"] / scale, 3)
            rows.append(row)
            print(row, file=sys.stderr)

    worst = max((r for r in rows if "ratio_adjusted" in r),
                key=lambda r: r["ratio_adjusted"], default=None)
    largest = max(sizes)
    linear = None
    if LINEAR_BASE in normal and largest > LINEAR_BASE:
        per_char = {n: normal[n]["cpu_seconds"] / n for n in (LINEAR_BASE, largest)}
        linear = round(per_char[largest] / per_char[LINEAR_BASE], 3)
    failures = []
    if worst is not None and worst["ratio_adjusted"] > args.max_ratio:
        failures.append(f"{worst['input']} at {worst['size']:,} characters costs "
                        f"{worst['ratio_adjusted']}x a normal note (adjusted for mentions; "
                        f"bound {args.max_ratio}x)")
    if linear is not None and linear > args.max_linear_ratio:
        failures.append(f"time per character at {largest:,} is {linear}x that at "
                        f"{LINEAR_BASE:,} (bound {args.max_linear_ratio}x)")

    report: dict[str, Any] = {
        "command": "python -m benchmarks.bounded_cost " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load_average_before": load_before,
                    "threads": {v: os.environ.get(v) for v in THREAD_VARIABLES},
                    "load_average_after": os.getloadavg(),
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                         / 1024, 1)},
        "versions": versions(coder),
        "load_seconds": round(load_seconds, 3),
        "max_chars": limit,
        "inputs": {"normal": "examples/*.txt concatenated (whole notes, shuffled order, "
                             "seed 0), cut to the length",
                   **{name: description for name, (description, _) in builders.items()}},
        "results": rows,
        "bound": {
            "statement": f"no pathological input costs more than {args.max_ratio}x the CPU "
                         f"time of a normal note of the same length (or of as many mentions, "
                         f"when it holds more), and the CPU time per "
                         f"character at {largest:,} characters is at most "
                         f"{args.max_linear_ratio}x that at {LINEAR_BASE:,}",
            "max_ratio": args.max_ratio,
            "worst": None if worst is None else {
                "input": worst["input"], "size": worst["size"],
                "ratio_to_normal": worst["ratio_to_normal"],
                "ratio_adjusted": worst["ratio_adjusted"]},
            "max_linear_ratio": args.max_linear_ratio,
            "linear_ratio": linear,
            "linear_sizes": [LINEAR_BASE, largest],
            "passed": not failures,
            "failures": failures,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(rows)
    if linear is not None:
        print(f"per-character CPU time, {largest:,} vs {LINEAR_BASE:,} characters: {linear}x")
    print("bound:", report["bound"]["statement"], "->", "PASS" if not failures else "FAIL")
    for failure in failures:
        print("  " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
