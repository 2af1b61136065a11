"""Scoring coded notes the way a certified coder's gold is meant to be read.

Gold is JSONL, one note per line: ``id``, ``text``, optional ``setting`` and ``specialty``, and
``codes`` (``{"system", "code", "optional"?, "rank"?}`` objects, or bare strings scored against
every system). Predictions are, per note, the full ranked list of a method with a flag on the
codes of its main list (what a user is shown as "the codes"). Per code system:

- micro P/R/F1 of the main list against the *required* gold codes; a suggested *optional* code
  is neither a hit nor a false positive;
- first-listed accuracy (ICD-10-CM): the main list's first ICD-10-CM code equals the gold
  ``rank: 1`` code, over the notes that have one;
- category micro P/R/F1 (ICD-10-CM and ICD-10-PCS): the same on the first 3 characters;
- MAP of the full ranking against the required codes (optional codes taken out of the ranking),
  over the notes with a required code;
- ICD-10-CM external-cause codes (V00-Y99) are dropped on both sides.

Bootstrap 95% intervals resample notes; breakdowns per ``setting`` and per note type.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcode_nlp.codesets.registry import category_length
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.evaluation.calibration import bootstrap_ci
from medcode_nlp.evaluation.datasets import normalize_code, normalize_system
from medcode_nlp.evaluation.metrics import average_precision, prf

#: Gold codes given as bare strings: scored against the suggestions of every system.
ANY_SYSTEM = "unspecified"
SETTINGS = ("outpatient", "inpatient")
FIRST_LISTED_SYSTEM = "icd10cm"
#: Which list of a method each metric is computed on (written into every report).
METRIC_LISTS = {
    "precision/recall/f1": "main list (the codes a user is shown), against required gold codes",
    "first_listed": "first ICD-10-CM code of the main list, in the method's order",
    "category_f1": "main list, first 3 characters, against required gold codes",
    "map": "full ranked list (main list and everything below it, by score), optional gold "
           "codes removed from it",
}


@dataclass(frozen=True, slots=True)
class GoldCode:
    """One gold code, normalized (upper case, no dot)."""

    system: str
    code: str
    optional: bool = False
    rank: int | None = None
    #: The code as the gold wrote it (upper case, dots kept), for output; not compared.
    written: str = field(default="", compare=False)


@dataclass(slots=True)
class CodedNote:
    """A note and its gold codes."""

    id: str
    text: str
    setting: str = "outpatient"
    note_type: str | None = None
    codes: list[GoldCode] = field(default_factory=list)

    def systems(self) -> set[str]:
        """The systems this note's gold uses."""
        return {c.system for c in self.codes}


@dataclass(frozen=True, slots=True)
class RankedCode:
    """One code of a method's ranked list; ``main`` when it is on the main list."""

    system: str
    code: str
    score: float
    main: bool


def is_external_cause(system: str, code: str) -> bool:
    """ICD-10-CM chapter 20 (V00-Y99), ignored on both sides."""
    return system == "icd10cm" and normalize_code(code)[:1] in ("V", "W", "X", "Y")


def _bad(path: Path, line_no: int, detail: str) -> InputError:
    return InputError(Errors.E009.format(path=path, fmt="coded-notes JSONL",
                                         detail=f"line {line_no}: {detail}"))


def _gold_code(item: object, path: Path, line_no: int, i: int) -> GoldCode:
    if isinstance(item, str):
        item = {"code": item}
    if not isinstance(item, dict) or not isinstance(item.get("code"), str) \
            or not normalize_code(item["code"]):
        raise _bad(path, line_no, f"codes[{i}] needs a 'code' string")
    system = item.get("system", ANY_SYSTEM)
    if not isinstance(system, str) or not normalize_system(system):
        raise _bad(path, line_no, f"codes[{i}]: 'system' must be a name")
    rank = item.get("rank")
    if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool) or rank < 1):
        raise _bad(path, line_no, f"codes[{i}]: 'rank' must be an integer >= 1")
    optional = item.get("optional", False)
    if not isinstance(optional, bool):
        raise _bad(path, line_no, f"codes[{i}]: 'optional' must be true or false")
    return GoldCode(normalize_system(system), normalize_code(item["code"]), optional, rank,
                    item["code"].strip().upper())


