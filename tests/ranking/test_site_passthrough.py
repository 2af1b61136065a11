"""Site model 0.4: per-code pass-through of the base coder's extra codes, the fallback for a
note left with no code, the union with the base coder's label codes and post-posed uncertainty
scopes (helpers on hand-made inputs, then ``SiteModel.apply`` on the tiny trained model)."""

from __future__ import annotations

import pytest
from conftest import site_note_text

from medcode_nlp.ranking.site_features import note_tokens
from medcode_nlp.ranking.site_model import SiteModel
from medcode_nlp.schema import CodeSuggestion, CodingResult, Evidence
from medcode_nlp.training.site_decision import union_codes
from medcode_nlp.training.site_model import (
    CodedNote,
    _code_passthrough,
    _fallback,
    fit_site_model,
)


def _note(i: int, *required: str) -> CodedNote:
    return CodedNote(str(i), "t", frozenset(("icd10cm", c) for c in required))


def _result(*codes: tuple[str, float]) -> CodingResult:
    return CodingResult(codes=[CodeSuggestion(c, "icd10cm", "", s, True, [Evidence(0, 1, "t")])
                               for c, s in codes])


def test_post_posed_uncertainty_marks_the_words_before_it():
    text = site_note_text("Cough.", "Atelectasis versus pneumonia. Effusion cannot be "
                          "excluded. No fracture. Normal heart.")
    marks = {t.word: t.mark for t in note_tokens(text, backward=True)}
    assert marks["atelectasis"] == marks["pneumonia"] == marks["effusion"] == "unc"
    assert (marks["fracture"], marks["heart"], marks["cough"]) == ("neg", "", "")
    assert {t.word: t.mark for t in note_tokens(text)}["atelectasis"] == ""


def test_a_label_code_the_base_coder_gets_right_is_unioned():
    notes = [_note(0, "E849"), _note(1, "E849"), _note(2, "R059")]
    kept = [set(), set(), {"icd10cm|R059"}]
    base = [{"icd10cm|E849"}, {"icd10cm|E849"}, {"icd10cm|R059", "icd10cm|J189"}]
    assert union_codes(base, kept, ["icd10cm|E849", "icd10cm|J189"], notes) == ["icd10cm|E849"]
    assert kept[0] == {"icd10cm|E849"}


def test_extra_base_codes_pass_through_per_code_against_their_systems_choice():
    notes = [_note(0, "E84.9"), _note(1, "E84.9"), _note(2, "R05.9"), _note(3, "R05.9")]
    results = [_result(("E84.9", 0.9)), _result(("E84.9", 0.8)),
               _result(("R05.9", 0.9), ("I10", 0.5)), _result(("R05.9", 0.9), ("I10", 0.4))]
    kept = [set(), set(), {"icd10cm|R059"}, {"icd10cm|R059"}]
    labels = {"icd10cm|R059"}
    closed, final = _code_passthrough(results, kept, labels, notes, {"icd10cm": False})
    assert closed == {"icd10cm|E849": True} and final[0] == {"icd10cm|E849"}
    opened, final = _code_passthrough(results, kept, labels, notes, {"icd10cm": True})
    assert opened == {"icd10cm|I10": False} and final[2] == {"icd10cm|R059"}


def test_the_fallback_is_kept_only_when_the_base_coders_top_code_helps():
    notes = [_note(0, "R05.9"), _note(1, "R50.9")]
    right = [_result(("R05.9", 0.9), ("I10", 0.2)), _result(("R50.9", 0.7))]
    wrong = [_result(("I10", 0.9)), _result(("J45.909", 0.7))]
    assert _fallback(right, [set(), set()], notes)
    assert not _fallback(wrong, [set(), set()], notes)


@pytest.fixture(scope="module")
def trained(default_coder, kb):
    from conftest import SITE_CASES

    notes = [CodedNote(str(i), site_note_text(h, imp), frozenset(("icd10cm", c) for c in codes))
             for i, (h, imp, codes) in enumerate(SITE_CASES)]
    results = list(default_coder.pipe([n.text for n in notes]))
    return fit_site_model(notes, results, kb=kb)


def test_apply_honours_per_code_pass_through_and_the_fallback(trained):
    note = site_note_text("Cystic fibrosis.", "Normal chest.")
    base = CodingResult(codes=[
        CodeSuggestion("E84.9", "icd10cm", "Cystic fibrosis", 0.6, True,
                       [Evidence(0, 5, note[:5])]),
        CodeSuggestion("I10", "icd10cm", "Hypertension", 0.4, True, [Evidence(0, 5, note[:5])])])
    meta = {**trained.meta, "passthrough": {"icd10cm": False}, "deferred": [], "union": []}
    closed = SiteModel(trained.vectorizer, trained.classifier,
                       {**meta, "passthrough_codes": {}})
    site = {c.code for c in closed.predict(note, base)}
    assert not {"E84.9", "I10"} & {c.code for c in closed.apply(note, base).codes}
    opened = SiteModel(trained.vectorizer, trained.classifier,
                       {**meta, "passthrough_codes": {"icd10cm|E849": True}})
    assert {c.code for c in opened.apply(note, base).codes} - site == {"E84.9"}
    nothing = {**meta, "threshold": 1.01, "thresholds": None, "floor": 1.01}
    silent = SiteModel(trained.vectorizer, trained.classifier, {**nothing, "fallback": False})
    assert silent.apply(note, base).codes == []
    falling = SiteModel(trained.vectorizer, trained.classifier, {**nothing, "fallback": True})
    merged = falling.apply(note, base)
    assert [c.code for c in merged.codes] == ["E84.9"]
    assert "E84.9" not in {e.code for e in merged.excluded}
