"""Human-readable renderings of a CodingResult: a terminal table, a standalone HTML page, and
displaCy's span view of a coded doc.

``medcode_nlp.nlp.render(doc)`` (this module is callable: it calls :func:`render`) draws the
mentions of a doc coded by the ``medcode_coder`` component with displaCy, each labelled
``"LABEL | assertion | code"`` (:func:`mention_label`); the HTML page of :func:`render_html`
titles its mentions with the same labels and carries the same displaCy view (:func:`span_doc`).
"""

from __future__ import annotations

import html
import sys
import types
from typing import Any

from medcode_nlp.schema import CodingResult, Entity

LABEL_COLOURS = {"PROBLEM": "#ffd6d6", "PROCEDURE": "#d6e4ff", "DRUG": "#d9f5d6"}


def top_code(entity: Entity, result: CodingResult) -> str:
    """The best suggested code the mention is evidence for; else its best candidate, marked
    "(not coded)"; else "no code"."""
    for code in result.codes:
        if any(e.start < entity.end and entity.start < e.end for e in code.evidence):
            return code.code
    if entity.candidates:
        return f"{entity.candidates[0].code} (not coded)"
    return "no code"


def mention_label(entity: Entity, result: CodingResult) -> str:
    """A mention's label for display: ``"PROBLEM | present | I10"``."""
    return f"{entity.label} | {entity.assertion} | {top_code(entity, result)}"


def render(doc: Any, *, page: bool = False, jupyter: bool | None = None,
           spans_key: str | None = None, options: dict[str, Any] | None = None) -> str:
    """displaCy's span view of a doc coded by ``medcode_coder``: every mention with its label,
    assertion and top code. ``spans_key``: the component's (default: its config, else "sc").
    Returns the HTML (in a notebook, displaCy also displays it unless ``jupyter=False``)."""
    from spacy import displacy

    if spans_key is None:
        spans_key = "sc"
        nlp_spans = doc.user_data.get("medcode_nlp.spans_key")
        if isinstance(nlp_spans, str):
            spans_key = nlp_spans
    labels = {span.label_ for span in doc.spans.get(spans_key, [])}
    colours = {label: LABEL_COLOURS.get(label.split(" | ")[0], "#eee") for label in labels}
    settings = {"spans_key": spans_key, "colors": colours, **(options or {})}
    rendered = displacy.render(doc, style="span", page=page, jupyter=jupyter, options=settings)
    return str(rendered or "")


def span_doc(text: str, result: CodingResult) -> Any:
    """A blank-tokenised doc of ``text`` whose span group "sc" holds the result's mentions,
    labelled as :func:`mention_label` does, for :func:`render` (the HTML report's span view)."""
    import spacy

    doc = spacy.blank("en").make_doc(text)
    spans = []
    for entity in result.entities:
        span = doc.char_span(entity.start, entity.end, label=mention_label(entity, result),
                             alignment_mode="expand")
        if span is not None:
            spans.append(span)
    doc.spans["sc"] = spans
    return doc


def render_table(result: CodingResult) -> str:
    """A plain-text table of the suggested codes, then the excluded ones."""
    lines = [f"{'score':>5}  {'system':<8} {'code':<9} description"]
    for code in result.codes:
        lines.append(f"{code.score:5.2f}  {code.system:<8} {code.code:<9} {code.description}")
        evidence = "; ".join(f"{e.text!r}@{e.start}" for e in code.evidence[:3])
        lines.append(f"{'':17}evidence: {evidence}")
        for prompt in code.prompts:
            lines.append(f"{'':17}prompt: {prompt}")
        for conflict in code.conflicts:
            lines.append(f"{'':17}conflict: {conflict}")
    if not result.codes:
        lines.append("(no codes suggested)")
    if result.excluded:
        lines.append("")
        lines.append("excluded:")
        for item in result.excluded:
            lines.append(f"  {item.system:<8} {item.code:<9} {item.reason}")
    return "\n".join(lines)


def render_html(text: str, result: CodingResult) -> str:
    """A self-contained HTML page: the note with entities highlighted, and the code table."""
    pieces = []
    cursor = 0
    for entity in sorted(result.entities, key=lambda e: e.start):
        if entity.start < cursor:
            continue
        pieces.append(html.escape(text[cursor : entity.start]))
        colour = LABEL_COLOURS.get(entity.label, "#eee")
        title = f"{mention_label(entity, result)} | section: {entity.section or '-'}"
        style = "text-decoration:line-through;" if entity.assertion == "negated" else ""
        pieces.append(
            f'<mark style="background:{colour};{style}" title="{html.escape(title)}" '
            f'data-start="{entity.start}" data-end="{entity.end}">'
            f"{html.escape(text[entity.start : entity.end])}</mark>"
        )
        cursor = entity.end
    pieces.append(html.escape(text[cursor:]))
    rows = []
    for code in result.codes:
        notes = "<br>".join(html.escape(p) for p in code.prompts + code.conflicts)
        evidence = ", ".join(html.escape(e.text) for e in code.evidence)
        rows.append(
            f"<tr><td>{html.escape(code.system)}</td><td><b>{html.escape(code.code)}</b></td>"
            f"<td>{html.escape(code.description)}</td>"
            f'<td><div class="bar" style="width:{int(code.score * 100)}px"></div>'
            f"{code.score:.2f}</td><td>{evidence}</td><td>{notes}</td></tr>"
        )
    excluded = "".join(
        f"<li>{html.escape(x.system)} {html.escape(x.code)}: {html.escape(x.reason)}</li>"
        for x in result.excluded
    )
    spans_view = render(span_doc(text, result), jupyter=False)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>medcode_nlp review</title>
<style>
body{{font-family:sans-serif;margin:2em;max-width:70em}} pre{{white-space:pre-wrap;
line-height:1.6;background:#fafafa;padding:1em;border:1px solid #ddd}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px;
vertical-align:top}} .bar{{height:8px;background:#3a7;display:inline-block;margin-right:6px}}
</style></head><body>
<h1>Suggested codes</h1>
<table><tr><th>system</th><th>code</th><th>description</th><th>confidence</th>
<th>evidence</th><th>prompts / conflicts</th></tr>
{"".join(rows)}</table>
<h2>Excluded</h2><ul>{excluded}</ul>
<h2>Note</h2><pre>{"".join(pieces)}</pre>
<h2>Mentions (displaCy span view)</h2>{spans_view}
<p><small>{html.escape(str(result.versions))}</small></p>
</body></html>
"""


class _CallableModule(types.ModuleType):
    """``medcode_nlp.nlp.render(doc)`` works whether ``medcode_nlp.nlp.render`` is this module (once it
    was imported) or the function."""

    def __call__(self, doc: Any, **options: Any) -> str:
        return render(doc, **options)


sys.modules[__name__].__class__ = _CallableModule
