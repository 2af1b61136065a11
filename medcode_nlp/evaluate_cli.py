"""Plain functions behind ``medcode evaluate``: run a model on a file, return a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medcode_nlp.errors import Errors, InputError


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def evaluate_ner_file(path: Path, fmt: str, ner: str | None = None) -> dict[str, Any]:
    """NER P/R/F1 on a CoNLL/IOB or PubTator file."""
    from medcode_nlp.ner_eval import evaluate_ner, read_conll, read_pubtator
    from medcode_nlp.pipeline import _load_ner

    if fmt not in ("conll", "pubtator"):
        raise InputError(Errors.E011.format(value=fmt, name="--format",
                                            allowed=("conll", "pubtator")))
    if not Path(path).is_file():
        raise InputError(Errors.E010.format(path=path))
    examples = read_conll(path) if fmt == "conll" else read_pubtator(path)
    nlp, tag = _load_ner(ner)
    report: dict[str, Any] = dict(evaluate_ner(nlp, examples))
    report["model"] = tag
    report["file"] = str(path)
    rows = [("label", "precision", "recall", "f1", "support")]
    for label, scores in sorted(report.get("per_label", {}).items()):
        rows.append((label, f"{scores['precision']:.4f}", f"{scores['recall']:.4f}",
                     f"{scores['f1']:.4f}", str(scores.get("support", ""))))
    micro = report.get("micro", {})
    rows.append(("micro", f"{micro.get('precision', 0):.4f}", f"{micro.get('recall', 0):.4f}",
                 f"{micro.get('f1', 0):.4f}", str(micro.get("support", ""))))
    report["table"] = _table(rows)
    return json.loads(json.dumps(report))


def evaluate_context_file(path: Path) -> dict[str, Any]:
    """Assertion metrics on a ConText test-kit TSV."""
    import spacy

    import medcode_nlp.components.context  # noqa: F401
    import medcode_nlp.components.sections  # noqa: F401
    from medcode_nlp.context_eval import evaluate_context, read_context_testkit

    if not Path(path).is_file():
        raise InputError(Errors.E010.format(path=path))
    rows = read_context_testkit(path)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("medcode_sections")
    nlp.add_pipe("medcode_context")
    report: dict[str, Any] = dict(evaluate_context(nlp, rows))
    report["file"] = str(path)
    report["table"] = json.dumps({k: v for k, v in report.items() if k != "file"}, indent=2)
    return report
