"""The review decision store: CSV export safety and where its database lives."""

from __future__ import annotations

import csv
import io
import json

from medcode_nlp.review.store import Decision, ReviewStore, default_db_path


def test_csv_export_neutralises_formulas(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite3")
    store.record([Decision(reviewer="=HYPERLINK(\"x\")", note_id="@n", decision="add",
                           final_system="icd10cm", final_code="I10")])
    row = next(csv.DictReader(io.StringIO(store.export_csv())))
    assert row["reviewer"].startswith("'=") and row["note_id"] == "'@n"
    out = store.export(tmp_path / "out.jsonl")
    assert json.loads(out.read_text())["reviewer"].startswith("=")


def test_default_db_path_is_configurable(monkeypatch, tmp_path):
    monkeypatch.delenv("MEDCODE_REVIEW_DB", raising=False)
    assert "medcode_nlp" in str(default_db_path())
    monkeypatch.setenv("MEDCODE_REVIEW_DB", str(tmp_path / "x.sqlite3"))
    assert default_db_path() == tmp_path / "x.sqlite3"
