"""The HTTP API of ``medcode serve`` through FastAPI's test client (httpx)."""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("httpx", reason="httpx is needed for FastAPI's test client")

from fastapi.testclient import TestClient  # noqa: E402

from medcode_nlp.errors import MedcodeError  # noqa: E402
from medcode_nlp.review.feedback import feedback_jsonl, load_feedback  # noqa: E402
from medcode_nlp.review.store import ReviewStore  # noqa: E402
from medcode_nlp.serve import create_app, run_server  # noqa: E402
from medcode_nlp.serve.api_token import TOKEN_ENV, resolve_token  # noqa: E402
from medcode_nlp.serve.schemas import MAX_BATCH  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BASE = "http://127.0.0.1:8000"
TOKEN = "t0ken-for-tests-0123456789abcdef"
# A marker that must never come back in an error body or reach the log.
SECRET = "PATIENT-JANE-DOE-MRN-98765"
LIMIT = 200_000


@pytest.fixture(scope="module")
def app(default_coder, tmp_path_factory):
    db = tmp_path_factory.mktemp("serve_api") / "reviews.sqlite3"
    return create_app(coder_factory=lambda: default_coder, db_path=db, max_body_bytes=LIMIT)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def token_client(default_coder, tmp_path_factory):
    db = tmp_path_factory.mktemp("serve_token") / "reviews.sqlite3"
    token_app = create_app(coder_factory=lambda: default_coder, db_path=db, token=TOKEN)
    # Any Host is accepted once a token protects the server.
    with TestClient(token_app, base_url="http://coder.example.org",
                    raise_server_exceptions=False) as test_client:
        yield test_client


def note(name: str = "discharge_summary") -> str:
    return (EXAMPLES / f"{name}.txt").read_text(encoding="utf-8")


def csrf_headers(client: TestClient) -> dict[str, str]:
    token = client.get("/v1/csrf").json()["csrf_token"]
    return {"X-CSRF-Token": token}