def read_coded_notes(path: str | Path, default_setting: str = "outpatient") -> list[CodedNote]:
    """Read coded-notes JSONL; a malformed line raises a numbered error naming it.

    The one reader of coded notes: ``medcode evaluate coding`` and ``medcode train ranker
    --gold`` (:func:`medcode_nlp.training.site_model.read_coded_notes`) both use it. A note
    without ``id`` is named by its line number."""
    p = Path(path)
    if not p.is_file():
        raise InputError(Errors.E010.format(path=p))
    notes: list[CodedNote] = []
    seen: set[str] = set()
    for line_no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise _bad(p, line_no, f"invalid JSON ({err.msg})") from err
        if not isinstance(row, dict):
            raise _bad(p, line_no, "expected an object")
        raw_id = row.get("id", line_no)
        note_id = str(raw_id) if isinstance(raw_id, str | int) else ""
        if not note_id.strip() or note_id in seen:
            raise _bad(p, line_no, "'id' must be a non-empty string, unique in the file")
        if not isinstance(row.get("text"), str) or not isinstance(row.get("codes"), list):
            raise _bad(p, line_no, "'text' must be a string and 'codes' a list")
        setting = row.get("setting") or default_setting
        if setting not in SETTINGS:
            raise _bad(p, line_no, f"'setting' must be one of {SETTINGS}")
        note_type = row.get("specialty")
        seen.add(note_id)
        notes.append(CodedNote(note_id, row["text"], setting,
                               note_type if isinstance(note_type, str) else None,
                               [_gold_code(c, p, line_no, i) for i, c in enumerate(row["codes"])]))
    if not notes:
        raise InputError(Errors.E007.format(path=p, detail="no coded notes"))
    return notes


# --------------------------------------------------------------------------- per-note counts


