"""Document-level code evaluation data: gold documents, code normalisation, CodiEsp and JSONL readers.

The metrics are in :mod:`medcode_nlp.evaluation.metrics` and
:mod:`medcode_nlp.evaluation.calibration`, the report in :mod:`medcode_nlp.evaluation.report`.

Predictions are ``{doc_id: [(code, score), ...]}``; gold is ``{doc_id: {code, ...}}``. Codes are
compared after :func:`normalize_code` (upper case, no dots), so ``"i50.9"`` matches ``"I509"``.
A document's ranked list is its predictions sorted by descending score (ties keep the given
order), with repeated codes dropped after the first.

Which documents count:

- ranking metrics (MAP, P@k, R@k) average over the documents that have at least one gold code,
  as the CodiEsp evaluation does (its qrels only hold coded documents);
- micro P/R/F1 count every evaluated document, so codes predicted for a document without gold
  codes are false positives (as in the CodiEsp ``comp_f1_diag_proc.py`` script);
- the evaluated documents are ``doc_ids`` when given (repetitions allowed: that is how
  :func:`bootstrap_ci` resamples), else the keys of ``gold``. Predictions for other documents
  are ignored.

MAP follows the CodiEsp-D/P evaluation (trectools ``get_map``, depth 1000): the average
precision of a document is the sum, over gold codes found in the ranked list, of the precision
at their rank, divided by the document's number of gold codes. A coded document with no
prediction at all scores 0 here; the official script instead leaves such documents out of the
mean (``skip_unpredicted=True`` reproduces that). The official script also drops predicted codes
missing from its list of valid CodiEsp codes before ranking; this module does not.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.errors import Errors, InputError

logger = logging.getLogger(__name__)

Ranked = Sequence[tuple[str, float]]
Predictions = Mapping[str, Ranked]
Gold = Mapping[str, Collection[str]]

DIAGNOSIS = "diagnosis"
PROCEDURE = "procedure"
#: CodiEsp kinds: file suffix of the gold TSV and the code system of the codes.
CODIESP_KINDS: dict[str, tuple[str, str]] = {
    DIAGNOSIS: ("D", "icd10cm"),
    PROCEDURE: ("P", "icd10pcs"),
}
#: Group of JSONL gold codes given as plain strings (no system).
UNSPECIFIED_SYSTEM = "unspecified"
#: Ranked-list depth used by the CodiEsp MAP (trectools default).
MAP_DEPTH = 1000


# --------------------------------------------------------------------------- codes and records


@dataclass(slots=True)
class GoldDocument:
    """One evaluation document: its text and its gold codes, grouped.

    ``codes`` maps a group to normalized codes: ``"diagnosis"``/``"procedure"`` for CodiEsp, the
    normalized code-system name (``"icd10cm"``, ...) or ``"unspecified"`` for JSONL gold.
    """

    id: str
    text: str
    codes: dict[str, set[str]] = field(default_factory=dict)

    def all_codes(self) -> set[str]:
        """Every gold code of the document, whatever its group."""
        out: set[str] = set()
        for codes in self.codes.values():
            out |= codes
        return out


def normalize_code(code: str) -> str:
    """Canonical comparison form of a code: stripped, upper case, without dots."""
    if not isinstance(code, str):
        raise InputError(
            Errors.E014.format(name="code", detail=f"expected str, got {type(code).__name__}")
        )
    return code_key(code)


def normalize_system(name: str) -> str:
    """Code-system name as a group key: ``"ICD-10-CM"`` -> ``"icd10cm"``."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def gold_codes(docs: Sequence[GoldDocument], group: str | None = None) -> dict[str, set[str]]:
    """``{doc_id: codes}`` for one group (``None``: all groups together)."""
    if group is None:
        return {d.id: d.all_codes() for d in docs}
    return {d.id: set(d.codes.get(group, set())) for d in docs}


def codiesp_code(code: str, kind: str) -> str:
    """A code as CodiEsp writes it: lower case; diagnoses with a dot after 3 characters."""
    check_kind(kind)
    norm = normalize_code(code).lower()
    if kind == DIAGNOSIS and len(norm) > 3:
        return f"{norm[:3]}.{norm[3:]}"
    return norm


def check_kind(kind: str) -> None:
    """Refuse a CodiEsp kind other than those of ``CODIESP_KINDS`` (numbered error)."""
    if kind not in CODIESP_KINDS:
        raise InputError(
            Errors.E011.format(value=kind, name="kind", allowed=", ".join(CODIESP_KINDS))
        )


# --------------------------------------------------------------------------- readers


