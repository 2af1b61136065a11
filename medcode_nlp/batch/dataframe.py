"""Coding results as a table: one row per suggested code, for pandas, polars and Parquet.

Columns (:data:`COLUMNS`): ``note_id``, ``system``, ``code``, ``description``, ``score``,
``billable``, ``rank`` (1 = first on the note's list), ``assertion`` (of the mentions behind
the code), ``evidence_start`` / ``evidence_end`` (lists of offsets into the note),
``evidence_text`` (the mention texts), ``hcc`` (list of CMS-HCC V28 categories of an
ICD-10-CM code for the payment year asked for; empty when it maps to none). ``medcode batch
--rows codes`` writes the same columns to Parquet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from medcode_nlp.claims.status import code_assertion
from medcode_nlp.errors import InputError, MedcodeError
from medcode_nlp.schema import CodingResult

COLUMNS = ("note_id", "system", "code", "description", "score", "billable", "rank",
           "assertion", "evidence_start", "evidence_end", "evidence_text", "hcc")
DEFAULT_HCC_YEAR = 2026


def code_rows(result: CodingResult, note_id: Any = None,
              hcc_year: int | None = DEFAULT_HCC_YEAR) -> list[dict[str, Any]]:
    """The rows of one result (see :data:`COLUMNS`); ``hcc_year=None`` leaves ``hcc`` empty."""
    if not isinstance(result, CodingResult):
        raise InputError(f"Expected a CodingResult, got {type(result).__name__}.")
    mapper = None
    if hcc_year is not None:
        from medcode_nlp.claims.hcc import get_mapper

        mapper = get_mapper(hcc_year)
    rows = []
    for rank, code in enumerate(result.codes, start=1):
        hcc = ([c.hcc for c in mapper.categories(code.code)]
               if mapper is not None and code.system == "icd10cm" else [])
        rows.append({
            "note_id": None if note_id is None else str(note_id),
            "system": code.system, "code": code.code, "description": code.description,
            "score": float(code.score), "billable": bool(code.billable), "rank": rank,
            "assertion": code_assertion(result, code),
            "evidence_start": [e.start for e in code.evidence],
            "evidence_end": [e.end for e in code.evidence],
            "evidence_text": [e.text for e in code.evidence],
            "hcc": hcc,
        })
    return rows


def _pairs(results: Any) -> Iterable[tuple[Any, CodingResult]]:
    if isinstance(results, CodingResult):
        return [(None, results)]
    if isinstance(results, Mapping):
        return list(results.items())
    pairs: list[tuple[Any, CodingResult]] = []
    for index, item in enumerate(results):
        if isinstance(item, CodingResult):
            pairs.append((index, item))
        elif isinstance(item, tuple) and len(item) == 2:
            pairs.append((item[0], item[1]))
        else:
            raise InputError(f"Item {index} of results is a {type(item).__name__}; expected a "
                             "CodingResult or a (note_id, CodingResult) pair.")
    return pairs


def arrow_table(rows: list[dict[str, Any]]) -> Any:
    """The rows as a ``pyarrow.Table`` with a fixed schema (also for zero rows)."""
    import pyarrow as pa

    schema = pa.schema([
        ("note_id", pa.string()), ("system", pa.string()), ("code", pa.string()),
        ("description", pa.string()), ("score", pa.float64()), ("billable", pa.bool_()),
        ("rank", pa.int64()), ("assertion", pa.string()),
        ("evidence_start", pa.list_(pa.int64())), ("evidence_end", pa.list_(pa.int64())),
        ("evidence_text", pa.list_(pa.string())), ("hcc", pa.list_(pa.string())),
    ])
    return pa.Table.from_pylist(rows, schema=schema)


def to_dataframe(
    results: CodingResult | Iterable[CodingResult] | Iterable[tuple[Any, CodingResult]]
    | Mapping[Any, CodingResult],
    *,
    library: Literal["pandas", "polars"] = "pandas",
    hcc_year: int | None = DEFAULT_HCC_YEAR,
) -> Any:
    """One row per suggested code of ``results`` as a pandas (default) or polars DataFrame.

    ``results``: one result, a list (note ids are then the positions), ``(note_id, result)``
    pairs, or a dict from note id to result. ``hcc_year``: CMS-HCC payment year for the
    ``hcc`` column (2025-2027; needs ``medcode_nlp[claims]``), or None."""
    if library not in ("pandas", "polars"):
        raise InputError(f"Unknown DataFrame library {library!r}; expected pandas or polars.")
    rows = [row for note_id, result in _pairs(results)
            for row in code_rows(result, note_id, hcc_year)]
    try:
        table = arrow_table(rows)
    except ImportError:
        raise MedcodeError('to_dataframe needs pyarrow: pip install "medcode_nlp[parquet]"'
                           ) from None
    if library == "polars":
        try:
            import polars as pl
        except ImportError:
            raise MedcodeError("library='polars' needs polars: pip install polars") from None
        return pl.from_arrow(table)
    try:
        import pandas  # noqa: F401
    except ImportError:
        raise MedcodeError("library='pandas' needs pandas: pip install pandas") from None
    frame = table.to_pandas()
    for column in ("evidence_start", "evidence_end", "evidence_text", "hcc"):
        frame[column] = frame[column].map(list)
    return frame
