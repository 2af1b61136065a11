"""Score assertion (ConText) on the ConText test-kit format.

The test kit is a tab-separated file with a header row naming at least the columns
``target``, ``sentence``, ``negation`` (Affirmed / Negated), ``temporality`` (Recent /
Historical / Not particular = hypothetical) and ``experiencer`` (Patient / Other; "Family
member" counts as Other). ``id`` and ``note`` are kept when present.

Each sentence becomes one doc (one sentence), the target phrase (found case-insensitively,
any white space) becomes its only entity, and the sections and context components run on it.
Rows whose target is not in the sentence are reported by id and left out of the scores.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc

import medcode_nlp.nlp.extensions  # noqa: F401  (registers extensions)
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.evaluation.metrics import prf

FORMAT = "ConText test-kit TSV"
REQUIRED_COLUMNS = ("target", "sentence", "negation", "temporality", "experiencer")
NEGATION = {"affirmed": "Affirmed", "negated": "Negated"}
TEMPORALITY = {
    "recent": "Recent",
    "historical": "Historical",
    "not particular": "Hypothetical",
    "hypothetical": "Hypothetical",
}
EXPERIENCER = {"patient": "Patient", "other": "Other", "family member": "Other", "family": "Other"}
# Components that would replace the gold target or the one-sentence segmentation.
_SKIP_ASSIGNS = ("doc.ents", "token.is_sent_start", "doc.sents", "token.dep", "token.head")
_LABEL = "TARGET"


@dataclass(frozen=True)
class ContextRow:
    """One test-kit row with normalised gold labels."""

    id: str
    target: str
    sentence: str
    negation: str  # Affirmed | Negated
    temporality: str  # Recent | Historical | Hypothetical
    experiencer: str  # Patient | Other
    note: str = ""


def read_context_testkit(path: str | Path) -> list[ContextRow]:
    """Read a ConText test-kit TSV; raise :class:`InputError` (E009/E010) when unusable."""
    file = Path(path)
    if not file.exists():
        raise InputError(Errors.E010.format(path=file))

    def bad(detail: str) -> InputError:
        return InputError(Errors.E009.format(path=file, fmt=FORMAT, detail=detail))

    try:
        text = file.read_text("utf8")
    except UnicodeDecodeError as exc:
        raise InputError(Errors.E001.format(path=file, position=exc.start)) from exc
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise bad("the file is empty (a header row is expected)")
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise bad(f"missing column(s) {missing} in the header row (found {header})")
    col = {name: header.index(name) for name in header}
    rows: list[ContextRow] = []
    for line_no, fields in enumerate(reader, start=2):
        if not any(f.strip() for f in fields):
            continue
        if len(fields) < len(header):
            raise bad(f"line {line_no} has {len(fields)} fields, expected {len(header)}")

        def get(name: str, fields: list[str] = fields) -> str:
            return fields[col[name]] if name in col else ""

        labels = []
        for name, mapping in (
            ("negation", NEGATION),
            ("temporality", TEMPORALITY),
            ("experiencer", EXPERIENCER),
        ):
            value = get(name).strip()
            if value.lower() not in mapping:
                allowed = sorted(set(mapping.values()))
                raise bad(f"line {line_no}: {name} value {value!r} is not one of {allowed}")
            labels.append(mapping[value.lower()])
        if not get("target").strip() or not get("sentence").strip():
            raise bad(f"line {line_no}: empty target or sentence")
        rows.append(
            ContextRow(
                id=get("id").strip() or str(line_no),
                target=get("target"),
                sentence=get("sentence"),
                negation=labels[0],
                temporality=labels[1],
                experiencer=labels[2],
                note=get("note").strip(),
            )
        )
    if not rows:
        raise bad("no data rows after the header")
    return rows


def find_target(sentence: str, target: str) -> tuple[int, int] | None:
    """Character offsets of the first case-insensitive, white-space-flexible match."""
    words = target.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    matches = list(re.finditer(pattern, sentence, re.IGNORECASE))
    if not matches:
        return None
    # The test kit writes its target in capitals inside the sentence: when the phrase occurs
    # more than once, prefer an occurrence written in capitals.
    capitals = [
        m for m in matches if m.group().upper() == m.group() and m.group().lower() != m.group()
    ]
    match = capitals[0] if len(matches) > 1 and capitals else matches[0]
    return match.start(), match.end()


def context_pipeline(nlp: Language | None = None) -> Language:
    """``nlp`` (default ``spacy.blank("en")``) with the sections and context components added."""
    import medcode_nlp.nlp.components.context  # noqa: F401  (registers the factories)
    import medcode_nlp.nlp.components.sections  # noqa: F401

    nlp = nlp if nlp is not None else spacy.blank("en")
    if not any(nlp.get_pipe_meta(name).factory == "medcode_sections" for name in nlp.pipe_names):
        nlp.add_pipe("medcode_sections")
    if not any(nlp.get_pipe_meta(name).factory == "medcode_context" for name in nlp.pipe_names):
        nlp.add_pipe("medcode_context")
    return nlp


def _assessing_pipes(nlp: Language) -> list[Any]:
    pipes = []
    for name, proc in nlp.pipeline:
        assigns = nlp.get_pipe_meta(name).assigns
        if any(a.startswith(_SKIP_ASSIGNS) for a in assigns):
            continue
        pipes.append(proc)
    return pipes


def assess_row(nlp: Language, row: ContextRow, pipes: Sequence[Any] | None = None) -> Doc | None:
    """Run the assertion pipes on one row; None when the target is not in the sentence."""
    offsets = find_target(row.sentence, row.target)
    if offsets is None:
        return None
    doc = nlp.make_doc(row.sentence)
    span = doc.char_span(*offsets, label=_LABEL, alignment_mode="expand")
    if span is None:
        return None
    for i, token in enumerate(doc):
        token.is_sent_start = i == 0
    doc.ents = [span]
    for proc in pipes if pipes is not None else _assessing_pipes(nlp):
        doc = proc(doc)
    return doc


def predicted_labels(span: Any) -> tuple[str, str, str]:
    """(negation, temporality, experiencer) labels of an assessed span."""
    negation = "Negated" if span._.is_negated else "Affirmed"
    if span._.is_hypothetical:
        temporality = "Hypothetical"
    elif span._.is_historical:
        temporality = "Historical"
    else:
        temporality = "Recent"
    experiencer = "Other" if span._.is_family else "Patient"
    return negation, temporality, experiencer


def _prf(gold: Sequence[str], pred: Sequence[str], labels: Iterable[str]) -> dict[str, Any]:
    total = len(gold)
    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    classes: dict[str, dict[str, float | int]] = {}
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
        precision, recall, f1 = prf(tp, fp, fn)[:3]
        classes[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": tp + fn,
            "predicted": tp + fp,
        }
    return {"accuracy": round(correct / total, 4) if total else 0.0, "n": total, "classes": classes}


def evaluate_context(nlp: Language | None, rows: Sequence[ContextRow]) -> dict[str, Any]:
    """Accuracy and per-class P/R/F1 for negation, temporality and experiencer.

    ``nlp`` is a pipeline with ``medcode_sections`` and ``medcode_context`` (missing ones are
    added to a blank English pipeline when ``nlp`` is None). Components that set entities or
    sentence boundaries are skipped so the gold target and the test kit's sentence are kept.
    """
    nlp = context_pipeline(nlp)
    pipes = _assessing_pipes(nlp)
    gold: dict[str, list[str]] = {"negation": [], "temporality": [], "experiencer": []}
    pred: dict[str, list[str]] = {"negation": [], "temporality": [], "experiencer": []}
    errors: dict[str, list[str]] = {"negation": [], "temporality": [], "experiencer": []}
    not_found: list[str] = []
    for row in rows:
        doc = assess_row(nlp, row, pipes)
        if doc is None:
            not_found.append(row.id)
            continue
        predicted = predicted_labels(doc.ents[0])
        for key, g, p in zip(
            gold, (row.negation, row.temporality, row.experiencer), predicted, strict=True
        ):
            gold[key].append(g)
            pred[key].append(p)
            if g != p:
                errors[key].append(row.id)
    return {
        "format": FORMAT,
        "rows": len(rows),
        "scored": len(rows) - len(not_found),
        "not_found": not_found,
        "negation": _prf(gold["negation"], pred["negation"], ("Negated", "Affirmed")),
        "temporality": _prf(
            gold["temporality"], pred["temporality"], ("Historical", "Hypothetical", "Recent")
        ),
        "experiencer": _prf(gold["experiencer"], pred["experiencer"], ("Other", "Patient")),
        "errors": errors,
    }


def format_context_report(report: dict[str, Any]) -> str:
    """A plain-text table of an :func:`evaluate_context` report."""
    lines = [
        f"ConText evaluation: {report['scored']} of {report['rows']} rows scored"
        + (f" ({len(report['not_found'])} targets not found)" if report["not_found"] else ""),
        f"{'dimension':<12} {'class':<13} {'P':>6} {'R':>6} {'F1':>6} {'support':>8} "
        f"{'accuracy':>9}",
    ]
    for dim in ("negation", "temporality", "experiencer"):
        block = report[dim]
        for i, (label, m) in enumerate(block["classes"].items()):
            acc = f"{block['accuracy']:.4f}" if i == 0 else ""
            lines.append(
                f"{dim if i == 0 else '':<12} {label:<13} {m['precision']:>6.3f} "
                f"{m['recall']:>6.3f} {m['f1']:>6.3f} {m['support']:>8} {acc:>9}"
            )
    return "\n".join(lines)