@dataclass(slots=True)
class NoteScore:
    """Everything the system-level metrics of one note are summed from."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    cat_tp: int = 0
    cat_fp: int = 0
    cat_fn: int = 0
    has_first: bool = False
    first_correct: bool = False
    ap: float | None = None
    false_positives: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)


def _keep(system: str, code: str) -> bool:
    return not is_external_cause(system, code)


def score_note(note: CodedNote, ranked: Sequence[RankedCode], system: str) -> NoteScore:
    """Counts of one note for one system (``ranked``: the method's list, best first)."""
    gold = [c for c in note.codes if c.system == system and _keep(system, c.code)]
    required = {c.code for c in gold if not c.optional}
    optional = {c.code for c in gold if c.optional} - required
    own = [r for r in ranked
           if (system == ANY_SYSTEM or normalize_system(r.system) == system)
           and _keep(normalize_system(r.system), r.code)]
    main: list[str] = []
    for r in own:
        code = normalize_code(r.code)
        if r.main and code not in main:
            main.append(code)
    counted = [c for c in main if c not in optional]
    out = NoteScore(tp=sum(c in required for c in counted))
    out.false_positives = [c for c in counted if c not in required]
    out.misses = sorted(required - set(main))
    out.fp, out.fn = len(out.false_positives), len(out.misses)
    size = category_length(system)  # systems with no category: no category F1
    if size:
        req_cat = {c[:size] for c in required}
        opt_cat = {c[:size] for c in optional} - req_cat
        pred_cat = {c[:size] for c in main} - opt_cat
        out.cat_tp = len(pred_cat & req_cat)
        out.cat_fp, out.cat_fn = len(pred_cat - req_cat), len(req_cat - pred_cat)
    if system == FIRST_LISTED_SYSTEM:
        first = [c.code for c in gold if c.rank == 1 and not c.optional]
        out.has_first = bool(first)
        out.first_correct = bool(first) and bool(main) and main[0] == first[0]
    if required:
        ranking: list[str] = []
        for r in own:
            code = normalize_code(r.code)
            if code not in optional and code not in ranking:
                ranking.append(code)
        out.ap = average_precision(ranking, required)
    return out


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p, r, f = prf(tp, fp, fn)[:3]
    return p, r, f


def _metric_fns(scores: Mapping[str, NoteScore], system: str
                ) -> dict[str, Callable[[Sequence[str]], float]]:
    def summed(ids: Sequence[str], *names: str) -> list[int]:
        return [sum(getattr(scores[i], n) for i in ids) for n in names]

    fns: dict[str, Callable[[Sequence[str]], float]] = {
        "precision": lambda ids: _prf(*summed(ids, "tp", "fp", "fn"))[0],
        "recall": lambda ids: _prf(*summed(ids, "tp", "fp", "fn"))[1],
        "f1": lambda ids: _prf(*summed(ids, "tp", "fp", "fn"))[2],
    }

    def mean_ap(ids: Sequence[str]) -> float:
        values = [scores[i].ap for i in ids if scores[i].ap is not None]
        return sum(v for v in values if v is not None) / len(values) if values else 0.0

    fns["map"] = mean_ap
    if category_length(system):
        fns["category_f1"] = lambda ids: _prf(*summed(ids, "cat_tp", "cat_fp", "cat_fn"))[2]
    if any(s.has_first for s in scores.values()):
        def first(ids: Sequence[str]) -> float:
            had = [scores[i] for i in ids if scores[i].has_first]
            return sum(s.first_correct for s in had) / len(had) if had else 0.0

        fns["first_listed"] = first
    return fns


def system_metrics(notes: Sequence[CodedNote], ranked: Mapping[str, Sequence[RankedCode]],
                   system: str, *, n_bootstrap: int = 0, seed: int = 0, top_errors: int = 0
                   ) -> dict[str, Any]:
    """Metrics of one method on one system; ``ci`` holds bootstrap intervals when asked,
    ``top_false_positives`` / ``top_misses`` the ``top_errors`` most frequent codes of each."""
    scores = {n.id: score_note(n, ranked.get(n.id, ()), system) for n in notes}
    ids = [n.id for n in notes]
    fns = _metric_fns(scores, system)
    report: dict[str, Any] = {name: fn(ids) for name, fn in fns.items()}
    report["counts"] = {
        "notes": len(ids),
        "tp": sum(s.tp for s in scores.values()),
        "fp": sum(s.fp for s in scores.values()),
        "fn": sum(s.fn for s in scores.values()),
        "notes_with_required": sum(s.ap is not None for s in scores.values()),
        "notes_with_first_listed": sum(s.has_first for s in scores.values()),
    }
    if n_bootstrap:
        report["ci"] = {name: list(bootstrap_ci(fn, ids, n=n_bootstrap, seed=seed))
                        for name, fn in fns.items()}
    if top_errors:
        for key, attr in (("top_false_positives", "false_positives"), ("top_misses", "misses")):
            counted = Counter(c for s in scores.values() for c in getattr(s, attr))
            report[key] = dict(counted.most_common(top_errors))
    return report


def gold_systems(notes: Iterable[CodedNote]) -> list[str]:
    """The systems used by the gold, ICD-10-CM first."""
    found = set().union(*(n.systems() for n in notes))
    order = ["icd10cm", "icd10pcs", "hcpcs", "cpt"]
    return [s for s in order if s in found] + sorted(found - set(order))


def method_report(notes: Sequence[CodedNote], ranked: Mapping[str, Sequence[RankedCode]],
                  *, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """A method's report: overall per system (with intervals), per setting, per note type."""
    systems = gold_systems(notes)
    report: dict[str, Any] = {"systems": {
        s: system_metrics(notes, ranked, s, n_bootstrap=n_bootstrap, seed=seed, top_errors=20)
        for s in systems}}
    # main-list codes of systems the gold does not code at all (scored nowhere above)
    unscored = Counter(normalize_system(r.system) for n in notes for r in ranked.get(n.id, ())
                       if r.main and normalize_system(r.system) not in systems)
    report["main_codes_in_systems_without_gold"] = dict(sorted(unscored.items()))
    for key, attr in (("by_setting", "setting"), ("by_note_type", "note_type")):
        groups: dict[str, list[CodedNote]] = {}
        for note in notes:
            value = getattr(note, attr)
            if value is not None:
                groups.setdefault(value, []).append(note)
        if len(groups) > 1 or (attr == "note_type" and groups):
            report[key] = {g: {s: system_metrics(members, ranked, s) for s in systems}
                           for g, members in sorted(groups.items())}
    return report


# --------------------------------------------------------------------------- tables


def _cell(metrics: Mapping[str, Any], name: str, with_ci: bool) -> str:
    if name not in metrics:
        return "-"
    ci = metrics.get("ci", {}).get(name) if with_ci else None
    value = f"{metrics[name]:.3f}"
    return f"{value} [{ci[0]:.2f}-{ci[1]:.2f}]" if ci else value


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def format_coding_table(report: Mapping[str, Any]) -> str:
    """The readable table: one row per (system, method), then the breakdowns (F1, MAP)."""
    methods: Mapping[str, Any] = report["methods"]
    header = ("system", "method", "P", "R", "F1 [95% CI]", "first-listed", "category F1",
              "MAP", "TP/FP/FN")
    rows: list[Sequence[str]] = [header]
    systems = next(iter(methods.values()))["systems"] if methods else {}
    for system in systems:
        for name, method in methods.items():
            m = method["systems"][system]
            c = m["counts"]
            rows.append((system, name, _cell(m, "precision", False), _cell(m, "recall", False),
                         _cell(m, "f1", True), _cell(m, "first_listed", True),
                         _cell(m, "category_f1", True), _cell(m, "map", True),
                         f"{c['tp']}/{c['fp']}/{c['fn']}"))
    parts = [_table(rows)]
    first_system = next(iter(systems), None)
    for key, title in (("by_setting", "setting"), ("by_note_type", "note type")):
        rows = [(title, "notes", "system", "method", "F1", "first-listed", "category F1", "MAP")]
        for name, method in methods.items():
            for group, per_system in method.get(key, {}).items():
                for system, m in per_system.items():
                    if key == "by_note_type" and system != first_system:
                        continue  # the long breakdown: the main system only (all in --json)
                    rows.append((group, str(m["counts"]["notes"]), system, name,
                                 _cell(m, "f1", False), _cell(m, "first_listed", False),
                                 _cell(m, "category_f1", False), _cell(m, "map", False)))
        if len(rows) > 1:
            parts.append(_table(rows))
    notes = []
    for name, method in methods.items():
        first = method["systems"].get(first_system, {}) if first_system else {}
        for key, title in (("top_misses", "most missed"), ("top_false_positives",
                                                           "most frequent false positives")):
            if first.get(key):
                top = ", ".join(f"{c} {n}" for c, n in list(first[key].items())[:8])
                notes.append(f"{name} {first_system} {title}: {top}")
        extra = method.get("main_codes_in_systems_without_gold")
        if extra:
            notes.append(f"{name}: main-list codes in systems the gold does not code (not "
                         f"scored): " + ", ".join(f"{s} {n}" for s, n in extra.items()))
    if notes:
        parts.append("\n".join(notes))
    parts.append("lists the metrics used:\n" + "\n".join(f"  {k}: {v}"
                                                         for k, v in METRIC_LISTS.items()))
    return "\n\n".join(parts)
