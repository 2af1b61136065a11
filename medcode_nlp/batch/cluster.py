"""Batch coding on Dask: a bag or dataframe of notes in, coding results out."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from medcode_nlp.coder_cache import get_coder

if TYPE_CHECKING:  # pragma: no cover
    import dask.bag
    import dask.dataframe
    import pandas as pd

from medcode_nlp.batch.sources import Record, check_record, record_error
from medcode_nlp.batch.worker import code_records


# ------------------------------------------------------------------------ Dask API
def _code_items(items: Iterable[Any], *, id_field: str, text_field: str,
                load_options: dict[str, Any]) -> list[dict[str, Any]]:
    coder = get_coder(load_options)
    max_chars = coder.max_chars
    records: list[Record] = []
    for item in items:
        if isinstance(item, str):
            records.append(check_record(None, None, item, id_field=id_field,
                                        text_field=text_field, max_chars=max_chars,
                                        require_id=False))
        elif isinstance(item, Mapping):
            records.append(check_record(None, item.get(id_field), item.get(text_field),
                                        id_field=id_field, text_field=text_field,
                                        max_chars=max_chars, has_id=id_field in item,
                                        has_text=text_field in item, require_id=False))
        else:
            detail = f"item has type {type(item).__name__}; expected a string or a mapping"
            records.append((0, None, None, record_error(None, None, detail)))
    out = code_records(coder, records)
    for record in out:
        del record["row"]
    return out


def code_bag(bag: dask.bag.Bag, *, id_field: str = "id", text_field: str = "text",
             **load_options: Any) -> dask.bag.Bag:
    """Code a Dask bag of notes (strings, or mappings with an id and a text field).

    Each item becomes ``{"id", "result": CodingResult dict}`` or ``{"id", "error"}`` (``id``
    is None for string items). Runs with ``map_partitions``; every worker process loads the
    coder once (``load_options`` as for :func:`medcode_nlp.load`).
    """
    task = functools.partial(_code_items, id_field=id_field, text_field=text_field,
                             load_options=dict(load_options))
    return bag.map_partitions(task)


def _code_frame(frame: pd.DataFrame, *, text_column: str, id_column: str,
                load_options: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    texts = frame[text_column].tolist()
    ids = frame[id_column].tolist()
    items = [{id_column: _plain(i), text_column: None if _is_missing(t) else t}
             for i, t in zip(ids, texts, strict=True)]
    out = _code_items(items, id_field=id_column, text_field=text_column,
                      load_options=load_options)
    result = pd.DataFrame(index=frame.index)
    result[id_column] = frame[id_column]
    result["result"] = pd.Series(
        [json.dumps(r["result"], ensure_ascii=False) if "result" in r else None for r in out],
        index=frame.index, dtype=object)
    result["error"] = pd.Series([r.get("error") for r in out], index=frame.index, dtype=object)
    return result


def _is_missing(value: Any) -> bool:
    """None, NaN, pandas.NA and NaT (how a dataframe marks a missing cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def _plain(value: Any) -> Any:
    """Numpy scalars as Python ones; missing values as None."""
    if _is_missing(value):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str) else value


def code_dataframe(ddf: dask.dataframe.DataFrame, text_column: str = "text",
                   id_column: str = "id", **load_options: Any) -> dask.dataframe.DataFrame:
    """Code the notes of a Dask dataframe; returns ``[id_column, "result", "error"]``.

    ``result`` holds the CodingResult as a JSON string (None when the row has an error),
    ``error`` the problem (None when coded). The index is kept. Runs with
    ``map_partitions``; every worker process loads the coder once.
    """
    import pandas as pd

    meta = pd.DataFrame({
        id_column: pd.Series([], dtype=ddf[id_column].dtype),
        "result": pd.Series([], dtype=object),
        "error": pd.Series([], dtype=object),
    })
    task = functools.partial(_code_frame, text_column=text_column, id_column=id_column,
                             load_options=dict(load_options))
    return ddf.map_partitions(task, meta=meta)
