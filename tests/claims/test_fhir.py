"""FHIR R4 Bundles of results and review decisions, checked with the fhir.resources models."""

from __future__ import annotations

import base64
import hashlib

import pytest

pytest.importorskip("fhir.resources", reason="the claims extra is not installed")

from claim_results import NOTE, sample_result  # noqa: E402
from fhir.resources.R4B.bundle import Bundle  # noqa: E402

from medcode_nlp.claims.fhir import (  # noqa: E402
    EXT_CONFIDENCE,
    EXT_EVIDENCE,
    EXT_HCC,
    decisions_to_fhir,
    validate_bundle,
)
from medcode_nlp.errors import InputError  # noqa: E402
from medcode_nlp.review.store import Decision  # noqa: E402

RECORDED = "2026-01-15T10:00:00+00:00"


def resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def by_url(bundle: dict) -> dict[str, dict]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def coding(resource: dict) -> tuple[str, str]:
    (c,) = resource["code"]["coding"]
    return c["system"], c["code"]


@pytest.fixture(scope="module")
def bundle() -> dict:
    return sample_result().to_fhir(note_id="note-7", text=NOTE, patient="Patient/123",
                                   hcc_year=2026, recorded=RECORDED)


def test_bundle_parses_as_fhir_models(bundle) -> None:
    model = Bundle.model_validate(bundle)
    assert model.type == "collection"
    kinds = [e.resource.get_resource_type() for e in model.entry]
    assert kinds.count("Condition") == 4 and kinds.count("Procedure") == 1
    assert kinds.count("Provenance") == 5 and kinds.count("DocumentReference") == 1


def test_conditions_carry_verification_status_from_the_assertion(bundle) -> None:
    status = {coding(c)[1]: c["verificationStatus"]["coding"][0]["code"]
              for c in resources(bundle, "Condition")}
    assert status == {"I11.0": "confirmed", "I50.23": "confirmed", "E11.22": "confirmed",
                      "A41.9": "provisional"}
    # R50.9 rests on a negated mention: refuted codes are never emitted
    assert "refuted" not in str(bundle) and "R50.9" not in str(bundle)
    for condition in resources(bundle, "Condition"):
        assert coding(condition)[0] == "http://hl7.org/fhir/sid/icd-10-cm"
        assert condition["subject"] == {"reference": "Patient/123"}


def test_procedure_and_extensions(bundle) -> None:
    (procedure,) = resources(bundle, "Procedure")
    assert coding(procedure) == ("http://www.cms.gov/Medicare/Coding/ICD10", "BW03ZZZ")
    assert procedure["status"] == "completed"
    condition = next(c for c in resources(bundle, "Condition") if coding(c)[1] == "I50.23")
    ext = {e["url"]: e for e in condition["extension"]}
    assert ext[EXT_CONFIDENCE]["valueDecimal"] == 0.93
    assert ext[EXT_HCC]["valueCoding"]["code"] == "224"


def test_provenance_links_each_code_to_its_evidence_offsets(bundle) -> None:
    urls = by_url(bundle)
    (document,) = resources(bundle, "DocumentReference")
    attachment = document["content"][0]["attachment"]
    assert attachment["size"] == len(NOTE.encode("utf-8"))
    assert attachment["hash"] == base64.b64encode(
        hashlib.sha1(NOTE.encode("utf-8")).digest()).decode()
    assert "data" not in attachment  # the note text only when asked for
    assert document["identifier"][0]["value"] == "note-7"
    for provenance in resources(bundle, "Provenance"):
        target = urls[provenance["target"][0]["reference"]]
        (entity,) = provenance["entity"]
        assert urls[entity["what"]["reference"]]["resourceType"] == "DocumentReference"
        for ext in entity["extension"]:
            assert ext["url"] == EXT_EVIDENCE
            parts = {p["url"]: p for p in ext["extension"]}
            start, end = parts["start"]["valueInteger"], parts["end"]["valueInteger"]
            assert NOTE[start:end] == parts["text"]["valueString"]
        assert target["resourceType"] in ("Condition", "Procedure")
        assert urls[provenance["agent"][0]["who"]["reference"]]["resourceType"] == "Device"


def test_include_text_and_determinism() -> None:
    result = sample_result()
    one = result.to_fhir(text=NOTE, include_text=True, recorded=RECORDED)
    two = result.to_fhir(text=NOTE, include_text=True, recorded=RECORDED)
    assert one == two
    (document,) = resources(one, "DocumentReference")
    assert base64.b64decode(document["content"][0]["attachment"]["data"]).decode() == NOTE


def test_bad_input_is_named() -> None:
    result = sample_result()
    with pytest.raises(InputError, match="patient"):
        result.to_fhir(patient="not a reference")
    with pytest.raises(InputError, match="time zone"):
        result.to_fhir(recorded="2026-01-15T10:00:00")
    with pytest.raises(InputError, match="include_text"):
        result.to_fhir(include_text=True)
    broken = result.to_fhir(recorded=RECORDED)
    del resources(broken, "Condition")[0]["subject"]
    with pytest.raises(InputError, match="subject"):
        validate_bundle(broken)


def test_accepted_review_decisions_export_as_fhir() -> None:
    ev = {"start": NOTE.index("sepsis"), "end": NOTE.index("sepsis") + 6, "text": "sepsis"}
    decisions = [
        Decision("ann", "note-7", "accept", "icd10cm", "A41.9", "Sepsis", "icd10cm", "A41.9",
                 "Sepsis, unspecified organism", 0.7, 1, [ev]),
        Decision("ann", "note-7", "reject", "icd10cm", "R50.9", "Fever"),
        Decision("ann", "note-7", "replace", "icd10cm", "I50.9", "Heart failure", "icd10cm",
                 "I50.23", "Acute on chronic systolic heart failure"),
        Decision("ann", "note-7", "add", final_system="icd10pcs", final_code="BW03ZZZ",
                 final_description="Plain Radiography Chest"),
    ]
    bundle = decisions_to_fhir(decisions, hcc_year=2026, recorded=RECORDED)
    Bundle.model_validate(bundle)
    assert sorted(coding(c)[1] for c in resources(bundle, "Condition")) == ["A41.9", "I50.23"]
    assert [coding(p)[1] for p in resources(bundle, "Procedure")] == ["BW03ZZZ"]
    for provenance in resources(bundle, "Provenance"):
        assert provenance["agent"][1]["who"] == {"display": "ann"}
    spans = [e for p in resources(bundle, "Provenance") for e in p["entity"][0].get(
        "extension", [])]
    assert len(spans) == 1