def _fail(path: Path, fmt: str, line_no: int, detail: str) -> InputError:
    return InputError(Errors.E009.format(path=path, fmt=fmt, detail=f"line {line_no}: {detail}"))


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputError(Errors.E010.format(path=path))
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(Errors.E001.format(path=path, position=err.start)) from err


def short_repr(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters (for error messages)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_codiesp(root: str | Path, split: str) -> list[GoldDocument]:
    """Read a CodiEsp split: ``root/split/text_files_en/*.txt`` plus ``{split}D.tsv``/``P.tsv``.

    Every text file becomes a document (sorted by id) with ``"diagnosis"`` (ICD-10-CM) and
    ``"procedure"`` (ICD-10-PCS) code sets, empty when the document has no gold row. The TSVs
    have two tab-separated fields per line, ``doc_id`` and ``code``, no header.
    """
    split_dir = Path(root) / split
    text_dir = split_dir / "text_files_en"
    if not text_dir.is_dir():
        raise InputError(Errors.E010.format(path=text_dir))
    docs = {
        p.stem: GoldDocument(p.stem, _read_text(p), {k: set() for k in CODIESP_KINDS})
        for p in sorted(text_dir.glob("*.txt"))
    }
    if not docs:
        raise InputError(Errors.E007.format(path=text_dir, detail="no .txt files"))
    for kind, (suffix, _system) in CODIESP_KINDS.items():
        path = split_dir / f"{split}{suffix}.tsv"
        for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
            if not line.strip():
                continue
            fields = [f.strip() for f in line.split("\t")]
            if len(fields) != 2 or not fields[0] or not fields[1]:
                raise _fail(
                    path, "CodiEsp TSV", line_no,
                    f"expected 2 non-empty tab-separated fields (doc id, code), got {len(fields)}",
                )
            doc_id, code = fields
            if doc_id not in docs:
                raise _fail(
                    path, "CodiEsp TSV", line_no,
                    f"document {short_repr(doc_id)} has no file in {text_dir}",
                )
            docs[doc_id].codes[kind].add(normalize_code(code))
    result = list(docs.values())
    logger.info(
        "read CodiEsp %s: %d documents, %d diagnosis and %d procedure codes",
        split, len(result),
        sum(len(d.codes[DIAGNOSIS]) for d in result),
        sum(len(d.codes[PROCEDURE]) for d in result),
    )
    return result


def read_jsonl_gold(path: str | Path) -> list[GoldDocument]:
    """Read JSONL gold: one ``{"id", "text", "codes": [...]}`` object per line.

    A code is a string (grouped under ``"unspecified"``) or ``{"code": ..., "system": ...}``
    (grouped under the normalized system name; ``system`` is optional). Blank lines are skipped;
    other keys are ignored. Malformed lines raise :class:`InputError` naming the line.
    """
    p = Path(path)
    fmt = "JSONL gold"
    docs: list[GoldDocument] = []
    seen: set[str] = set()
    for line_no, line in enumerate(_read_text(p).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise _fail(p, fmt, line_no, f"invalid JSON ({err.msg} at column {err.colno})") from err
        if not isinstance(record, dict):
            raise _fail(p, fmt, line_no, f"expected an object, got {type(record).__name__}")
        for key in ("id", "text", "codes"):
            if key not in record:
                raise _fail(p, fmt, line_no, f"missing key {key!r}")
        doc_id = record["id"]
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise _fail(p, fmt, line_no, "'id' must be a non-empty string")
        if doc_id in seen:
            raise _fail(p, fmt, line_no, f"duplicate id {short_repr(doc_id)}")
        if not isinstance(record["text"], str):
            raise _fail(p, fmt, line_no, "'text' must be a string")
        if not isinstance(record["codes"], list):
            raise _fail(p, fmt, line_no, "'codes' must be a list")
        codes: dict[str, set[str]] = {}
        for i, item in enumerate(record["codes"]):
            system = UNSPECIFIED_SYSTEM
            if isinstance(item, dict):
                if "system" in item:
                    if not isinstance(item["system"], str) or not normalize_system(item["system"]):
                        raise _fail(p, fmt, line_no, f"codes[{i}]: 'system' must be a name")
                    system = normalize_system(item["system"])
                item = item.get("code")
            if not isinstance(item, str) or not normalize_code(item):
                raise _fail(
                    p, fmt, line_no,
                    f"codes[{i}] must be a non-empty string or an object with a 'code' string",
                )
            codes.setdefault(system, set()).add(normalize_code(item))
        seen.add(doc_id)
        docs.append(GoldDocument(doc_id, record["text"], codes))
    logger.info("read %s: %d documents", p, len(docs))
    return docs
