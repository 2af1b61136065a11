"""Tests of the medcode_sections component (notes written for these tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span

from medcode_nlp.errors import InputError
from medcode_nlp.nlp.components.sections import (
    SectionsComponent,
    load_section_rules,
    phrase_trie_regex,
)


@pytest.fixture(scope="module")
def nlp() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("medcode_sections")
    return nlp


def section_types(doc: Doc) -> list[str]:
    return [s[2] for s in doc._.sections]


def test_sections_resource_has_many_types_with_variants() -> None:
    rules = load_section_rules()
    assert len(rules.types) >= 30
    variants: dict[str, int] = {}
    for stype in rules.headers.values():
        variants[stype] = variants.get(stype, 0) + 1
    assert sum(1 for n in variants.values() if n >= 3) >= 30
    for required in (
        "chief_complaint",
        "history_of_present_illness",
        "past_medical_history",
        "past_surgical_history",
        "family_history",
        "social_history",
        "medications",
        "allergies",
        "review_of_systems",
        "physical_exam",
        "vital_signs",
        "laboratory",
        "imaging",
        "assessment",
        "plan",
        "assessment_and_plan",
        "impression",
        "diagnoses",
        "discharge_diagnoses",
        "admission_diagnoses",
        "procedures",
        "operative_findings",
        "preoperative_diagnosis",
        "postoperative_diagnosis",
        "indications",
        "hospital_course",
        "discharge_instructions",
        "discharge_medications",
        "follow_up",
        "problem_list",
        "immunizations",
        "pathology",
        "anesthesia",
        "complications",
        "estimated_blood_loss",
        "specimens",
    ):
        assert required in rules.types


def test_sections_assertion_hints() -> None:
    hints = load_section_rules().hints
    assert hints["family_history"] == "family"
    assert hints["past_medical_history"] == "historical"
    assert hints["past_surgical_history"] == "historical"
    assert hints["social_history"] == "historical"  # background habits (ConText convention)
    assert hints["allergies"] == "historical"  # allergy status, not a current reaction
    assert hints["differential_diagnosis"] == "uncertain"
    assert hints["assessment_and_plan"] is None


def test_sections_all_caps_colon_headers(nlp: Language) -> None:
    text = "CHIEF COMPLAINT: cough\nPAST MEDICAL HISTORY: asthma\nMEDICATIONS: albuterol\n"
    doc = nlp(text)
    assert section_types(doc) == ["chief_complaint", "past_medical_history", "medications"]
    start, end, stype, header = doc._.sections[1]
    assert text[start:end] == "PAST MEDICAL HISTORY: asthma\n"
    assert header == "PAST MEDICAL HISTORY"


def test_sections_title_case_and_abbreviations(nlp: Language) -> None:
    doc = nlp("HPI: knee pain after a fall\nPmh: gout\nAllergies: none known\nA/P: sprain\n")
    assert section_types(doc) == [
        "history_of_present_illness",
        "past_medical_history",
        "allergies",
        "assessment_and_plan",
    ]


def test_sections_header_alone_on_a_line(nlp: Language) -> None:
    doc = nlp("Review of Systems\nNo rash.\n\nPHYSICAL EXAM\nWell appearing.\nplan\n")
    # a lower-case word alone on a line is text, not a header
    assert section_types(doc) == ["review_of_systems", "physical_exam"]


def test_sections_numbered_and_qualified_headers(nlp: Language) -> None:
    text = (
        "1. Assessment: otitis media\n"
        "2) PLAN\n"
        "amoxicillin\n"
        "DISCHARGE DIAGNOSIS(ES): otitis media\n"
        "BRIEF HOSPITAL COURSE: uneventful\n"
        "HISTORY OF PRESENT ILLNESS/HOSPITAL COURSE: see above\n"
        "ADMISSION DIAGNOSIS: fever\n"
    )
    doc = nlp(text)
    assert section_types(doc) == [
        "assessment",
        "plan",
        "discharge_diagnoses",
        "hospital_course",
        "history_of_present_illness",
        "admission_diagnoses",
    ]
    assert text[doc._.sections[0][0] :].startswith("1. Assessment")


def test_sections_short_abbreviation_needs_colon(nlp: Language) -> None:
    # "PE" alone on a line is a problem (pulmonary embolism), "PE:" opens the exam
    doc = nlp("PROBLEM LIST\nPE\nPE: lungs clear\n")
    assert section_types(doc) == ["problem_list", "physical_exam"]


def test_sections_inline_headers_of_flattened_notes(nlp: Language) -> None:
    text = "Seen today.  SOCIAL HISTORY:  No tobacco.  Family History:  diabetes in father."
    doc = nlp(text)
    assert section_types(doc) == ["social_history", "family_history"]
    off = spacy.blank("en")
    off.add_pipe("medcode_sections", config={"inline_headers": False})
    assert off(text)._.sections == []


def test_sections_note_without_headers(nlp: Language) -> None:
    doc = nlp.make_doc("Patient feels better today. Cough is improving.")
    doc.ents = [Span(doc, 5, 6, label="PROBLEM")]
    doc = nlp(doc)
    assert doc._.sections == []
    assert doc.ents[0]._.section is None


def test_sections_every_entity_and_span_group_gets_its_section(nlp: Language) -> None:
    text = "HPI: wheezing since Monday\nFamily history: asthma in mother\n"
    doc = nlp.make_doc(text)
    wheezing = doc.char_span(text.index("wheezing"), text.index("wheezing") + 8, label="PROBLEM")
    asthma = doc.char_span(text.index("asthma"), text.index("asthma") + 6, label="PROBLEM")
    doc.ents = [wheezing]
    doc.spans["mentions"] = [asthma]
    doc.spans["other"] = [wheezing]
    doc = nlp(doc)
    assert doc.ents[0]._.section == "history_of_present_illness"
    assert doc.spans["mentions"][0]._.section == "family_history"
    assert doc.spans["other"][0]._.section == "history_of_present_illness"


def test_sections_text_before_first_header_has_no_section(nlp: Language) -> None:
    text = "Clinic note\nAssessment: sinusitis\n"
    doc = nlp(text)
    assert doc._.sections[0][0] == text.index("Assessment")


def test_sections_custom_rules_path(tmp_path: Path) -> None:
    rules = {
        "sections": [
            {"type": "wound_check", "assertion": None, "headers": ["wound check", "wc:"]},
        ]
    }
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules), encoding="utf8")
    nlp = spacy.blank("en")
    nlp.add_pipe("medcode_sections", config={"rules_path": str(path)})
    doc = nlp("WOUND CHECK: clean\nWC\nWC: dry\n")
    assert section_types(doc) == ["wound_check", "wound_check"]


@pytest.mark.parametrize(
    "payload",
    [
        {"sections": "not a list"},
        {"sections": [{"headers": ["x"]}]},
        {"sections": [{"type": "x", "headers": "x"}]},
        {"sections": [{"type": "x", "assertion": "maybe", "headers": ["x"]}]},
    ],
)
def test_sections_bad_rules_raise_input_error(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload), encoding="utf8")
    with pytest.raises(InputError, match="sections rules JSON"):
        SectionsComponent(spacy.blank("en"), rules_path=str(path))


def test_sections_missing_rules_file_raises(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        SectionsComponent(spacy.blank("en"), rules_path=str(tmp_path / "none.json"))


def test_sections_serialization_round_trip(tmp_path: Path) -> None:
    rules = {"sections": [{"type": "wound_check", "headers": ["wound check"]}]}
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules), encoding="utf8")
    nlp = spacy.blank("en")
    nlp.add_pipe("medcode_sections", config={"rules_path": str(path)})
    nlp.to_disk(tmp_path / "pipeline")
    fresh = spacy.blank("en")
    fresh.add_pipe("medcode_sections")
    fresh.get_pipe("medcode_sections").from_disk(tmp_path / "pipeline" / "medcode_sections")
    assert section_types(fresh("Wound check: clean\n")) == ["wound_check"]
    other = spacy.blank("en")
    other.add_pipe("medcode_sections")
    other.from_bytes(nlp.to_bytes())
    assert section_types(other("Wound check: clean\n")) == ["wound_check"]


def test_sections_phrase_trie_regex_prefers_longest() -> None:
    import re

    pattern = re.compile(phrase_trie_regex(["plan", "plan of care", "p"], word_bounds=True), re.I)
    assert pattern.match("Plan  of care").group() == "Plan  of care"
    assert pattern.match("planet") is None
    assert pattern.match("plan.").group() == "plan"
