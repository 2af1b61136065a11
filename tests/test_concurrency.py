"""One loaded Coder shared by several threads gives the results of sequential use.

The HTTP service serialises its calls into the coder, but library users (a thread pool in a
web worker, a notebook running jobs) may call one ``Coder`` from many threads. Every result
must then be identical, to the byte of its JSON, to what the same call gives on its own.
"""

from __future__ import annotations

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# scispaCy's abbreviation detector warns on every doc (pytest resets the package's filter).
pytestmark = pytest.mark.filterwarnings("ignore:.*W036")
THREADS = 8
# Each job is run by THREADS // SHARE threads (all of them at once would take minutes).
SHARE = 2

VARIED_TEXTS = [
    "",
    "   \n\t ",
    "Assessment: type 2 diabetes mellitus with diabetic neuropathy. Essential hypertension.",
    "Patient denies chest pain. No shortness of breath. Mother had breast cancer.",
    "HPI: 67 y/o M w/ CHF exacerbation, COPD, and AFib on warfarin. Hx of MI in 2015.",
    "Rule out pneumonia. Possible UTI; urine culture pending.",
    "Dx: fractura de fémur — caída desde su altura; dolor 8/10 ✓. Ünïcödé test.",
    "x" * 2000,
]

# Per-call options: the same note under different settings.
OPTION_SETS: list[dict[str, Any]] = [
    {},
    {"setting": "inpatient"},
    {"systems": ["icd10cm"], "top_k": 3},
]


def _notes() -> list[str]:
    files = sorted((ROOT / "examples").glob("*.txt"))
    assert files, "examples/*.txt are missing"
    return [path.read_text(encoding="utf-8") for path in files]


@pytest.fixture(scope="module")
def jobs() -> list[tuple[str, dict[str, Any]]]:
    notes = _notes()
    work = [(text, {}) for text in notes + VARIED_TEXTS]
    # Option variants on two sample notes (they have codes to filter).
    work += [(text, options) for text in notes[:2] for options in OPTION_SETS[1:]]
    return work


def _as_json(result) -> str:
    return json.dumps(result.to_dict(), sort_keys=True, ensure_ascii=False)


@pytest.mark.slow
def test_threads_give_the_sequential_results(default_coder, jobs):
    expected = [_as_json(default_coder(text, **options)) for text, options in jobs]
    assert any(json.loads(e)["codes"] for e in expected), "the sample notes should get codes"

    start = threading.Barrier(THREADS)

    def worker(seed: int) -> list[tuple[int, str]]:
        order = [i for i in range(len(jobs)) if i % SHARE == seed % SHARE]
        random.Random(seed).shuffle(order)  # threads work on different notes at once
        start.wait(timeout=120)
        return [(i, _as_json(default_coder(jobs[i][0], **jobs[i][1]))) for i in order]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outputs = list(pool.map(worker, range(THREADS)))

    mismatches = sorted({i for output in outputs for i, got in output if got != expected[i]})
    assert not mismatches, f"results differ from sequential use for jobs {mismatches}"
    assert sum(len(output) for output in outputs) == THREADS // SHARE * len(jobs)


@pytest.mark.slow
def test_threads_using_pipe_give_the_sequential_results(default_coder):
    notes = _notes()
    expected = [_as_json(r) for r in default_coder.pipe(notes)]
    start = threading.Barrier(THREADS)

    def worker(seed: int) -> list[str]:
        start.wait(timeout=120)
        if seed % 2:  # half the threads batch, the other half call one note at a time
            return [_as_json(r) for r in default_coder.pipe(notes, batch_size=2)]
        return [_as_json(default_coder(text)) for text in notes]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outputs = list(pool.map(worker, range(THREADS)))

    for output in outputs:
        assert output == expected
