"""Tests of the medcode_context component (ConText) with sentences written for these tests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from medcode_nlp.errors import InputError
from medcode_nlp.nlp.components.context import ContextComponent, assertion_from_flags
from medcode_nlp.nlp.components.context_rules import ASSERTION_PRIORITY, load_context_rules
from medcode_nlp.nlp.components.sentences import split_sentences

FLAGS = ("is_negated", "is_historical", "is_hypothetical", "is_family", "is_uncertain")


@pytest.fixture(scope="module")
def nlp() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("medcode_sections")
    nlp.add_pipe("medcode_context")
    return nlp


def assess(nlp: Language, text: str, *phrases: str) -> dict[str, Span]:
    """Run the pipeline with each phrase (first occurrence) as an entity."""
    doc = nlp.make_doc(text)
    spans = []
    for phrase in phrases:
        match = re.search(re.escape(phrase), text)
        assert match, phrase
        span = doc.char_span(match.start(), match.end(), label="PROBLEM")
        assert span is not None, phrase
        spans.append(span)
    doc.ents = filter_spans(spans)
    doc = nlp(doc)
    return {span.text: span for span in doc.ents}


def flags(span: Span) -> set[str]:
    return {f for f in FLAGS if getattr(span._, f)}


# --- negation ----------------------------------------------------------------------------


def test_context_negation_forward_list(nlp: Language) -> None:
    found = assess(
        nlp, "She denies headache, neck stiffness or photophobia.", "headache", "photophobia"
    )
    assert found["headache"]._.assertion == "negated"
    assert found["photophobia"]._.is_negated


def test_context_negation_no_and_without(nlp: Language) -> None:
    found = assess(nlp, "No edema. Abdomen soft without guarding.", "edema", "guarding")
    assert found["edema"]._.is_negated and found["guarding"]._.is_negated


def test_context_negation_backward(nlp: Language) -> None:
    found = assess(nlp, "Deep vein thrombosis was ruled out by ultrasound.", "Deep vein thrombosis")
    assert found["Deep vein thrombosis"]._.assertion == "negated"
    found = assess(nlp, "Her strep screen was negative.", "strep screen")
    assert found["strep screen"]._.is_negated


def test_context_unlikely_counts_as_negation(nlp: Language) -> None:
    found = assess(nlp, "Appendicitis is unlikely given the exam.", "Appendicitis")
    assert found["Appendicitis"]._.assertion == "negated"


def test_context_pseudo_no_increase_blocks_negation(nlp: Language) -> None:
    found = assess(nlp, "There is no increase in the pleural effusion.", "pleural effusion")
    assert found["pleural effusion"]._.assertion == "present"


def test_context_pseudo_not_only_blocks_negation(nlp: Language) -> None:
    found = assess(nlp, "He has not only vertigo but also tinnitus.", "vertigo", "tinnitus")
    assert not found["vertigo"]._.is_negated
    assert not found["tinnitus"]._.is_negated


def test_context_pseudo_running_into_the_mention_still_negates(nlp: Language) -> None:
    found = assess(nlp, "No change in vision.", "change in vision")
    assert found["change in vision"]._.is_negated
    found = assess(nlp, "No change in the size of the thyroid nodule.", "thyroid nodule")
    assert not found["thyroid nodule"]._.is_negated


def test_context_termination_but(nlp: Language) -> None:
    found = assess(nlp, "No fever but reports a productive cough.", "fever", "productive cough")
    assert found["fever"]._.is_negated
    assert found["productive cough"]._.assertion == "present"


def test_context_negation_scope_is_limited_to_the_window(nlp: Language) -> None:
    text = (
        "No rash on the arms or the legs and the family says he walked to the store "
        "yesterday with a limp."
    )
    found = assess(nlp, text, "rash", "limp")
    assert found["rash"]._.is_negated
    assert not found["limp"]._.is_negated


@pytest.mark.parametrize("text", ["He is pain free today.", "Now pain-free at rest."])
def test_context_negation_free_suffix(nlp: Language, text: str) -> None:
    assert assess(nlp, text, "pain")["pain"]._.assertion == "negated"


def test_context_negation_inside_mention_is_a_finding(nlp: Language) -> None:
    found = assess(nlp, "Lungs clear without wheezes.", "Lungs clear without wheezes")
    assert found["Lungs clear without wheezes"]._.assertion == "present"


# --- sentence scope ----------------------------------------------------------------------


def test_context_scope_stops_at_sentence_end(nlp: Language) -> None:
    found = assess(nlp, "She denies dysuria. Hematuria noted on dipstick.", "dysuria", "Hematuria")
    assert found["dysuria"]._.is_negated
    assert not found["Hematuria"]._.is_negated


def test_context_scope_stops_at_line_break_list(nlp: Language) -> None:
    found = assess(nlp, "Denies chills\nSore throat for three days", "chills", "Sore throat")
    assert found["chills"]._.is_negated
    assert not found["Sore throat"]._.is_negated


def test_context_uses_sentence_boundaries_when_present() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("medcode_sections")
    nlp.add_pipe("medcode_context")
    found = assess(nlp, "No nausea. Vomiting twice today.", "nausea", "Vomiting")
    assert found["nausea"]._.is_negated
    assert not found["Vomiting"]._.is_negated


def test_context_semicolon_ends_the_clause(nlp: Language) -> None:
    found = assess(nlp, "No syncope; palpitations at night.", "syncope", "palpitations")
    assert found["syncope"]._.is_negated
    assert not found["palpitations"]._.is_negated


def test_context_split_sentences_heuristic() -> None:
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Mr. Lee has gout. He is better.\nBP stable\nwith a wrapped\nline")
    sents = [doc[a:b].text.strip() for a, b in split_sentences(doc)]
    assert sents == ["Mr. Lee has gout.", "He is better.", "BP stable\nwith a wrapped\nline"]


# --- historical --------------------------------------------------------------------------


def test_context_historical_triggers(nlp: Language) -> None:
    text = "He has a history of gout and kidney stones who presents with a swollen ankle."
    found = assess(nlp, text, "gout", "kidney stones", "swollen ankle")
    assert found["gout"]._.assertion == "historical"
    assert found["kidney stones"]._.is_historical
    assert found["swollen ankle"]._.assertion == "present"


def test_context_historical_status_post_and_ago(nlp: Language) -> None:
    found = assess(nlp, "Status post cholecystectomy.", "cholecystectomy")
    assert found["cholecystectomy"]._.is_historical
    found = assess(nlp, "She had a stroke six years ago.", "stroke")
    assert found["stroke"]._.is_historical


def test_context_duration_history_is_current(nlp: Language) -> None:
    found = assess(nlp, "He reports a three-day history of diarrhea.", "diarrhea")
    assert found["diarrhea"]._.assertion == "present"
    found = assess(nlp, "Fever in the past two days.", "Fever")
    assert not found["Fever"]._.is_historical


def test_context_history_of_present_illness_is_not_history(nlp: Language) -> None:
    found = assess(nlp, "History of present illness: cough for a week.", "cough")
    assert not found["cough"]._.is_historical


# --- hypothetical ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Return to the emergency department if chest pain or fainting occurs.", "fainting"),
        ("Should she develop a fever, she will call the clinic.", "fever"),
        ("He felt as if he would black out.", "black out"),
        ("Call for any bleeding from the incision.", "bleeding"),
        ("If the rash spreads, stop the cream.", "rash"),
    ],
)
def test_context_hypothetical(nlp: Language, text: str, phrase: str) -> None:
    found = assess(nlp, text, phrase)
    assert found[phrase]._.assertion == "hypothetical"


def test_context_hypothetical_stops_at_otherwise(nlp: Language) -> None:
    text = "Return if wound redness appears, otherwise his ankle sprain is managed at home."
    found = assess(nlp, text, "wound redness", "ankle sprain")
    assert found["wound redness"]._.is_hypothetical
    assert not found["ankle sprain"]._.is_hypothetical


# --- family / experiencer ----------------------------------------------------------------


def test_context_family_triggers(nlp: Language) -> None:
    found = assess(nlp, "Mother had breast cancer.", "breast cancer")
    assert found["breast cancer"]._.assertion == "family"
    found = assess(nlp, "Family history of colon cancer.", "colon cancer")
    assert found["colon cancer"]._.is_family
    found = assess(nlp, "Psoriasis in her father.", "Psoriasis")
    assert found["Psoriasis"]._.is_family


def test_context_family_terminated_by_the_patient(nlp: Language) -> None:
    found = assess(nlp, "Her sister had lupus; the patient has asthma.", "lupus", "asthma")
    assert found["lupus"]._.is_family
    assert found["asthma"]._.assertion == "present"
    found = assess(nlp, "Brother with migraines and he has eczema.", "migraines", "eczema")
    assert found["migraines"]._.is_family and not found["eczema"]._.is_family


def test_context_family_companion_is_not_the_experiencer(nlp: Language) -> None:
    found = assess(nlp, "Brought in by her daughter with chest pain.", "chest pain")
    assert not found["chest pain"]._.is_family


# --- uncertainty -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Possible pneumonia on the film.", "pneumonia"),
        ("Probable viral gastroenteritis.", "viral gastroenteritis"),
        ("Suspected appendicitis.", "appendicitis"),
        ("Likely cellulitis of the shin.", "cellulitis"),
        ("Admit to rule out myocardial infarction.", "myocardial infarction"),
        ("CT to r/o pulmonary embolism.", "pulmonary embolism"),
        ("Questionable fracture of the radius.", "fracture"),
        ("A small abscess cannot be excluded.", "abscess"),
        ("Concern for sepsis.", "sepsis"),
        ("Atelectasis versus pneumonia.", "Atelectasis"),
        ("Atelectasis versus pneumonia.", "pneumonia"),
        ("Left lower lobe infiltrate?", "infiltrate"),
    ],
)
def test_context_uncertain(nlp: Language, text: str, phrase: str) -> None:
    found = assess(nlp, text, phrase)
    assert found[phrase]._.assertion == "uncertain"
    assert not found[phrase]._.is_negated


# --- sections ----------------------------------------------------------------------------


NOTE = (
    "CHIEF COMPLAINT: wheezing\n"
    "PAST MEDICAL HISTORY:\n"
    "Hypothyroidism\n"
    "Appendectomy\n"
    "FAMILY HISTORY: Diabetes.\n"
    "ASSESSMENT AND PLAN: Asthma exacerbation. No pneumonia.\n"
)


def test_context_section_inheritance(nlp: Language) -> None:
    found = assess(
        nlp,
        NOTE,
        "wheezing",
        "Hypothyroidism",
        "Appendectomy",
        "Diabetes",
        "Asthma exacerbation",
        "pneumonia",
    )
    assert found["wheezing"]._.assertion == "present"
    assert found["Hypothyroidism"]._.assertion == "historical"
    assert found["Appendectomy"]._.section == "past_medical_history"
    assert found["Appendectomy"]._.is_historical
    assert found["Diabetes"]._.assertion == "family"
    assert found["Asthma exacerbation"]._.assertion == "present"
    assert found["pneumonia"]._.assertion == "negated"


def test_context_social_history_and_allergies_are_background(nlp: Language) -> None:
    text = "Social History: Smokes cigars.\nAllergies: sulfa (hives)\n"
    found = assess(nlp, text, "Smokes cigars", "hives")
    assert found["Smokes cigars"]._.assertion == "historical"
    assert found["hives"]._.assertion == "historical"


def test_context_section_hints_can_be_switched_off() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("medcode_sections")
    nlp.add_pipe("medcode_context", config={"use_sections": False})
    found = assess(nlp, NOTE, "Hypothyroidism", "Diabetes")
    assert found["Hypothyroidism"]._.assertion == "present"
    assert found["Diabetes"]._.assertion == "present"


def test_context_header_words_are_not_triggers(nlp: Language) -> None:
    found = assess(nlp, "HISTORY: Knee pain after a fall.", "Knee pain")
    assert found["Knee pain"]._.assertion == "present"
    assert found["Knee pain"]._.section == "clinical_history"


def test_context_without_sections_component() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("medcode_context")
    found = assess(nlp, "No cyanosis.", "cyanosis")
    assert found["cyanosis"]._.assertion == "negated"


# --- assertion, span groups, config ------------------------------------------------------


def test_context_priority_negated_over_family(nlp: Language) -> None:
    found = assess(nlp, "No family history of colon cancer.", "colon cancer")
    span = found["colon cancer"]
    assert flags(span) >= {"is_negated", "is_family"}
    assert span._.assertion == "negated"


def test_context_assertion_from_flags_priority() -> None:
    assert ASSERTION_PRIORITY == ("negated", "hypothetical", "family", "uncertain", "historical")
    assert assertion_from_flags({}) == "present"
    assert assertion_from_flags({"is_historical": True, "is_uncertain": True}) == "uncertain"
    assert assertion_from_flags({"is_family": True, "is_hypothetical": True}) == "hypothetical"


def test_context_sets_mentions_span_group(nlp: Language) -> None:
    doc = nlp.make_doc("Denies melena.")
    doc.spans["mentions"] = [Span(doc, 1, 2, label="PROBLEM")]
    doc = nlp(doc)
    assert doc.spans["mentions"][0]._.assertion == "negated"


def test_context_flags_are_reset_on_each_run(nlp: Language) -> None:
    doc = nlp.make_doc("Mild anemia.")
    doc.ents = [Span(doc, 1, 2, label="PROBLEM")]
    doc.ents[0]._.is_negated = True
    doc = nlp(doc)
    assert doc.ents[0]._.is_negated is False
    assert doc.ents[0]._.assertion == "present"


def test_context_doc_without_mentions_is_untouched(nlp: Language) -> None:
    doc = nlp("No complaints today.")
    assert isinstance(doc, Doc) and len(doc.ents) == 0


def test_context_rules_resource_covers_categories() -> None:
    rules = load_context_rules()
    for category in ("NEGATED", "HISTORICAL", "HYPOTHETICAL", "FAMILY", "UNCERTAIN"):
        directions = {r.direction for r in rules.by_category(category)}
        assert {"pseudo", "terminate"} <= directions, category
        assert directions & {"forward", "backward", "bidirectional"}


def test_context_custom_rules_and_round_trip(tmp_path: Path) -> None:
    rules = {
        "categories": {"NEGATED": {"max_scope": 3}},
        "rules": [
            {"category": "NEGATED", "direction": "forward", "literals": ["nope"]},
            {"category": "NEGATED", "direction": "terminate", "literals": ["yet"]},
        ],
    }
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules), encoding="utf8")
    nlp = spacy.blank("en")
    nlp.add_pipe("medcode_context", config={"rules_path": str(path), "span_keys": []})
    found = assess(nlp, "Nope itching yet hives. No rash.", "itching", "hives", "rash")
    assert found["itching"]._.is_negated
    assert not found["hives"]._.is_negated
    assert not found["rash"]._.is_negated  # "no" is not in the custom rules
    nlp.to_disk(tmp_path / "pipeline")
    path.unlink()  # the saved pipeline carries its rules
    fresh = spacy.blank("en")
    fresh.add_pipe("medcode_context")
    fresh.get_pipe("medcode_context").from_disk(tmp_path / "pipeline" / "medcode_context")
    found = assess(fresh, "Nope itching. No rash.", "itching", "rash")
    assert found["itching"]._.is_negated and not found["rash"]._.is_negated
    other = spacy.blank("en")
    other.add_pipe("medcode_context")
    other.from_bytes(nlp.to_bytes())
    assert not assess(other, "No rash.", "rash")["rash"]._.is_negated


@pytest.mark.parametrize(
    "payload",
    [
        {"rules": "x"},
        {"rules": [{"category": "SAD", "direction": "forward", "literals": ["x"]}]},
        {"rules": [{"category": "NEGATED", "direction": "sideways", "literals": ["x"]}]},
        {"rules": [{"category": "NEGATED", "direction": "forward"}]},
        {"rules": [{"category": "NEGATED", "direction": "forward", "patterns": ["("]}]},
        {"categories": {"OTHER": {}}, "rules": []},
    ],
)
def test_context_bad_rules_raise_input_error(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload), encoding="utf8")
    with pytest.raises(InputError, match="ConText rules JSON"):
        ContextComponent(spacy.blank("en"), rules_path=str(path))


def test_context_was_negative_for_opens_a_forward_scope(nlp: Language) -> None:
    found = assess(nlp, "Serology was negative for hepatitis B and C virus.", "hepatitis B")
    assert found["hepatitis B"]._.assertion == "negated"


def test_context_rule_labels_limit_a_trigger_to_findings() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("medcode_context")
    text = "The TMJ was normal. The chest x-ray was normal."
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(text.index("TMJ"), text.index("TMJ") + 3, label="PROBLEM"),
                doc.char_span(text.index("chest x-ray"), text.index("chest x-ray") + 11,
                              label="PROCEDURE")]
    doc = nlp(doc)
    assert [e._.assertion for e in doc.ents] == ["negated", "present"]


def test_context_rule_labels_must_be_a_list(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{"category": "NEGATED", "direction": "backward",
                                           "labels": "PROBLEM", "literals": ["was normal"]}]}))
    with pytest.raises(InputError, match="labels"):
        load_context_rules(path)
