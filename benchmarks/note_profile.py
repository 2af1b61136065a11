"""Where the milliseconds of one note go: a per-stage profile of the loaded coder.

    python -m benchmarks.note_profile [--repeat 30] [--output FILE]

Picks the first CodiEsp background note (by file name) of 1,800-2,200 characters, codes it
a few times to warm the caches, then ``--repeat`` more times, timing each pipeline component
and, inside them, the stages named in issue 19: candidate search (linker), mention features
and the mention ranker, the whole-note classifier, the document stage (document features
and second-stage ranker), the coding rules and their Alphabetic Index walk. A stage's time
includes the stages below it; ``self`` is what is left. Medians of wall-clock and of thread
CPU time (steadier on a shared machine) are reported, with the candidate-search cache
emptied before each repetition (the cost of a note never seen); the total with the note's
searches cached is reported beside them. Writes
``benchmarks/results/note_profile.json`` unless ``--output`` says otherwise; the note's text
is never printed or written (only its file name and length).
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, parser, shared_data, write_json

DEFAULT_DATA = shared_data("codiesp", "background", "text_files_en")


class StageClock:
    """Inclusive wall and CPU time per stage path ("medcode_coder/rescore/ranker")."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.stack.append(name)
        path = "/".join(self.stack)
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.wall[path] += time.perf_counter() - wall
            self.cpu[path] += time.thread_time() - cpu
            self.stack.pop()

    def reset(self) -> tuple[dict[str, float], dict[str, float]]:
        out = (dict(self.wall), dict(self.cpu))
        self.wall.clear()
        self.cpu.clear()
        return out


def _wrap(clock: StageClock, owner: Any, attribute: str, name: str) -> None:
    """Time every call of ``owner.attribute`` under stage ``name`` (skipped if absent)."""
    original = getattr(owner, attribute, None)
    if original is None:
        return

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        with clock.stage(name):
            return original(*args, **kwargs)

    setattr(owner, attribute, timed)


def instrument(clock: StageClock) -> None:
    """Wrap the functions of each stage where their callers look them up."""
    import medcode_nlp.nlp.components.coding as coding
    import medcode_nlp.ranking.model as model
    import medcode_nlp.rules.conventions as conventions
    from medcode_nlp.kb.index import CandidateIndex
    from medcode_nlp.ranking.estimators import CodeRanker

    _wrap(clock, CandidateIndex, "search", "candidate_search")
    _wrap(clock, model.RankerModel, "rescore_doc", "rescore")
    _wrap(clock, model, "pair_features", "mention_features")
    _wrap(clock, CodeRanker, "score_pairs", "ranker")
    _wrap(clock, model.RankerModel, "note_scores", "note_classifier")
    _wrap(clock, coding, "code_document", "document_stage")
    _wrap(clock, model.RankerModel, "score_codes", "document_scoring")
    _wrap(clock, model, "document_features", "document_features")
    _wrap(clock, conventions, "apply_conventions", "rules")
    _wrap(clock, conventions._Review, "index_links", "index_walk")


def pick_note(directory: Path) -> Path:
    """The first background note of 1,800-2,200 characters (by file name)."""
    if not directory.is_dir():
        raise SystemExit(f"data set not found: {directory} (see ../shared/data/README.md)")
    for path in sorted(directory.glob("*.txt")):
        if 1800 <= len(path.read_text(encoding="utf-8")) <= 2200:
            return path
    raise SystemExit("no note of 1,800-2,200 characters")


def run_once(coder: Any, clock: StageClock, text: str) -> None:
    """Code ``text`` component by component, as ``coder(text)`` does."""
    from medcode_nlp.nlp.components.coding import MedcodeCoder

    nlp = coder.nlp
    run = coder._run(coder._options({}))
    with clock.stage("total"):
        with clock.stage("tokenizer"):
            doc = nlp.make_doc(text)
        for name, component in nlp.pipeline:
            with clock.stage(name):
                doc = component(doc, run) if isinstance(component, MedcodeCoder) \
                    else component(doc)


def summarise(samples: list[tuple[dict[str, float], dict[str, float]]]) -> list[dict[str, Any]]:
    """Median ms per stage path, with the time of the stages directly below removed."""
    paths = sorted({p for wall, _ in samples for p in wall}, key=lambda p: (p.count("/"), p))
    median = {kind: {p: statistics.median(s[i].get(p, 0.0) for s in samples) * 1000
                     for p in paths} for i, kind in enumerate(("wall", "cpu"))}
    rows = []
    for path in sorted(paths):
        children = [p for p in paths if p.startswith(path + "/") and "/" not in p[len(path) + 1:]]
        rows.append({
            "stage": path,
            "wall_ms": round(median["wall"][path], 2),
            "cpu_ms": round(median["cpu"][path], 2),
            "self_cpu_ms": round(median["cpu"][path] - sum(median["cpu"][c] for c in children), 2),
        })
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser(__doc__)
    args.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args.add_argument("--repeat", type=int, default=30)
    args.add_argument("--output", type=Path, default=RESULTS / "note_profile.json")
    options = args.parse_args(argv)
    warnings.simplefilter("ignore")
    import os

    import medcode_nlp

    try:
        from medcode_nlp.kb.search_cache import clear_all
    except ImportError:  # releases before the search cache
        def clear_all() -> None:
            pass

    note = pick_note(options.data)
    text = note.read_text(encoding="utf-8")
    started = time.perf_counter()
    coder = medcode_nlp.load()
    load_seconds = time.perf_counter() - started
    clock = StageClock()
    instrument(clock)
    for _ in range(3):
        run_once(coder, clock, text)
    clock.reset()
    samples, warm = [], []
    for _ in range(options.repeat):
        clear_all()  # the note's searches are not answered from memory
        run_once(coder, clock, text)
        samples.append(clock.reset())
        run_once(coder, clock, text)  # the same note again: searches cached
        warm.append(clock.reset()[0]["total"] * 1000)
    totals = sorted(s[0]["total"] * 1000 for s in samples)
    report = {
        "note": {"file": note.name, "characters": len(text)},
        "repeat": options.repeat,
        "load_seconds": round(load_seconds, 3),
        "load_average": os.getloadavg(),
        "total_wall_ms_p50": round(statistics.median(totals), 2),
        "total_wall_ms_min": round(totals[0], 2),
        "total_wall_ms_p50_search_cached": round(statistics.median(warm), 2),
        "stages": summarise(samples),
    }
    write_json(options.output, report)
    print(f"{note.name}, {len(text)} characters; load {load_seconds:.2f} s", file=sys.stderr)
    print(f"{'stage':60} {'wall ms':>9} {'cpu ms':>9} {'self cpu':>9}")
    for row in report["stages"]:
        print(f"{row['stage']:60} {row['wall_ms']:9.2f} {row['cpu_ms']:9.2f} "
              f"{row['self_cpu_ms']:9.2f}")
    return report


if __name__ == "__main__":
    main()
