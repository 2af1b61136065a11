"""Property-based fuzzing of the HTTP API with schemathesis (hardening issue, item 3).

schemathesis reads the service's own OpenAPI document (``/openapi.json``) and sends valid and
invalid requests to every operation of the real app, with the real coder loaded, in process
(ASGI transport, no network). Each response must:

* not be a server error (no 5xx),
* use a status code, content type and body that the OpenAPI document declares,
* never carry a traceback.

The app runs with an API token (sent as ``Authorization: Bearer``, which also exempts review
writes from the CSRF token; a matching CSRF cookie and header are sent as well), so requests
pass the security middleware and reach the handlers. The number of examples per operation is
bounded so that the whole module stays within about a minute on a 2-core machine; set
``MEDCODE_FUZZ_EXAMPLES`` for a longer run.

Hand-written requests that a schema-driven generator never makes (lone surrogates, bytes that
are not UTF-8, NaN and Infinity, deep nesting) follow: each must get a documented 4xx.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (dev extra) is missing")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from medcode_nlp.serve import create_app  # noqa: E402

pytestmark = pytest.mark.slow  # starts a server, a browser or runs notebooks

TOKEN = "fuzz-t0ken-0123456789abcdef"
CSRF = "fuzz-csrf-0123456789"
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "X-CSRF-Token": CSRF,
    "Cookie": f"medcode_csrf={CSRF}",
}
MAX_EXAMPLES = int(os.environ.get("MEDCODE_FUZZ_EXAMPLES", "25"))
FRAME = re.compile(r'File "[^"\n]+", line \d+')
# Status codes seen per operation, to show that the fuzzer got past the security middleware.
SEEN: defaultdict[str, set[int]] = defaultdict(set)


def no_traceback(ctx, response, case) -> None:
    """A service never shows a traceback (nor a stack frame) to its client."""
    SEEN[case.operation.label].add(response.status_code)
    text = response.content.decode("utf-8", "replace")
    assert "Traceback (most recent call last)" not in text, "response carries a traceback"
    assert not FRAME.search(text), "response carries a stack frame"


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_app(default_coder, tmp_path_factory):
    db = tmp_path_factory.mktemp("serve_fuzz") / "reviews.sqlite3"
    return create_app(coder_factory=lambda: default_coder, db_path=db, token=TOKEN,
                      max_body_bytes=200_000)


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app, headers=HEADERS)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    response = case.call_and_validate(headers=HEADERS, checks=CHECKS,
                                      additional_checks=[no_traceback])
    assert response.status_code < 500


def test_fuzzer_reached_every_handler(api_schema):
    """Every operation answered 2xx at least once: the auth headers got the requests through."""
    if not SEEN:
        pytest.skip("the fuzz test did not run in this session")
    operations = {op.ok().label for op in api_schema.get_all_operations()}
    assert operations == set(SEEN)
    missed = {label: sorted(codes) for label, codes in SEEN.items()
              if not any(200 <= code < 300 for code in codes)}
    assert not missed, f"operations never answered 2xx: {missed}"


# Requests a JSON-schema generator does not make: it serialises valid Python values as UTF-8
# JSON. Each must get a documented 4xx with a JSON error body, never a 5xx.
REVIEW = ('{"note_id": "n", "reviewer": "r", "decisions": [{"decision": "reject", '
          '"suggested_system": "icd10cm", "suggested_code": "R50.9"%s}]%s}')
RAW_BODIES = [
    ("/v1/code", b'{"text": "fever \\ud800 cough"}'),  # a lone surrogate
    ("/v1/code", b'{"text": "fever \xff\xfe cough"}'),  # not UTF-8
    ("/v1/code", b'{"text": "fever", "min_score": NaN}'),
    ("/v1/code", b'{"text": "fever", "top_k": 1e400}'),
    ("/v1/code", b'{"text": "fever", "top_k": Infinity}'),
    ("/v1/code", b'{"text": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),  # deep nesting
    ("/v1/code", b""),
    ("/v1/code", b"null"),
    ("/v1/code/batch", b'{"notes": [{"id": "a\\udc00", "text": "fever"}]}'),
    ("/v1/code/batch", b'{"notes": [{"text": "fever \\ud800"}]}'),
    ("/v1/reviews", (REVIEW % ("", "")).replace('"n"', '"n\\ud800"').encode()),
    ("/v1/reviews", (REVIEW % (', "comment": "\\udfff"', "")).encode()),
    ("/v1/reviews", (REVIEW % (', "confidence": NaN', "")).encode()),
    ("/v1/reviews", (REVIEW % (', "evidence": [{"start": 5, "end": 1e30}]', "")).encode()),
    ("/v1/reviews", (REVIEW % ("", ', "versions": {"code_sets": {"icd10cm": 1}}')).encode()),
]
RAW_QUERIES = [
    "/v1/search?q=%ff%fe",
    "/v1/search?q=%ED%A0%80",
    "/v1/search?q=fever%00",
    "/v1/search?q=fever&top_k=1e9",
    "/v1/search?q=fever&systems=%00",
    "/v1/reviews?note_id=%ff",
    "/v1/reviews?all=maybe",
    "/v1/reviews/export?format=xlsx",
    "/v1/codes/icd10cm/E11.9%ED%A0%80",
    "/v1/codes/icd10cm/%2e%2e",
]


@pytest.fixture(scope="module")
def raw_client(fuzz_app):
    from fastapi.testclient import TestClient

    with TestClient(fuzz_app, base_url="http://127.0.0.1",
                    raise_server_exceptions=False) as client:
        yield client


def _documented(app, method: str, path: str) -> set[int]:
    for template, operations in app.openapi()["paths"].items():
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", template)
        if re.fullmatch(pattern, path) and method in operations:
            return {int(code) for code in operations[method]["responses"]}
    raise AssertionError(f"{method} {path} is not in the schema")


def _assert_clean_error(response, documented: set[int]) -> None:
    assert response.status_code < 500, response.text[:300]
    assert response.status_code in documented, (response.status_code, sorted(documented))
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == {"error"} and body["error"]["type"] and body["error"]["message"]
    assert "Traceback" not in response.text and not FRAME.search(response.text)


@pytest.mark.parametrize(("path", "body"), RAW_BODIES,
                         ids=[f"{p}-{i}" for i, (p, _) in enumerate(RAW_BODIES)])
def test_malformed_bodies_get_documented_client_errors(raw_client, fuzz_app, path, body):
    response = raw_client.post(path, content=body, headers={
        **HEADERS, "content-type": "application/json"})
    _assert_clean_error(response, _documented(fuzz_app, "post", path))
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("url", RAW_QUERIES)
def test_malformed_queries_get_documented_answers(raw_client, fuzz_app, url):
    response = raw_client.get(url, headers=HEADERS)
    _assert_clean_error(response, _documented(fuzz_app, "get", url.split("?")[0]) | {404})


def test_empty_csrf_cookie_gets_a_fresh_token(fuzz_app):
    from fastapi.testclient import TestClient

    with TestClient(fuzz_app, base_url="http://127.0.0.1") as client:
        response = client.get("/v1/csrf", headers={"Authorization": f"Bearer {TOKEN}",
                                                   "Cookie": "medcode_csrf="})
    assert response.status_code == 200
    token = response.json()["csrf_token"]
    assert token and f"medcode_csrf={token}" in response.headers["set-cookie"]
