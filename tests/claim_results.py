"""A hand-written note and its CodingResult for the claims tests (FHIR, HCC, DRG, tables).

The result is built here, not by the coder, so the tests check the claim views against
known inputs; every span is found in the note, so offsets are real."""

from __future__ import annotations

from medcode_nlp.schema import CodeSuggestion, CodingResult, Entity, Evidence, ExcludedCode

NOTE = (
    "Assessment: acute on chronic systolic heart failure. Hypertension with heart failure. "
    "Type 2 diabetes with diabetic chronic kidney disease. Possible sepsis. "
    "No pneumonia. Denies fever. Chest x-ray done."
)


def span(phrase: str) -> Evidence:
    start = NOTE.index(phrase)
    return Evidence(start, start + len(phrase), phrase)


def entity(phrase: str, label: str = "PROBLEM", assertion: str = "present") -> Entity:
    ev = span(phrase)
    return Entity(ev.text, ev.start, ev.end, label, "assessment", assertion)


def code(code: str, system: str, description: str, score: float, *phrases: str
         ) -> CodeSuggestion:
    return CodeSuggestion(code, system, description, score, True,
                          [span(p) for p in phrases])


def sample_result() -> CodingResult:
    """I50.23, I11.0, E11.22 current; A41.9 uncertain; R50.9 on a negated mention only
    (must never be emitted); BW03ZZZ a done procedure; J18.9 excluded as negated."""
    return CodingResult(
        entities=[
            entity("acute on chronic systolic heart failure"),
            entity("Hypertension with heart failure"),
            entity("Type 2 diabetes with diabetic chronic kidney disease"),
            entity("sepsis", assertion="uncertain"),
            entity("pneumonia", assertion="negated"),
            entity("fever", assertion="negated"),
            entity("Chest x-ray", label="PROCEDURE"),
        ],
        codes=[
            code("I11.0", "icd10cm", "Hypertensive heart disease with heart failure", 0.95,
                 "Hypertension with heart failure"),
            code("I50.23", "icd10cm", "Acute on chronic systolic (congestive) heart failure",
                 0.93, "acute on chronic systolic heart failure"),
            code("E11.22", "icd10cm", "Type 2 diabetes mellitus with diabetic chronic kidney "
                 "disease", 0.9, "Type 2 diabetes with diabetic chronic kidney disease"),
            code("A41.9", "icd10cm", "Sepsis, unspecified organism", 0.7, "sepsis"),
            code("R50.9", "icd10cm", "Fever, unspecified", 0.5, "fever"),
            code("BW03ZZZ", "icd10pcs", "Plain Radiography Chest", 0.8, "Chest x-ray"),
        ],
        excluded=[ExcludedCode("J18.9", "icd10cm", "negated in the note", [span("pneumonia")])],
        consider=[CodeSuggestion("N17.9", "icd10cm", "Acute kidney failure, unspecified", 0.3,
                                 True)],
        versions={"medcode_nlp": "test"},
    )
