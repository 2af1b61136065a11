"""The whole coder as a spaCy pipeline (issue 22): ``spacy.load`` of a saved pipeline in a
fresh process, ``doc._.codes``, the components in someone else's pipeline, two processes,
the knowledge-base reference, displaCy."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import spacy
import srsly

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.txt"))

#: Run in a fresh interpreter: no medcode_nlp import, spaCy finds every factory by entry point.
FRESH_LOAD = """
import json, sys
import spacy
nlp = spacy.load(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    doc = nlp(open(path, encoding="utf-8").read())
    assert doc._.codes == doc._.coding.codes
    out[path] = {"coding": doc._.coding.to_dict(),
                 "spans": [s.label_ for s in doc.spans["sc"]],
                 "candidates": [[c.code for c in e._.candidates or []][:3] for e in doc.ents]}
print(json.dumps({"imported_by_spacy": "medcode_nlp" in sys.modules, "docs": out}))
"""


def _view(doc) -> dict:
    return {"coding": doc._.coding.to_dict(),
            "spans": [s.label_ for s in doc.spans["sc"]],
            "candidates": [[c.code for c in e._.candidates or []][:3] for e in doc.ents]}


@pytest.fixture(scope="module")
def saved(default_coder, tmp_path_factory) -> Path:
    """The default coder's pipeline, saved with ``nlp.to_disk``."""
    path = tmp_path_factory.mktemp("pipeline") / "medcode"
    default_coder.nlp.to_disk(path)
    return path


def test_every_factory_of_the_pipeline_has_an_entry_point(default_coder):
    registered = {ep.name for ep in entry_points(group="spacy_factories")}
    spacy_own = {"sentencizer", "ner"}
    factories = {default_coder.nlp.get_pipe_meta(name).factory
                 for name in default_coder.nlp.pipe_names}
    assert "medcode_coder" in factories and "medcode_abbreviation_detector" in factories
    assert factories - spacy_own <= registered


def test_load_is_a_thin_wrapper_over_the_pipeline(default_coder):
    assert default_coder.nlp.pipe_names[-1] == "medcode_coder"
    text = (ROOT / "examples" / "office_visit.txt").read_text()
    doc = default_coder.nlp(text)
    assert doc._.coding.to_dict() == default_coder(text).to_dict()
    assert doc._.codes == doc._.coding.codes and doc._.excluded == doc._.coding.excluded
    assert "I10" in {c.code for c in doc._.codes}
    assert all(0 <= c.score <= 1 for e in doc.ents for c in e._.candidates or [])


def test_saved_directory_is_a_spacy_pipeline(saved):
    meta = srsly.read_json(saved / "meta.json")
    assert "medcode_coder" in meta["pipeline"]
    config = spacy.util.load_config(saved / "config.cfg")
    assert config["components"]["medcode_coder"]["factory"] == "medcode_coder"
    assert config["components"]["abbreviation_detector"]["factory"] == (
        "medcode_abbreviation_detector")
    for name in ("medcode_coder", "medcode_linker", "medcode_dictionary_matcher"):
        ref = srsly.read_json(saved / name / "kb.json")
        assert ref["content"] and ref["versions"]["icd10cm"]
    assert (saved / "medcode_coder" / "ranker" / "checksums.sha256").is_file()
    assert str(Path.home()) not in (saved / "config.cfg").read_text()  # no cache path


@pytest.mark.slow
def test_saved_pipeline_codes_the_same_in_a_fresh_process(default_coder, saved):
    done = subprocess.run([sys.executable, "-c", FRESH_LOAD, str(saved),
                           *map(str, EXAMPLES)],
                          capture_output=True, text=True, timeout=300, cwd=saved.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads(done.stdout.strip().splitlines()[-1])
    assert fresh["imported_by_spacy"]  # entry points, no import in the script
    for path in EXAMPLES:
        text = path.read_text(encoding="utf-8")
        assert fresh["docs"][str(path)]["coding"] == default_coder(text).to_dict(), path.name
        assert fresh["docs"][str(path)] == _view(default_coder.nlp(text)), path.name


@pytest.mark.slow
def test_two_processes_give_the_results_of_one(default_coder):
    texts = [path.read_text(encoding="utf-8") for path in EXAMPLES]
    one = [_view(doc) for doc in default_coder.nlp.pipe(texts)]
    two = [_view(doc) for doc in default_coder.nlp.pipe(texts, n_process=2, batch_size=2)]
    assert two == one


def test_components_pickle_after_use(default_coder):
    """The spawn/forkserver start methods (macOS, Windows) pickle the components for
    ``nlp.pipe(..., n_process=2)``."""
    import pickle

    default_coder((ROOT / "examples" / "office_visit.txt").read_text())
    for name, component in default_coder.nlp.pipeline:
        assert pickle.loads(pickle.dumps(component)) is not None, name


USER_NOTE = ("Assessment: essential hypertension, on lisinopril. Type 2 diabetes mellitus. "
             "Denies chest pain.\n")


def _user_pipeline(**coder_config):
    """A user's pipeline: their EntityRuler labels DISEASE, the label map names it PROBLEM."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "DISEASE", "pattern": [{"LOWER": "essential"},
                                                         {"LOWER": "hypertension"}]},
                        {"label": "DISEASE", "pattern": "Type 2 diabetes mellitus"},
                        {"label": "DISEASE", "pattern": "chest pain"}])
    nlp.add_pipe("medcode_label_mapper", config={"mapping": {"DISEASE": "PROBLEM"}})
    nlp.add_pipe("medcode_sections")
    nlp.add_pipe("medcode_context")
    nlp.add_pipe("medcode_linker")
    nlp.add_pipe("medcode_coder", config=coder_config)
    return nlp


def test_coder_in_a_users_pipeline_with_their_ner(kb, tmp_path):
    nlp = _user_pipeline(ranker="none")
    doc = nlp(USER_NOTE)
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("essential hypertension", "PROBLEM"), ("Type 2 diabetes mellitus", "PROBLEM"),
        ("chest pain", "PROBLEM")]
    codes = {c.code for c in doc._.codes}
    assert {"I10", "E11.9"} <= codes and "R07.9" not in codes
    assert "PROBLEM | present | I10" in {s.label_ for s in doc.spans["sc"]}
    assert any(s.label_.startswith("PROBLEM | negated") for s in doc.spans["sc"])
    assert doc._.coding.versions["mode"] == {"ner": "custom", "ranker": "similarity"}
    nlp.to_disk(tmp_path / "user")
    again = spacy.load(tmp_path / "user")
    assert again(USER_NOTE)._.coding.to_dict() == doc._.coding.to_dict()
    # the Coder API over a loaded pipeline: same results, same options
    from medcode_nlp import Coder

    coder = Coder.from_nlp(again)
    assert coder(USER_NOTE).to_dict() == doc._.coding.to_dict()
    assert coder.options.setting == "outpatient" and coder.ranker is None
    assert coder(USER_NOTE, setting="inpatient").versions == doc._.coding.versions


def test_coder_from_a_pipeline_without_the_component_is_refused():
    from medcode_nlp import Coder, InputError

    with pytest.raises(InputError, match="no medcode_coder component"):
        Coder.from_nlp(spacy.blank("en"))


def test_a_site_model_travels_in_the_saved_pipeline(default_coder, tmp_path):
    from conftest import SITE_CASES, site_note_text

    from medcode_nlp.training.site_model import CodedNote, fit_site_model

    notes = [CodedNote(f"t{i}", site_note_text(h, imp), frozenset(("icd10cm", c) for c in codes))
             for i, (h, imp, codes) in enumerate(SITE_CASES)]
    site = fit_site_model(notes, list(default_coder.pipe([n.text for n in notes])),
                          kb=default_coder.kb)
    nlp = _user_pipeline(ranker="none")
    nlp.get_pipe("medcode_coder").site_model = site
    note = site_note_text("Cough and fever.", "Right middle lobe pneumonia.")
    expected = nlp(note)._.coding.to_dict()
    assert expected["versions"].get("site_model")
    nlp.to_disk(tmp_path / "p")
    assert (tmp_path / "p" / "medcode_coder" / "site_model").is_dir()
    assert spacy.load(tmp_path / "p")(note)._.coding.to_dict() == expected


def test_blank_english_pipeline_with_the_project_ner(kb):
    from medcode_nlp.nlp.pipeline import default_ner_path
    from medcode_nlp.nlp.tokenizer import create_clinical_tokenizer

    nlp = create_clinical_tokenizer(spacy.blank("en"))  # the tokenizer the NER was trained on
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("ner", source=spacy.load(default_ner_path()))
    for name in ("medcode_sections", "medcode_context", "medcode_linker"):
        nlp.add_pipe(name)
    nlp.add_pipe("medcode_coder", config={"ranker": "none"})
    doc = nlp("Assessment: essential hypertension. Plan: continue lisinopril.")
    assert "I10" in {c.code for c in doc._.codes}


def test_components_round_trip_through_bytes(default_coder):
    nlp = _user_pipeline(ranker="none")
    nlp.add_pipe("medcode_dictionary_matcher", config={"mode": "fill"}, before="medcode_linker")
    text = (ROOT / "examples" / "office_visit.txt").read_text()
    expected = nlp(text)._.coding.to_dict()
    for name in ("medcode_linker", "medcode_dictionary_matcher", "medcode_coder"):
        component = nlp.get_pipe(name)
        data = component.to_bytes()
        component.from_bytes(data)
    assert nlp(text)._.coding.to_dict() == expected


def test_a_knowledge_base_that_does_not_match_is_a_clear_error(kb, tmp_path):
    from medcode_nlp.errors import IntegrityError

    nlp = spacy.blank("en")
    nlp.add_pipe("medcode_linker")
    nlp.to_disk(tmp_path / "p")
    assert spacy.load(tmp_path / "p").pipe_names == ["medcode_linker"]
    ref_path = tmp_path / "p" / "medcode_linker" / "kb.json"
    ref = srsly.read_json(ref_path)
    srsly.write_json(ref_path, {**ref, "content": "0" * 64, "builtin": False})
    with pytest.raises(IntegrityError, match="needs the knowledge base") as error:
        spacy.load(tmp_path / "p")
    assert ref["name"] in str(error.value) and "MEDCODE_KB" in str(error.value)


def test_the_knowledge_base_is_found_by_its_reference_not_its_path(kb, tmp_path):
    from medcode_nlp.nlp.components.linker import CodeLinker

    saved = CodeLinker(None, "medcode_linker", kb_path=None, systems=None,  # type: ignore[arg-type]
                       top_k=5, min_similarity=0.3)
    saved.to_disk(tmp_path / "linker")
    moved = CodeLinker(None, "medcode_linker", kb_path=str(tmp_path / "gone"),  # type: ignore[arg-type]
                       systems=None, top_k=5, min_similarity=0.3)
    assert moved.from_disk(tmp_path / "linker").kb_path is None  # the default one matches


def test_render_shows_label_assertion_and_top_code(kb):
    from spacy import displacy

    import medcode_nlp
    from medcode_nlp.nlp.render import render_html

    doc = _user_pipeline(ranker="none")(USER_NOTE)
    page = medcode_nlp.nlp.render(doc)
    assert "PROBLEM | present | I10" in page and "PROBLEM | negated" in page
    assert "PROBLEM | present | I10" in displacy.render(doc, style="span")
    report = render_html(doc.text, doc._.coding)
    assert 'title="PROBLEM | present | I10 | section:' in report
    view = report.split("displaCy span view", 1)[1]  # the report reuses displaCy's span view
    assert "PROBLEM | present | I10" in view and "PROBLEM | negated" in view


def test_coder_settings_are_checked(kb):
    from medcode_nlp.errors import InputError

    nlp = spacy.blank("en")
    with pytest.raises(InputError, match="Unknown setting 'clinic'"):
        nlp.add_pipe("medcode_coder", config={"setting": "clinic"})
    nlp.add_pipe("medcode_coder", config={"ranker": str(ROOT / "no-such-ranker")})
    with pytest.raises(InputError, match="Unknown ranker"):
        nlp("Hypertension.")