def assert_json_error(response, status: int, error_type: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    if error_type is not None:
        assert body["error"]["type"] == error_type
    assert "Traceback" not in response.text and SECRET not in response.text
    return body["error"]


# -------------------------------------------------------------------- service
def test_healthz_reports_versions_and_security_headers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok" and data["systems"]
    assert {"medcode_nlp", "model", "code_sets"} <= set(data["versions"])
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_openapi_docs_list_every_endpoint(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/code", "/v1/code/batch", "/v1/codes/{system}/{code}", "/v1/search",
            "/healthz", "/v1/reviews", "/v1/reviews/export"} <= set(schema["paths"])
    assert "CodeRequest" in schema["components"]["schemas"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_ui_and_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="codes"' in page.text
    assert "medcode_csrf" in page.headers.get("set-cookie", "") or client.cookies.get(
        "medcode_csrf")
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200


# --------------------------------------------------------------------- coding
def test_code_returns_the_coding_result(client, default_coder):
    text = note()
    response = client.post("/v1/code", json={"text": text})
    assert response.status_code == 200
    data = response.json()
    assert list(data) == ["schema_version", "versions", "entities", "codes", "excluded",
                          "consider"]
    assert data == default_coder(text).to_dict()
    assert data["codes"], "the sample note should get codes"
    for code in data["codes"]:
        assert {"code", "system", "description", "score", "billable", "evidence", "prompts",
                "conflicts"} <= set(code)
        for span in code["evidence"]:
            assert text[span["start"]:span["end"]] == span["text"]


def test_code_options_are_applied(client):
    data = client.post("/v1/code", json={"text": note(), "systems": ["icd10cm"], "top_k": 2,
                                         "setting": "inpatient"}).json()
    assert 0 < len(data["codes"]) <= 2
    assert {c["system"] for c in data["codes"]} == {"icd10cm"}


def test_code_empty_note_gives_empty_result(client):
    data = client.post("/v1/code", json={"text": "   "}).json()
    assert data["codes"] == [] and data["entities"] == []


def test_batch_keeps_input_order_and_ids(client, default_coder):
    notes = [{"id": "a", "text": note("ed_visit")}, {"id": "b", "text": note("operative_note")},
             {"text": ""}]
    response = client.post("/v1/code/batch", json={"notes": notes, "top_k": 5})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == ["a", "b", None]
    assert results[0]["result"] == default_coder(notes[0]["text"], top_k=5).to_dict()
    assert results[2]["result"]["codes"] == []


@pytest.mark.parametrize("payload", [
    {"notes": []},
    {"notes": [{"text": "x"}] * (MAX_BATCH + 1)},
    {"notes": [{"text": "x", "extra": 1}]},
    {"notes": "not a list"},
])
def test_batch_validation(client, payload):
    assert_json_error(client.post("/v1/code/batch", json=payload), 422, "validation_error")


# -------------------------------------------------------------- validation
@pytest.mark.parametrize("payload", [
    {},
    {"text": 42},
    {"text": SECRET, "setting": "emergency"},
    {"text": SECRET, "top_k": 0},
    {"text": SECRET, "top_k": 10_000},
    {"text": SECRET, "min_score": 1.5},
    {"text": SECRET, "systems": ["ICD10; DROP TABLE"]},
    {"text": SECRET, "unexpected": True},
])
def test_code_validation_errors_are_json_without_input(client, payload):
    error = assert_json_error(client.post("/v1/code", json=payload), 422, "validation_error")
    assert error["details"] and all({"loc", "msg", "type"} == set(d) for d in error["details"])


def test_unknown_code_system_is_an_input_error(client):
    error = assert_json_error(client.post("/v1/code", json={"text": SECRET,
                                                            "systems": ["nosuch"]}),
                              422, "input_error")
    assert "nosuch" in error["message"]


def test_malformed_json_is_a_validation_error(client):
    response = client.post("/v1/code", content=b'{"text": "' + SECRET.encode() + b'"',
                           headers={"content-type": "application/json"})
    assert_json_error(response, 422, "validation_error")


def test_request_over_the_size_limit_is_413(client):
    response = client.post("/v1/code", json={"text": SECRET + "x" * LIMIT})
    assert_json_error(response, 413, "request_too_large")


def test_streamed_request_over_the_limit_is_413(client):
    def chunks():
        yield b'{"text": "'
        for _ in range(LIMIT // 10_000 + 2):
            yield b"y" * 10_000
        yield b'"}'

    response = client.post("/v1/code", content=chunks(),
                           headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_json_error(response, 413, "request_too_large")


def test_unknown_path_and_method_are_json(client):
    assert_json_error(client.get("/v1/nothing"), 404, "not_found")
    assert_json_error(client.get("/v1/code"), 405, "method_not_allowed")


def test_internal_errors_have_no_traceback_and_no_note_text(tmp_path, caplog):
    class BrokenCoder:
        def __call__(self, text, **options):
            raise RuntimeError(f"failed on {text}")

    app = create_app(coder_factory=lambda: BrokenCoder(), db_path=tmp_path / "r.sqlite3",
                     preload=False)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as broken:
        with caplog.at_level(logging.INFO, logger="medcode_nlp"):
            response = broken.post("/v1/code", json={"text": SECRET})
    assert_json_error(response, 500, "internal_error")
    assert "RuntimeError" in caplog.text  # the log names the error type...
    assert SECRET not in caplog.text  # ...but never the note


def test_log_has_no_note_text_or_query(client, caplog):
    with caplog.at_level(logging.DEBUG, logger="medcode_nlp"):
        client.post("/v1/code", json={"text": f"{SECRET} has type 2 diabetes"})
        client.get("/v1/search", params={"q": SECRET})
    assert "/v1/code" in caplog.text and "/v1/search" in caplog.text
    assert SECRET not in caplog.text


# ------------------------------------------------------------ knowledge base
def test_code_lookup(client):
    response = client.get("/v1/codes/icd10cm/E11.9")
    assert response.status_code == 200
    data = response.json()
    assert data["code"] == "E11.9" and data["system"] == "icd10cm" and data["billable"]
    assert "diabetes" in data["description"].lower() and data["ancestors"]


def test_code_lookup_errors(client):
    assert_json_error(client.get("/v1/codes/icd10cm/Q99.999"), 404, "not_found")
    assert_json_error(client.get("/v1/codes/nosuch/E11.9"), 404, "not_found")
    assert_json_error(client.get("/v1/codes/icd10cm/E11.9%3Bx"), 422, "validation_error")


def test_search(client):
    response = client.get("/v1/search", params={"q": "congestive heart failure", "top_k": 5})
    assert response.status_code == 200
    results = response.json()["results"]
    assert 0 < len(results) <= 5
    assert any(r["code"].startswith("I50") for r in results)
    assert {"code", "system", "description", "score", "billable"} <= set(results[0])
    only_pcs = client.get("/v1/search", params={"q": "knee replacement",
                                                "systems": "icd10pcs"}).json()["results"]
    assert only_pcs and {r["system"] for r in only_pcs} == {"icd10pcs"}


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "x" * 201}, {"q": "a", "top_k": 0},
                                    {"q": "a", "systems": "bad system!"}])
def test_search_validation(client, params):
    assert_json_error(client.get("/v1/search", params=params), 422, "validation_error")


# ------------------------------------------------------------------ security
def test_token_is_required_off_loopback(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        with pytest.raises(MedcodeError, match="token"):
            resolve_token(host, None)
        with pytest.raises(MedcodeError, match="token"):
            run_server(host=host, port=8123)  # refuses before anything listens
    assert resolve_token("127.0.0.1", None) is None
    assert resolve_token("localhost", None) is None
    assert resolve_token("0.0.0.0", TOKEN) == TOKEN
    with pytest.raises(MedcodeError, match="at least"):
        resolve_token("0.0.0.0", "short")
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert resolve_token("0.0.0.0", None) == TOKEN


def test_cli_serve_refuses_public_host_without_token(monkeypatch):
    from typer.testing import CliRunner

    from medcode_nlp.cli.app import app as cli_app

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--port", "8123"])
    assert isinstance(result.exception, MedcodeError) and "token" in str(result.exception)


@pytest.mark.parametrize("path", ["/healthz", "/v1/search?q=fever", "/v1/codes/icd10cm/E11.9",
                                  "/v1/reviews", "/v1/reviews/export", "/openapi.json",
                                  "/docs", "/static/app.js", "/v1/csrf"])
def test_token_checked_on_every_endpoint(token_client, path):
    bare = TestClient(token_client.app, base_url="http://coder.example.org",
                      raise_server_exceptions=False)
    assert_json_error(bare.get(path), 401, "unauthorized")
    assert_json_error(bare.get(path, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}),
                      401, "unauthorized")
    assert bare.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert bare.get(path, headers={"X-API-Token": TOKEN}).status_code == 200


def test_token_checked_on_posts(token_client):
    bare = TestClient(token_client.app, base_url="http://coder.example.org",
                      raise_server_exceptions=False)
    assert_json_error(bare.post("/v1/code", json={"text": SECRET}), 401, "unauthorized")
    ok = bare.post("/v1/code", json={"text": "Acute cystitis."},
                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200


def test_ui_login_with_token(token_client):
    browser = TestClient(token_client.app, base_url="http://coder.example.org",
                         raise_server_exceptions=False)
    page = browser.get("/")
    assert page.status_code == 401 and "<form" in page.text and 'id="codes"' not in page.text
    wrong = browser.post("/login", data={"token": "not-the-token-123456"}, follow_redirects=False)
    assert wrong.status_code == 401 and browser.cookies.get("medcode_session") is None
    signed = browser.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert signed.status_code == 303 and "HttpOnly" in signed.headers["set-cookie"]
    assert TOKEN not in signed.headers["set-cookie"]  # the cookie is derived, not the token
    assert browser.get("/").status_code == 200
    assert browser.get("/v1/search", params={"q": "fever"}).status_code == 200
    # Cookie-authenticated writes still need the CSRF token...
    review = {"note_id": "n", "reviewer": "r", "decisions": [
        {"decision": "reject", "suggested_system": "icd10cm", "suggested_code": "R50.9"}]}
    assert_json_error(browser.post("/v1/reviews", json=review), 403, "csrf")
    assert browser.post("/v1/reviews", json=review,
                        headers=csrf_headers(browser)).status_code == 201
    # ...while a program sending the token header needs none (no ambient credential).
    program = TestClient(token_client.app, base_url="http://coder.example.org")
    assert program.post("/v1/reviews", json=review,
                        headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 201


def test_token_link_signs_in_once(token_client):
    browser = TestClient(token_client.app, base_url="http://coder.example.org",
                         raise_server_exceptions=False)
    response = browser.get("/", params={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert browser.get("/healthz").status_code == 200


def test_host_header_checked_without_token(app):
    rebound = TestClient(app, base_url="http://attacker.example:8000",
                         raise_server_exceptions=False)
    assert_json_error(rebound.get("/healthz"), 400, "invalid_host")
    for host in ("http://localhost:8000", "http://127.0.0.1", "http://[::1]:9000"):
        assert TestClient(app, base_url=host).get("/healthz").status_code == 200


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
])
@pytest.mark.parametrize("path", ["/v1/code", "/v1/reviews"])
def test_cross_origin_posts_are_refused(client, headers, path):
    response = client.post(path, json={"text": SECRET}, headers={**csrf_headers(client),
                                                                  **headers})
    assert_json_error(response, 403, "cross_origin")


def test_same_origin_post_is_allowed(client):
    response = client.post("/v1/code", json={"text": "Acute cystitis."},
                           headers={"Origin": BASE, "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 200


def test_form_posts_are_refused(client):
    # What a cross-site HTML form could send: not JSON.
    response = client.post("/v1/code", content=f"text={SECRET}",
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert_json_error(response, 415, "unsupported_media_type")
    response = client.post("/v1/reviews", content="{}", headers={"content-type": "text/plain",
                                                                 **csrf_headers(client)})
    assert_json_error(response, 415, "unsupported_media_type")


def test_review_writes_need_the_csrf_token(client):
    review = {"note_id": "csrf-note", "reviewer": "r", "decisions": [
        {"decision": "reject", "suggested_system": "icd10cm", "suggested_code": "R50.9"}]}
    assert_json_error(client.post("/v1/reviews", json=review), 403, "csrf")
    assert_json_error(client.post("/v1/reviews", json=review,
                                  headers={"X-CSRF-Token": "forged"}), 403, "csrf")
    assert client.post("/v1/reviews", json=review,
                       headers=csrf_headers(client)).status_code == 201


# -------------------------------------------------------------------- reviews
def review_payload(note_id: str, result: dict) -> dict:
    first, second, third = result["codes"][:3]

    def suggested(code, rank):
        return {"suggested_system": code["system"], "suggested_code": code["code"],
                "suggested_description": code["description"], "confidence": code["score"],
                "rank": rank, "evidence": code["evidence"]}

    return {"note_id": note_id, "reviewer": "coder-1", "versions": result["versions"],
            "decisions": [
                {"decision": "accept", **suggested(first, 1)},
                {"decision": "reject", **suggested(second, 2)},
                {"decision": "replace", **suggested(third, 3), "final_system": "icd10cm",
                 "final_code": "J18.9", "final_description": "Pneumonia, unspecified organism"},
                {"decision": "add", "final_system": "icd10cm", "final_code": "I10",
                 "final_description": "Essential (primary) hypertension",
                 "evidence": [{"start": 0, "end": 9, "text": "DISCHARGE"}]},
            ]}


def test_review_round_trip_with_audit_trail_and_exports(client, app):
    result = client.post("/v1/code", json={"text": note()}).json()
    payload = review_payload("note-rt", result)
    saved = client.post("/v1/reviews", json=payload, headers=csrf_headers(client))
    assert saved.status_code == 201, saved.text
    rows = saved.json()["saved"]
    assert [r["decision"] for r in rows] == ["accept", "reject", "replace", "add"]
    first = result["codes"][0]
    assert rows[0]["final_code"] == first["code"]  # accept keeps the suggested code
    assert rows[0]["confidence"] == first["score"] and rows[0]["created_at"]
    assert rows[0]["model_version"] == result["versions"]["model"]
    assert rows[0]["code_set_versions"] == result["versions"]["code_sets"]

    # A second decision about the first code supersedes the first one, which stays audited.
    redo = {**payload, "reviewer": "coder-2", "decisions": [
        {**payload["decisions"][0], "decision": "reject"}]}
    assert client.post("/v1/reviews", json=redo, headers=csrf_headers(client)).status_code == 201
    current = client.get("/v1/reviews", params={"note_id": "note-rt"}).json()["decisions"]
    assert len(current) == 4
    now = {d["item_key"]: d for d in current}[f"suggested:{first['system']}:{first['code']}"]
    assert now["decision"] == "reject" and now["reviewer"] == "coder-2"
    trail = client.get("/v1/reviews", params={"note_id": "note-rt", "all": True}).json()
    assert len(trail["decisions"]) == 5

    exported = client.get("/v1/reviews/export", params={"format": "csv", "note_id": "note-rt"})
    assert exported.status_code == 200 and "attachment" in exported.headers[
        "content-disposition"]
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(table) == 4 and {r["decision"] for r in table} == {"reject", "replace", "add"}
    replace = next(r for r in table if r["decision"] == "replace")
    assert replace["final_code"] == "J18.9" and replace["suggested_code"] == result["codes"][2][
        "code"]
    assert replace["model_version"] and replace["code_set_versions"]
    lines = client.get("/v1/reviews/export", params={"format": "jsonl", "note_id": "note-rt",
                                                     "all": True}).text.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 5 and isinstance(records[0]["evidence"], list)

    # The SQLite file holds the same rows and refuses to rewrite history.
    store: ReviewStore = app.state.store
    with sqlite3.connect(store.path) as db:
        count = db.execute("SELECT COUNT(*) FROM decisions WHERE note_id = 'note-rt'").fetchone()
        assert count[0] == 5
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE decisions SET final_code = 'X' WHERE note_id = 'note-rt'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM decisions WHERE note_id = 'note-rt'")

    # The ranker's view: current decisions with their mention spans, no note text.
    records = load_feedback(store.path)
    mine = [r for r in records if r.note_id == "note-rt"]
    assert {r.decision for r in mine} == {"reject", "replace", "add"}
    replaced = next(r for r in mine if r.decision == "replace")
    assert replaced.pairs() == [(replaced.suggested_system, replaced.suggested_code, 0),
                                ("icd10cm", "J18.9", 1)]
    assert note()[replaced.start:replaced.end] == replaced.entity_text
    assert next(r for r in mine if r.decision == "add").pairs() == [("icd10cm", "I10", 1)]
    assert "note-rt" in feedback_jsonl(mine)


@pytest.mark.parametrize("decision", [
    {"decision": "accept"},
    {"decision": "replace", "suggested_system": "icd10cm", "suggested_code": "R50.9"},
    {"decision": "add", "final_system": "icd10cm"},
    {"decision": "reject", "suggested_system": "icd10cm", "suggested_code": "R50.9",
     "final_system": "icd10cm", "final_code": "R50.8"},
])
def test_inconsistent_decisions_are_refused(client, decision):
    payload = {"note_id": "bad", "reviewer": "r", "decisions": [decision]}
    assert_json_error(client.post("/v1/reviews", json=payload, headers=csrf_headers(client)),
                      422, "input_error")


@pytest.mark.parametrize("payload", [
    {"note_id": "", "reviewer": "r", "decisions": [{"decision": "add"}]},
    {"note_id": "n", "reviewer": "r", "decisions": []},
    {"note_id": "n", "reviewer": "r\nforged", "decisions": [{"decision": "add"}]},
    {"note_id": "n", "reviewer": "r", "decisions": [{"decision": "maybe"}]},
    {"note_id": "n", "reviewer": "r", "decisions": [{"decision": "add", "final_code": "<b>"}]},
    {"note_id": "n", "reviewer": "r", "decisions": [{"decision": "add", "evidence": [
        {"start": -1, "end": 2}]}]},
])
def test_review_validation(client, payload):
    assert_json_error(client.post("/v1/reviews", json=payload, headers=csrf_headers(client)),
                      422, "validation_error")
