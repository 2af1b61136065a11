"""Each coding guideline, on sentences written for these tests."""

from __future__ import annotations


def _codes(result):
    return {c.code for c in result.codes}


def _reasons(result):
    return {x.code: x.reason for x in result.excluded}


def test_rules_negated_problem_not_coded(dictionary_coder):
    result = dictionary_coder("The patient denies chest pain.")
    assert not any(c.startswith("R07") for c in _codes(result))
    assert any("negated" in r for r in _reasons(result).values())


def test_rules_hypothetical_problem_not_coded(dictionary_coder):
    result = dictionary_coder("Return to the clinic if pneumonia develops.")
    assert not any(c.startswith("J18") for c in _codes(result))
    assert any("hypothetical" in r for r in _reasons(result).values())


def test_rules_uncertain_outpatient_codes_symptoms_only(dictionary_coder):
    text = "Fever and cough, probable pneumonia."
    outpatient = dictionary_coder(text)
    assert not any(c.startswith("J18") for c in _codes(outpatient))
    assert any("outpatient" in r for r in _reasons(outpatient).values())
    assert any(c.startswith("R50") for c in _codes(outpatient))
    inpatient = dictionary_coder(text, setting="inpatient")
    assert any(c.startswith("J18") for c in _codes(inpatient))


def test_rules_family_history_becomes_z80(dictionary_coder):
    result = dictionary_coder("Family history: mother had breast cancer.")
    assert "Z80.3" in _codes(result)
    assert not any(c.startswith("C50") for c in _codes(result))


def test_rules_personal_history_of_resolved_cancer(dictionary_coder):
    result = dictionary_coder("Past medical history: history of colon cancer, resected.")
    assert "Z85.038" in _codes(result)


def test_rules_non_billable_category_gets_child_and_prompt(dictionary_coder):
    result = dictionary_coder("Assessment: otitis media.")
    h66 = [c for c in result.codes if c.code.startswith("H66")]
    assert h66 and all(c.billable for c in h66)
    assert any("specify" in p for c in h66 for p in c.prompts)


def test_rules_seventh_character_from_context(dictionary_coder):
    first = dictionary_coder("Assessment: hip fracture, initial encounter.")
    s72 = [c.code for c in first.codes if c.code.startswith("S7")]
    assert s72 and all(c.endswith("A") for c in s72)
    later = dictionary_coder("Follow-up visit for hip fracture with routine healing.")
    s72 = [c.code for c in later.codes if c.code.startswith("S7")]
    assert s72 and all(c.endswith("D") for c in s72)


def test_rules_seventh_character_default_prompts(dictionary_coder):
    result = dictionary_coder("Hip fracture.")
    s72 = [c for c in result.codes if c.code.startswith("S7")]
    assert s72 and any("episode of care" in p for c in s72 for p in c.prompts)


def test_rules_excludes1_pair_flagged(dictionary_coder):
    result = dictionary_coder("Assessment: type 1 diabetes mellitus. Type 2 diabetes mellitus.")
    e10 = [c for c in result.codes if c.code.startswith("E10")]
    e11 = [c for c in result.codes if c.code.startswith("E11")]
    assert e10 and e11
    assert any("Excludes1" in x for c in e11 for x in c.conflicts)
