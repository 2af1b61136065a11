"""Site model: learnt from a tiny coded set written for these tests; evidence, persistence, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SITE_CASES, run_medcode, site_note_text

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.errors import InputError, IntegrityError
from medcode_nlp.paths import shared_data_dir
from medcode_nlp.ranking.site_model import SiteModel, note_tokens
from medcode_nlp.schema import CodeSuggestion, CodingResult, Evidence
from medcode_nlp.training.site_model import (
    fit_site_model,
    micro_counts,
    read_coded_notes,
)

ROOT = Path(__file__).resolve().parents[2]





def _rows() -> list[dict[str, object]]:
    return [{"id": f"t{i}", "text": site_note_text(h, imp),
             "codes": [{"system": "icd10cm", "code": c} for c in codes]}
            for i, (h, imp, codes) in enumerate(SITE_CASES)]


@pytest.fixture(scope="module")
def coded_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("site") / "coded.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(coded_file, default_coder, kb):
    notes = read_coded_notes(coded_file)
    results = list(default_coder.pipe([n.text for n in notes]))
    return fit_site_model(notes, results, kb=kb), notes, results


def test_scopes_mark_negated_uncertain_and_history_words():
    tokens = note_tokens(site_note_text("History of urinary tract infection.",
                               "No focal pneumonia. Possible atelectasis. Cough."))
    marks = {t.word: (t.mark, t.group) for t in tokens}
    assert marks["pneumonia"] == ("neg", "dx")
    assert marks["atelectasis"] == ("unc", "dx")
    assert marks["infection"] == ("hist", "reason")
    assert marks["cough"] == ("", "dx")  # a new sentence ends the scope


def test_site_model_learns_the_sites_conventions(trained, default_coder):
    model, _, _ = trained
    assert {c for _, c in model.labels} == {"R05.9", "R50.9", "J18.9", "N39.0"}
    cases = {site_note_text("Cough and fever.", "Right middle lobe pneumonia."): {"J18.9"},
             site_note_text("Cough.", "Normal chest."): {"R05.9"},
             site_note_text("Urinary tract infection.", "Normal renal ultrasound."): {"N39.0"}}
    for text, expected in cases.items():
        result = default_coder(text)
        labels = {code for _, code in model.labels}
        assert {c.code for c in model.apply(text, result).codes} & labels == expected


def test_every_site_code_has_a_span_of_the_note(trained):
    model, notes, results = trained
    empty = CodingResult()  # no base evidence at all: spans come from the n-gram features
    for note, result in zip(notes, results, strict=True):
        for base in (result, empty):
            merged = model.apply(note.text, base)
            for code in merged.codes:
                assert code.evidence, code.code
                for span in code.evidence:
                    assert note.text[span.start:span.end] == span.text


def test_codes_outside_the_label_space_pass_through_unless_the_site_drops_them(trained):
    model, notes, _ = trained
    extra = CodeSuggestion("I10", "icd10cm", "Essential hypertension", 0.9, True,
                           [Evidence(0, 5, notes[0].text[:5])])
    kept_base = CodeSuggestion("R05.9", "icd10cm", "Cough", 0.99, True,
                               [Evidence(0, 5, notes[0].text[:5])])
    base = CodingResult(codes=[extra, kept_base])
    note = site_note_text("Fever.", "Lobar pneumonia.")
    passing = SiteModel(model.vectorizer, model.classifier,
                        {**model.meta, "deferred": [], "passthrough": {"icd10cm": True}})
    merged = passing.apply(note, base)
    assert "I10" in {c.code for c in merged.codes}
    # the site model decides R05.9: kept with its own prompt, else excluded (never passed on)
    site_kept = {c.code for c in passing.predict(note, base)}
    decided = [c for c in merged.codes if c.code == "R05.9"]
    if "R05.9" in site_kept:
        assert decided and decided[0].prompts[0] == f"site model {passing.version}"
    else:
        assert not decided and "R05.9" in {x.code for x in merged.excluded}
    closed = SiteModel(model.vectorizer, model.classifier,
                       {**model.meta, "deferred": [], "passthrough": {"icd10cm": False}})
    assert "I10" not in {c.code for c in closed.apply(note, base).codes}
    deferring = SiteModel(model.vectorizer, model.classifier,
                          {**model.meta, "deferred": [["icd10cm", "R05.9"]],
                           "passthrough": {"icd10cm": False}})
    assert "R05.9" in {c.code for c in deferring.apply(note, base).codes}  # base decides it


def test_save_load_round_trip_and_checksum(trained, tmp_path):
    model, notes, results = trained
    target = model.save(tmp_path / "site")
    loaded = SiteModel.load(target)
    for note, result in zip(notes[:5], results[:5], strict=True):
        assert ([(c.code, c.score) for c in loaded.apply(note.text, result).codes]
                == [(c.code, c.score) for c in model.apply(note.text, result).codes])
    meta = target / "site_model.json"
    meta.write_text(meta.read_text().replace('"threshold"', '"threshold" ', 1))
    with pytest.raises(IntegrityError, match="Checksum mismatch"):
        SiteModel.load(target)


def test_load_without_a_site_model_is_a_numbered_error(tmp_path):
    with pytest.raises(InputError, match="missing or incomplete"):
        SiteModel.load(tmp_path)


def _cli(monkeypatch, capsysbinary, *args: str) -> tuple[int, bytes, bytes]:
    code = run_medcode(monkeypatch, *args)
    out = capsysbinary.readouterr()
    return code, out.out, out.err


def test_cli_train_ranker_gold_then_suggest_with_the_site_model(
        coded_file, tmp_path, monkeypatch, capsysbinary, kb):
    out = tmp_path / "site"
    code, stdout, stderr = _cli(monkeypatch, capsysbinary, "train", "ranker", "--gold",
                                str(coded_file), "--out", str(out))
    assert code == 0, stderr.decode()
    assert json.loads(stdout)["notes"] == len(SITE_CASES)
    assert (out / "checksums.sha256").is_file()
    note = tmp_path / "note.txt"
    note.write_text(site_note_text("Cough and fever.", "Left lower lobe pneumonia."), encoding="utf-8")
    code, stdout, stderr = _cli(monkeypatch, capsysbinary, "suggest", str(note), "--format",
                                "json", "--site-model", str(out))
    assert code == 0, stderr.decode()
    data = json.loads(stdout)
    assert data["versions"]["site_model"]
    assert "J18.9" in {c["code"] for c in data["codes"]}
    assert not {"R05.9", "R50.9"} & {c["code"] for c in data["codes"]}


def test_cli_gold_with_ranker_inputs_is_refused(coded_file, tmp_path, monkeypatch, capsysbinary):
    code, _, stderr = _cli(monkeypatch, capsysbinary, "train", "ranker", "--gold",
                           str(coded_file), "--feedback", str(tmp_path / "r.db"))
    assert code == 2 and b"coded notes only" in stderr


def test_a_feature_without_value_has_no_span():
    from medcode_nlp.ranking.site_model import NoteFeatures

    features = NoteFeatures()
    features.add("cand:present:hcpcs|J0171", 0.0, (0, 4))
    features.add("w:cough", 1.0, (5, 10))
    assert features.spans == {"w:cough": (5, 10)}


def test_the_ensemble_averages_its_members_and_weights_the_base_features(trained):
    from medcode_nlp.ranking.site_model import note_features, weighted

    model, notes, results = trained
    assert [m["penalty"] for m in model.meta["members"]] == ["l2", "l1"]
    assert len(model.members) == 2 and model.weights == {"base": 5.0, "cand": 5.0}
    assert weighted({"base:icd10cm|R059": 0.5, "basecat:x": 1.0, "w:cough": 1.0},
                    model.weights) == {"base:icd10cm|R059": 2.5, "basecat:x": 5.0,
                                       "w:cough": 1.0}
    features = [note_features(n.text, r) for n, r in zip(notes[:4], results[:4], strict=True)]
    probs = model.probabilities(features)
    single = [SiteModel(model.vectorizer, member, model.meta).probabilities(features)
              for member in model.members]
    assert probs == pytest.approx((single[0] + single[1]) / 2)
    assert all(t is None or 0.0 < t < 1.0 for t in model.meta["thresholds"] or [None])


def test_the_base_coder_is_a_member_whose_weight_the_inner_folds_choose(trained):
    """site-0.3.0: the classifiers' probability is blended with the base coder's decision (1 for
    a code on its main list) at a weight chosen in the inner folds."""
    from medcode_nlp.ranking.site_model import base_decisions, note_features
    from medcode_nlp.training.site_model import BASE_WEIGHTS

    model, notes, results = trained
    assert model.meta["base_weight"] in BASE_WEIGHTS
    assert {tuple(c) for c in model.meta["deferred"]} <= set(model.labels)
    features = [note_features(n.text, r) for n, r in zip(notes[:4], results[:4], strict=True)]
    labels = [f"{s}|{code_key(c)}" for s, c in model.labels]
    decided = base_decisions(features, labels)
    assert decided.shape == (4, len(labels))
    assert {float(v) for v in decided.ravel()} <= {0.0, 1.0}
    for i, result in enumerate(results[:4]):
        base = {f"{c.system}|{code_key(c.code)}" for c in result.codes}
        assert {labels[j] for j in range(len(labels)) if decided[i, j]} == base & set(labels)
    alone = SiteModel(model.vectorizer, model.classifier, {**model.meta, "base_weight": 0.0})
    blended = SiteModel(model.vectorizer, model.classifier, {**model.meta, "base_weight": 0.3})
    assert blended.probabilities(features) == pytest.approx(
        0.7 * alone.probabilities(features) + 0.3 * decided)

CMC = shared_data_dir() / "cmc2007-radiology" / "dev.jsonl"


@pytest.mark.slow  # codes 450 notes and fits a site model
@pytest.mark.skipif(not CMC.is_file(), reason=f"CMC 2007 radiology data absent ({CMC})")
def test_site_model_on_cmc_held_out_notes(default_coder, kb):
    """Trained on 300 CMC dev notes, scored on 150 others: micro F1 of at least 0.78 and above
    the shipped coder alone (0.801 vs 0.777 at this commit), and every code kept has a span of
    the note. Only counts are compared (no note text in any message)."""
    from medcode_nlp.codesets.registry import code_key

    notes = read_coded_notes(CMC)
    train, test = notes[:300], notes[300:450]
    results = list(default_coder.pipe([n.text for n in train + test]))
    model = fit_site_model(train, results[:300], kb=kb)
    kept: list[set[str]] = []
    for note, result in zip(test, results[300:], strict=True):
        codes = model.apply(note.text, result).codes
        assert all(c.evidence for c in codes), "a kept code without a span"
        kept.append({f"{c.system}|{code_key(c.code)}" for c in codes})
    shipped = [{f"{c.system}|{code_key(c.code)}" for c in r.codes} for r in results[300:]]
    site, base = (2 * tp / (tp + fp + n) for tp, fp, n in (micro_counts(kept, test),
                                                          micro_counts(shipped, test)))
    assert site >= 0.78 and site >= base + 0.01, (site, base)
