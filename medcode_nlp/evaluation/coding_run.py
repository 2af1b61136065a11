"""``medcode evaluate coding GOLD.jsonl``: run the methods on coded notes and score them.

Methods side by side in one run: the loaded coder (``medcode_nlp``), optionally a second coder
(``compare_ranker``), and a TF-IDF one-vs-rest logistic-regression baseline fitted out-of-fold
on the gold file itself (seeded k-fold; its decision threshold chosen inside each training fold).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medcode_nlp.evaluation.coding import (
    METRIC_LISTS,
    CodedNote,
    RankedCode,
    format_coding_table,
    gold_systems,
    is_external_cause,
    method_report,
    read_coded_notes,
)
from medcode_nlp.evaluation.datasets import normalize_system
from medcode_nlp.evaluation.metrics import choose_threshold

#: How deep the full ranking of the coder goes (the MAP list).
RANK_DEPTH = 200
BASELINE = "tfidf_logreg_oof"

Rankings = dict[str, list[RankedCode]]


def coder_rankings(coder: Any, notes: Sequence[CodedNote]) -> Rankings:
    """Each note's full ranked list from ``coder``, its main list flagged.

    Every note is coded in its own ``setting``, once as a user would (the main list) and once
    with no threshold and a deep ``top_k`` (the ranking); a ``consider`` list, when the result
    has one, joins the ranking off the main list.
    """
    out: Rankings = {}
    for setting in sorted({n.setting for n in notes}):
        group = [n for n in notes if n.setting == setting]
        shown = coder.pipe((n.text for n in group), setting=setting)
        deep = coder.pipe((n.text for n in group), setting=setting, min_score=0.0,
                          top_k=RANK_DEPTH)
        for note, main_result, deep_result in zip(group, shown, deep, strict=True):
            main = [(c.system, c.code, float(c.score)) for c in main_result.codes]
            rest = [(c.system, c.code, float(c.score))
                    for c in [*deep_result.codes, *getattr(deep_result, "consider", []),
                              *getattr(main_result, "consider", [])]]
            out[note.id] = _merge(main, rest)
    return out


def _merge(main: Sequence[tuple[str, str, float]], rest: Sequence[tuple[str, str, float]]
           ) -> list[RankedCode]:
    """Main list first in its own order, then the other codes by score; each code once."""
    seen: set[tuple[str, str]] = set()
    ranked: list[RankedCode] = []
    for system, code, score in main:
        if (system, code) not in seen:
            seen.add((system, code))
            ranked.append(RankedCode(system, code, score, True))
    others = sorted(((s, c, v) for s, c, v in rest if (s, c) not in seen),
                    key=lambda x: (-x[2], x[0], x[1]))
    for system, code, score in others:
        if (system, code) not in seen:
            seen.add((system, code))
            ranked.append(RankedCode(system, code, score, False))
    return ranked


def _required(note: CodedNote, system: str) -> set[str]:
    return {c.code for c in note.codes
            if c.system == system and not c.optional and not is_external_cause(system, c.code)}


def _fit_predict(train: Sequence[CodedNote], test: Sequence[CodedNote], system: str, seed: int
                 ) -> list[list[tuple[str, float]]]:
    from medcode_nlp.evaluation.baselines import TfidfLogRegBaseline

    model = TfidfLogRegBaseline(seed=seed).fit([n.text for n in train],
                                               [_required(n, system) for n in train])
    return model.predict([n.text for n in test])


def _folds(n: int, k: int, seed: int) -> list[tuple[list[int], list[int]]]:
    from sklearn.model_selection import KFold

    splitter = KFold(n_splits=max(2, min(k, n)), shuffle=True, random_state=seed)
    return [(list(a), list(b)) for a, b in splitter.split(list(range(n)))]


def _threshold(train: Sequence[CodedNote], system: str, seed: int) -> float:
    """The micro-F1-best threshold on out-of-fold predictions inside the training notes."""
    pred: dict[str, list[tuple[str, float]]] = {}
    for fit_idx, held_idx in _folds(len(train), 3, seed):
        held = [train[i] for i in held_idx]
        for note, ranked in zip(held, _fit_predict([train[i] for i in fit_idx], held, system,
                                                   seed), strict=True):
            pred[note.id] = ranked
    return choose_threshold(pred, {n.id: _required(n, system) for n in train})


def baseline_rankings(notes: Sequence[CodedNote], *, folds: int = 5, seed: int = 0) -> Rankings:
    """Out-of-fold rankings of the TF-IDF one-vs-rest logistic regression, every gold system."""
    rows: dict[str, list[tuple[str, str, float, bool]]] = {n.id: [] for n in notes}
    for system in gold_systems(notes):
        for train_idx, test_idx in _folds(len(notes), folds, seed):
            train = [notes[i] for i in train_idx]
            test = [notes[i] for i in test_idx]
            threshold = _threshold(train, system, seed) if len(train) >= 3 else 0.5
            for note, ranked in zip(test, _fit_predict(train, test, system, seed), strict=True):
                rows[note.id] += [(system, code, p, p >= threshold) for code, p in ranked]
    return {note_id: [RankedCode(s, c, p, m) for s, c, p, m in
                      sorted(found, key=lambda x: (-x[2], x[0], x[1]))]
            for note_id, found in rows.items()}


def write_rankings(path: Path, notes: Sequence[CodedNote],
                   methods: Mapping[str, Rankings]) -> None:
    """JSONL: one line per (method, note): the full ranked list with each code's main flag."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as out:
        for name, rankings in methods.items():
            for note in notes:
                codes = [{"system": normalize_system(r.system), "code": r.code,
                          "score": round(r.score, 6), "main": r.main}
                         for r in rankings.get(note.id, [])]
                out.write(json.dumps({"method": name, "id": note.id, "setting": note.setting,
                                      "codes": codes}) + "\n")


def evaluate_coded_notes(
    path: Path,
    *,
    coder: Any,
    compare_coder: Any = None,
    baseline: bool = True,
    folds: int = 5,
    seed: int = 0,
    n_bootstrap: int = 1000,
    predictions_out: Path | None = None,
    default_setting: str = "outpatient",
) -> dict[str, Any]:
    """Score the coder (and the comparisons) on a coded-notes JSONL file."""
    notes = read_coded_notes(path, default_setting)
    methods: dict[str, Rankings] = {"medcode_nlp": coder_rankings(coder, notes)}
    if compare_coder is not None:
        methods["compare_ranker"] = coder_rankings(compare_coder, notes)
    baseline = baseline and len(notes) >= 2  # out-of-fold needs two notes at least
    if baseline:
        methods[BASELINE] = baseline_rankings(notes, folds=folds, seed=seed)
    report: dict[str, Any] = {
        "file": str(path), "notes": len(notes), "seed": seed, "n_bootstrap": n_bootstrap,
        "folds": folds if baseline else None, "versions": coder.versions(),
        "settings": {s: sum(n.setting == s for n in notes)
                     for s in sorted({n.setting for n in notes})},
        "lists": dict(METRIC_LISTS),
        "methods": {name: method_report(notes, rankings, n_bootstrap=n_bootstrap, seed=seed)
                    for name, rankings in methods.items()},
    }
    if compare_coder is not None:
        report["compare_versions"] = compare_coder.versions()
    if predictions_out is not None:
        write_rankings(predictions_out, notes, methods)
        report["predictions_out"] = str(predictions_out)
    report["table"] = format_coding_table(report)
    return report
