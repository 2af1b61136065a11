"""The claim views end to end with the shipped coder: ``medcode suggest --format fhir /
--hcc / --drg``, ``POST /v1/code?format=fhir&hcc_year=`` and the FHIR review export."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fhir.resources", reason="the claims extra is not installed")
pytest.importorskip("fastapi", reason="the serve extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from fhir.resources.R4B.bundle import Bundle  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from medcode_nlp.claims.hcc import get_mapper  # noqa: E402
from medcode_nlp.cli.app import app as cli_app  # noqa: E402
from medcode_nlp.serve import create_app  # noqa: E402

NOTE = ("Hospital day 2. Assessment: acute on chronic systolic congestive heart failure, "
        "on IV furosemide. Type 2 diabetes mellitus without complications. No chest pain.\n")


@pytest.fixture(scope="module")
def note_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("claims") / "note.txt"
    path.write_text(NOTE, encoding="utf-8")
    return path


def suggest(*args: str) -> str:
    done = CliRunner().invoke(cli_app, ["suggest", *args])
    assert done.exit_code == 0, done.output
    return done.output


def test_suggest_json_with_hcc_and_drg(note_file) -> None:
    data = json.loads(suggest(str(note_file), "--format", "json", "--setting", "inpatient",
                              "--hcc", "--drg", "--sex", "M"))
    mapper = get_mapper(2026)
    icd = {c["code"]: c["hcc"] for c in data["codes"] if c["system"] == "icd10cm"}
    assert any(icd.values()), icd  # heart failure and diabetes codes map to HCCs
    for code, hccs in icd.items():
        assert hccs == [c.hcc for c in mapper.categories(code)]
    mapped = {h for hccs in icd.values() for h in hccs}
    assert {h["hcc"] for h in data["hcc"]["hccs"]} == mapper.apply_hierarchies(mapped)
    assert data["drg"]["principal"]["code"] == next(iter(icd))
    assert data["drg"]["return_code"] == "OK" and data["drg"]["drg"] is not None
    assert data["drg"]["demographics"]["sex"] == "M"


def test_suggest_fhir_and_the_table(note_file) -> None:
    bundle = json.loads(suggest(str(note_file), "--format", "fhir", "--hcc",
                                "--note-id", "n-1", "--patient", "Patient/9"))
    Bundle.model_validate(bundle)
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Condition", "Provenance", "DocumentReference", "Device"} <= kinds
    table = suggest(str(note_file), "--hcc", "--drg", "--setting", "inpatient")
    assert "CMS-HCC V28, payment year 2026" in table and "MS-DRG v43.1: DRG" in table
    done = CliRunner().invoke(cli_app, ["suggest", str(note_file), "--drg"])
    assert done.exit_code != 0 and "--setting inpatient" in str(done.exception)


def test_api_fhir_hcc_and_review_export(default_coder, tmp_path) -> None:
    api = create_app(coder_factory=lambda: default_coder, db_path=tmp_path / "r.sqlite3")
    with TestClient(api, base_url="http://127.0.0.1:8000") as client:
        response = client.post("/v1/code?format=fhir", json={"text": NOTE})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+json")
        Bundle.model_validate(response.json())
        coded = client.post("/v1/code?hcc_year=2026", json={"text": NOTE}).json()
        assert all("hcc" in c for c in coded["codes"]) and coded["hcc"]["model"] == "V28"
        assert client.post("/v1/code?format=xml", json={"text": NOTE}).status_code == 422
        assert client.post("/v1/code?hcc_year=2030", json={"text": NOTE}).status_code == 422
        first = coded["codes"][0]
        csrf = client.get("/v1/csrf").json()["csrf_token"]
        saved = client.post("/v1/reviews", headers={"X-CSRF-Token": csrf}, json={
            "note_id": "n-1", "reviewer": "coder-a", "decisions": [{
                "decision": "accept", "suggested_system": first["system"],
                "suggested_code": first["code"], "evidence": first["evidence"]}]})
        assert saved.status_code == 201, saved.text
        export = client.get("/v1/reviews/export?format=fhir")
        assert export.status_code == 200
        bundle = export.json()
        Bundle.model_validate(bundle)
        codes = [c["code"] for e in bundle["entry"] for c in
                 e["resource"].get("code", {}).get("coding", [])]
        assert codes == [first["code"]]
