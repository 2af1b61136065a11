"""The offline HTML report of a coding result (``medcode_nlp.nlp.render``)."""

from __future__ import annotations

from pathlib import Path

from medcode_nlp.nlp.render import render_html

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_render_html_is_offline_and_escapes_the_note(default_coder):
    note = (EXAMPLES / "discharge_summary.txt").read_text(encoding="utf-8")
    text = note + "\nPatient wrote <script>alert(1)</script> & more."
    result = default_coder(text)
    page = render_html(text, result)
    assert page.startswith("<!doctype html>")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "src=" not in page and "http://" not in page and "https://" not in page
    for code in result.codes:
        assert f"<b>{code.code}</b>" in page
    for entity in result.entities[:5]:
        assert f'data-start="{entity.start}" data-end="{entity.end}"' in page
