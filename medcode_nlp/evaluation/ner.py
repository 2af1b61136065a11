"""Entity-level evaluation of NER pipelines on CoNLL/IOB and PubTator files.

The readers return ``(text, spans)`` pairs where ``spans`` are gold ``(start, end, label)``
character offsets into ``text``. ``evaluate_ner`` runs a spaCy pipeline over the texts and
scores exact-match entities (same start, end and label).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from medcode_nlp.errors import Errors, InputError
from medcode_nlp.evaluation.metrics import prf

Span = tuple[int, int, str]
Example = tuple[str, list[Span]]

#: BC5CDR / PubTator entity types mapped to the medcode_nlp labels.
PUBTATOR_LABEL_MAP: dict[str, str] = {"Disease": "PROBLEM", "Chemical": "DRUG"}
#: NCBI Disease (and other disease-only corpora) mapped to the medcode_nlp labels.
DISEASE_LABEL_MAP: dict[str, str] = {"Disease": "PROBLEM"}

_TAG_RE = re.compile(r"^(?:O|([BIESLU])-(.+))$")
_PUBTATOR_TEXT_RE = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$")


def _fail(path: Path, fmt: str, line_no: int, detail: str) -> InputError:
    return InputError(Errors.E009.format(path=path, fmt=fmt, detail=f"line {line_no}: {detail}"))


def _read_lines(path: str | Path, fmt: str) -> tuple[Path, list[str]]:
    p = Path(path)
    if not p.exists():
        raise InputError(Errors.E010.format(path=p))
    try:
        return p, p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise InputError(Errors.E001.format(path=p, position=err.start)) from err


def read_conll(path: str | Path) -> list[Example]:
    """Read a CoNLL/IOB file: one ``token<TAB>tag`` per line, blank lines between sentences.

    The tag is the last whitespace-separated column (so CoNLL-2003 style files with POS and
    chunk columns work too); tags are ``O`` or ``B-/I-/E-/S-/L-/U-`` plus a type. ``-DOCSTART-``
    lines are skipped. Each sentence becomes one text with its tokens joined by single spaces.
    """
    p, lines = _read_lines(path, "conll")
    examples: list[Example] = []
    tokens: list[str] = []
    spans: list[Span] = []
    offset = 0
    current: list[Any] | None = None  # [start, end, label] of the open entity

    def close_sentence() -> None:
        nonlocal tokens, spans, offset, current
        if current is not None:
            spans.append((current[0], current[1], current[2]))
            current = None
        if tokens:
            examples.append((" ".join(tokens), spans))
        tokens, spans, offset = [], [], 0

    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            close_sentence()
            continue
        if line.startswith("-DOCSTART-"):
            close_sentence()
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        if len(cols) < 2 or not cols[0]:
            raise _fail(p, "conll", line_no, "expected a token and a tag separated by a tab")
        token, tag = cols[0].strip(), cols[-1].strip()
        match = _TAG_RE.match(tag)
        if match is None or not token:
            raise _fail(p, "conll", line_no, f"invalid tag {tag!r} (expected O or B-/I-<type>)")
        start = offset + (1 if tokens else 0)
        end = start + len(token)
        prefix, label = match.group(1), match.group(2)
        if prefix is None:
            if current is not None:
                spans.append((current[0], current[1], current[2]))
                current = None
        elif prefix in "IEL" and current is not None and current[2] == label:
            current[1] = end
            if prefix in "EL":
                spans.append((current[0], current[1], current[2]))
                current = None
        else:
            if current is not None:
                spans.append((current[0], current[1], current[2]))
            current = [start, end, label]
            if prefix in "SU":
                spans.append((start, end, label))
                current = None
        tokens.append(token)
        offset = end
    close_sentence()
    return examples


def read_pubtator(
    path: str | Path, label_map: Mapping[str, str] | None = PUBTATOR_LABEL_MAP
) -> list[Example]:
    """Read a PubTator file: one example per document, text = title + " " + abstract.

    Mention lines are ``pmid<TAB>start<TAB>end<TAB>mention<TAB>type[<TAB>id...]``; relation
    lines (``pmid<TAB>CID<TAB>...``) are ignored. Types are renamed with ``label_map``; types
    not in it are dropped. With ``label_map=None`` the original types are kept.
    """
    p, lines = _read_lines(path, "pubtator")
    examples: list[Example] = []
    doc_id: str | None = None
    title: str | None = None
    text: str | None = None
    spans: set[Span] = set()

    def flush() -> None:
        nonlocal doc_id, title, text, spans
        if doc_id is not None:
            full = text if text is not None else (title or "")
            examples.append((full, sorted(spans)))
        doc_id, title, text, spans = None, None, None, set()

    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            flush()
            continue
        match = _PUBTATOR_TEXT_RE.match(line)
        if match is not None:
            pmid, kind, body = match.groups()
            if kind == "t":
                flush()
                doc_id, title = pmid, body
                text = body
            else:
                if doc_id != pmid or title is None:
                    raise _fail(p, "pubtator", line_no, "abstract line without a matching title")
                text = title + " " + body
            continue
        cols = line.split("\t")
        if doc_id is None or cols[0] != doc_id:
            raise _fail(p, "pubtator", line_no, "annotation line outside its document")
        if len(cols) >= 2 and not cols[1].isdigit():
            continue  # relation line, e.g. "pmid<TAB>CID<TAB>D1<TAB>D2"
        if len(cols) < 5:
            raise _fail(p, "pubtator", line_no, "expected pmid, start, end, mention, type")
        try:
            start, end = int(cols[1]), int(cols[2])
        except ValueError:
            raise _fail(p, "pubtator", line_no, "start and end must be integers") from None
        assert text is not None
        if not 0 <= start < end <= len(text) or text[start:end] != cols[3]:
            raise _fail(p, "pubtator", line_no, "offsets do not match the mention text")
        etype = cols[4]
        if label_map is None:
            spans.add((start, end, etype))
        elif etype in label_map:
            spans.add((start, end, label_map[etype]))
    flush()
    return examples


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    p, r, f = prf(tp, fp, fn)[:3]
    return {"p": p, "r": r, "f": f, "tp": tp, "fp": fp, "fn": fn, "support": tp + fn}


def score_spans(
    gold: Sequence[Iterable[Span]], pred: Sequence[Iterable[Span]], labels: Iterable[str]
) -> dict[str, Any]:
    """Exact-match P/R/F1 per label and micro-averaged over ``labels``."""
    label_set = sorted(set(labels))
    counts = {lab: [0, 0, 0] for lab in label_set}
    for g_doc, p_doc in zip(gold, pred, strict=True):
        g = {s for s in g_doc if s[2] in counts}
        q = {s for s in p_doc if s[2] in counts}
        for s in g & q:
            counts[s[2]][0] += 1
        for s in q - g:
            counts[s[2]][1] += 1
        for s in g - q:
            counts[s[2]][2] += 1
    per_label = {lab: _prf(*c) for lab, c in counts.items()}
    micro = _prf(*(sum(c[i] for c in counts.values()) for i in range(3)))
    return {"labels": per_label, "micro": micro}


def evaluate_ner(
    nlp: Any,
    examples: Sequence[Example],
    label_map: Mapping[str, str] | None = PUBTATOR_LABEL_MAP,
    *,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Score ``nlp``'s entities against gold examples (exact match of start, end and label).

    ``label_map`` renames gold labels to the pipeline's labels (by default Disease -> PROBLEM and
    Chemical -> DRUG, so BC5CDR/NCBI-style CoNLL files work as they are; ``None`` renames
    nothing); gold labels not in it are kept. Only the (renamed) gold labels are scored: predictions of
    other labels (e.g. PROCEDURE on BC5CDR) are ignored. Returns per-label and micro P/R/F1,
    the number of documents and of gold spans that do not fall on token boundaries.
    """
    mapping = dict(label_map or {})
    gold = [[(s, e, mapping.get(lab, lab)) for s, e, lab in spans] for _, spans in examples]
    labels = {lab for doc in gold for _, _, lab in doc}
    pred: list[list[Span]] = []
    misaligned = 0
    for doc, g_doc in zip(
        nlp.pipe((text for text, _ in examples), batch_size=batch_size), gold, strict=True
    ):
        pred.append([(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents])
        misaligned += sum(doc.char_span(s, e) is None for s, e, _ in g_doc)
    result = score_spans(gold, pred, labels)
    result["n_docs"] = len(examples)
    result["n_gold"] = sum(len(g) for g in gold)
    result["n_misaligned_gold"] = misaligned
    return result
