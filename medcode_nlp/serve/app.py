"""The HTTP API and review UI of ``medcode serve`` (FastAPI).

``create_app()`` builds the application; the coder is loaded once per process (at start-up,
or on first use) and shared by all requests. Errors are JSON ``{"error": {"type", "message"}}``
without tracebacks, and the log names only method, path, status and duration: never a
request body, a query string or note text.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from medcode_nlp.about import SCHEMA_VERSION, __version__
from medcode_nlp.coder import Coder
from medcode_nlp.errors import InputError, IntegrityError, MedcodeError
from medcode_nlp.review.store import Decision, ReviewStore
from medcode_nlp.schema import CodingResult
from medcode_nlp.serve.asgi import error_body
from medcode_nlp.serve.middleware import AccessLogMiddleware, ErrorShieldMiddleware
from medcode_nlp.serve.schemas import (
    FHIR_BUNDLE_SCHEMA,
    READ_ERRORS,
    WRITE_ERRORS,
    BatchRequest,
    BatchResponse,
    CodeDetail,
    CodeRequest,
    CsrfResponse,
    DecisionsResponse,
    HealthResponse,
    ReviewRequest,
    SavedResponse,
    SearchResponse,
    error_responses,
)
from medcode_nlp.serve.security import (
    DEFAULT_MAX_BODY_BYTES,
    LOOPBACK_NAMES,
    SecurityConfig,
    SecurityMiddleware,
)

logger = logging.getLogger("medcode_nlp.serve")

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONFIG_ENV = "MEDCODE_SERVE_CONFIG"
# ------------------------------------------------------------------ coder
class CoderHolder:
    """Loads the coder once per process and serialises calls into it."""

    def __init__(self, factory: Callable[[], Coder]) -> None:
        self._factory = factory
        self._coder: Coder | None = None
        self._load_lock = threading.Lock()
        self.lock = threading.Lock()  # spaCy pipelines are not documented thread-safe
        self.load_seconds: float | None = None

    @property
    def loaded(self) -> bool:
        return self._coder is not None

    def get(self) -> Coder:
        if self._coder is None:
            with self._load_lock:
                if self._coder is None:
                    started = time.perf_counter()
                    self._coder = self._factory()
                    self.load_seconds = round(time.perf_counter() - started, 3)
                    logger.info("coder loaded in %.1f s", self.load_seconds)
        return self._coder




def default_coder_factory(ner: str | None = None, kb: str | Path | None = None
                          ) -> Callable[[], Coder]:
    """A factory returning the process-wide coder for (ner, kb), loading it on first call
    (the cache batch workers use too: :func:`medcode_nlp.coder_cache.get_coder`)."""
    from medcode_nlp.coder_cache import get_coder

    options = {"ner": ner, "kb": str(kb) if kb is not None else None}
    return lambda: get_coder(options)


# -------------------------------------------------------------------- app
def create_app(
    coder_factory: Callable[[], Coder] | None = None,
    db_path: str | Path | None = None,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    *,
    ner: str | None = None,
    kb: str | Path | None = None,
    allowed_hosts: frozenset[str] | None = None,
    preload: bool = True,
) -> FastAPI:
    """The API + review UI.

    ``coder_factory``: returns the Coder (default: ``medcode_nlp.load(ner=ner, kb=kb)``, once
    per process). ``db_path``: review database (default in the user data directory).
    ``token``: API token required on every request (None: loopback use only, Host header
    checked). ``allowed_hosts``: Host names accepted (default: loopback names without a token,
    any with one). ``preload``: load the coder at start-up rather than on first use.
    """
    holder = CoderHolder(coder_factory or default_coder_factory(ner, kb))
    store = ReviewStore(db_path)
    hosts = allowed_hosts if allowed_hosts is not None else (
        None if token else LOOPBACK_NAMES)
    security = SecurityConfig(token=token, max_body_bytes=max_body_bytes, allowed_hosts=hosts)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if preload:
            await anyio.to_thread.run_sync(holder.get)
        yield

    app = FastAPI(
        title="medcode_nlp",
        version=__version__,
        summary="Suggest ICD-10-CM, ICD-10-PCS, HCPCS and CPT codes from clinical notes, "
                "and record coder review decisions.",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.store = store

    # --------------------------------------------------------- errors
    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        # Pydantic details carry the offending input (possibly note text): keep only where
        # and what, never the input itself.
        details = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))} for e in error.errors()]
        return JSONResponse(status_code=422, content=error_body(
            "validation_error", "The request is not valid; see details.", details=details))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        kind = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
            error.status_code, "http_error")
        return JSONResponse(status_code=error.status_code,
                            content=error_body(kind, str(error.detail)),
                            headers=getattr(error, "headers", None))

    @app.exception_handler(InputError)
    async def input_error(_: Request, error: InputError) -> JSONResponse:
        # InputError messages name the offending value, never note text (see errors.py).
        return JSONResponse(status_code=422, content=error_body("input_error", str(error)))

    @app.exception_handler(IntegrityError)
    async def integrity_error(_: Request, error: IntegrityError) -> JSONResponse:
        logger.error("integrity error: %s", error)
        return JSONResponse(status_code=503, content=error_body(
            "unavailable", "A model or knowledge-base file failed its integrity check."))

    @app.exception_handler(MedcodeError)
    async def medcode_error(_: Request, error: MedcodeError) -> JSONResponse:
        logger.error("%s in request", type(error).__name__)
        return JSONResponse(status_code=500, content=error_body(
            "internal_error", "Internal server error; the server log has details."))

    # ------------------------------------------------------ endpoints
    @app.get("/healthz", tags=["service"], response_model=HealthResponse,
             responses=error_responses(400, 401, 500, 503))
    def healthz() -> dict[str, Any]:
        """Liveness and versions; loads the coder if it is not loaded yet."""
        coder = holder.get()
        return {"status": "ok", "schema_version": SCHEMA_VERSION,
                "versions": coder.versions(), "coder_load_seconds": holder.load_seconds,
                "systems": coder.kb.systems}

    @app.post("/v1/code", tags=["coding"], responses={
        200: {"model": CodingResult,
              "description": "The CodingResult (see docs/api.md), or with format=fhir a "
                             "FHIR R4 Bundle (docs/claims.md).",
              "content": {"application/fhir+json": {"schema": FHIR_BUNDLE_SCHEMA}}},
        **error_responses(*WRITE_ERRORS)})
    def code_note(
        request: CodeRequest,
        format: Annotated[Literal["json", "fhir"], Query(
            description="json: the CodingResult; fhir: a FHIR R4 Bundle.")] = "json",
        hcc_year: Annotated[int | None, Query(
            ge=2025, le=2027, description="Add CMS-HCC V28 categories (this payment year) "
            "to the ICD-10-CM codes and an 'hcc' summary.")] = None,
    ) -> JSONResponse:
        """Code one note: entities, ranked codes with evidence, excluded codes."""
        from medcode_nlp.claims.views import ClaimOptions, result_with_claims

        coder = holder.get()
        with holder.lock:
            result = coder(request.text, **request.overrides())
        if format == "fhir":
            return JSONResponse(result.to_fhir(text=request.text, hcc_year=hcc_year),
                                media_type="application/fhir+json")
        if hcc_year is not None:
            return JSONResponse(result_with_claims(result, ClaimOptions(hcc_year=hcc_year)))
        return JSONResponse(result.to_dict())

    @app.post("/v1/code/batch", tags=["coding"], responses={
        200: {"model": BatchResponse}, **error_responses(*WRITE_ERRORS)})
    def code_batch(request: BatchRequest) -> JSONResponse:
        """Code up to 64 notes; ``results[i]`` belongs to ``notes[i]``."""
        coder = holder.get()
        with holder.lock:
            results = list(coder.pipe((n.text for n in request.notes), **request.overrides()))
        return JSONResponse({"results": [
            {"id": note.id, "result": result.to_dict()}
            for note, result in zip(request.notes, results, strict=True)]})

    @app.get("/v1/codes/{system}/{code}", tags=["knowledge base"], response_model=CodeDetail,
             responses=error_responses(404, *READ_ERRORS))
    def get_code(
        system: Annotated[str, PathParam(pattern=r"^[a-z0-9_]{1,32}$", examples=["icd10cm"])],
        code: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9.\-]{1,16}$", examples=["E11.9"])],
    ) -> dict[str, Any]:
        """A code with its description, billable flag, notes, aliases and ancestors."""
        from medcode_nlp.kb.search import describe_code

        coder = holder.get()
        if system not in coder.kb.systems:
            raise StarletteHTTPException(404, f"Unknown code system {system!r}; known: "
                                              f"{', '.join(coder.kb.systems)}.")
        try:
            entries = describe_code(code, system, coder.kb_path)
        except InputError as error:
            raise StarletteHTTPException(404, str(error)) from None
        return entries[0]

    @app.get("/v1/search", tags=["knowledge base"], response_model=SearchResponse,
             responses=error_responses(*READ_ERRORS))
    def search(
        q: Annotated[str, Query(min_length=1, max_length=200, description="Search text.",
                                examples=["congestive heart failure"])],
        systems: Annotated[str | None, Query(
            pattern=r"^[a-z0-9_]{1,32}(,[a-z0-9_]{1,32}){0,9}$",
            description="Comma-separated code systems.")] = None,
        top_k: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> dict[str, Any]:
        """Codes whose descriptions or aliases match the text, best first."""
        from medcode_nlp.kb.search import search_terms

        if not q.strip():
            raise InputError("Invalid value for q: must not be blank.")
        coder = holder.get()
        chosen = systems.split(",") if systems else None
        with holder.lock:
            (found,) = search_terms([q], chosen, top_k, coder.kb_path)
        return {"results": found}

    @app.get("/v1/csrf", tags=["review"], response_model=CsrfResponse,
             responses=error_responses(400, 401))
    def csrf(request: Request) -> dict[str, Any]:
        """The CSRF token to send as ``X-CSRF-Token`` (also set as the medcode_csrf cookie)."""
        return {"csrf_token": request.scope.get("state", {}).get("csrf_token"),
                "header": "X-CSRF-Token", "cookie": "medcode_csrf"}

    @app.post("/v1/reviews", tags=["review"], status_code=201, response_model=SavedResponse,
              responses=error_responses(*WRITE_ERRORS))
    def save_review(request: ReviewRequest) -> dict[str, Any]:
        """Append decisions to the audit trail (all or none)."""
        if request.versions is not None:
            versions = request.versions.model_dump()
        else:
            versions = holder.get().versions()
        decisions = [Decision(
            reviewer=request.reviewer,
            note_id=request.note_id,
            medcode_version=versions.get("medcode_nlp"),
            model_version=versions.get("model"),
            ranker_version=versions.get("ranker"),
            code_set_versions={k: v for k, v in (versions.get("code_sets") or {}).items()},
            **{**d.model_dump(exclude={"evidence"}),
               "evidence": [e.model_dump() for e in d.evidence]},
        ) for d in request.decisions]
        saved = store.record(decisions)
        logger.info("review saved: %d decision(s)", len(saved))
        return {"saved": [_decision_out(d) for d in saved]}

    @app.get("/v1/reviews", tags=["review"], response_model=DecisionsResponse,
             responses=error_responses(400, 401, 422, 500))
    def list_reviews(
        note_id: Annotated[str | None, Query(max_length=200)] = None,
        all: Annotated[bool, Query(description="Whole audit trail, not only current.")] = False,
    ) -> dict[str, Any]:
        """Current decisions (or the whole trail), optionally for one note."""
        return {"decisions": [_decision_out(d)
                              for d in store.decisions(note_id, latest_only=not all)]}

    @app.get("/v1/reviews/export", tags=["review"], response_class=Response, responses={
        200: {"description": "A CSV file (header row first), JSON lines, or a FHIR R4 "
                             "Bundle of the accepted codes.",
              "content": {"text/csv": {"schema": {"type": "string"}},
                          "application/x-ndjson": {"schema": {"type": "string"}},
                          "application/fhir+json": {"schema": {"type": "object"}}}},
        **error_responses(400, 401, 422, 500)})
    def export_reviews(
        format: Annotated[Literal["csv", "jsonl", "fhir"], Query()] = "csv",
        note_id: Annotated[str | None, Query(max_length=200)] = None,
        all: Annotated[bool, Query(description="Whole audit trail, not only current.")] = False,
    ) -> Response:
        """Reviewed codes as CSV or JSON lines (a download)."""
        if format == "fhir":
            from medcode_nlp.claims.fhir import decisions_to_fhir

            bundle = decisions_to_fhir(store.decisions(note_id, latest_only=not all))
            body, media = json.dumps(bundle, ensure_ascii=False), "application/fhir+json"
        elif format == "csv":
            body, media = store.export_csv(note_id, latest_only=not all), "text/csv"
        else:
            body, media = store.export_jsonl(note_id, latest_only=not all), "application/x-ndjson"
        name = f"medcode_reviews.{'fhir.json' if format == 'fhir' else format}"
        return Response(body, media_type=f"{media}; charset=utf-8", headers={
            "content-disposition": f'attachment; filename="{name}"',
            "cache-control": "no-store"})

    # ------------------------------------------------------------- UI
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Order: the last added runs first. Errors -> log -> security -> routes.
    app.add_middleware(SecurityMiddleware, config=security)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(ErrorShieldMiddleware)
    return app


def _decision_out(decision: Decision) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(decision)


def app_from_env() -> FastAPI:
    """The app configured by ``$MEDCODE_SERVE_CONFIG`` (JSON) and ``$MEDCODE_API_TOKEN``.

    Used by ``medcode serve`` so that each uvicorn worker process builds the same app.
    """
    from medcode_nlp.serve.api_token import TOKEN_ENV

    config = json.loads(os.environ.get(CONFIG_ENV, "{}"))
    return create_app(
        db_path=config.get("db"),
        token=os.environ.get(TOKEN_ENV) or None,
        max_body_bytes=int(config.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)),
        ner=config.get("ner"),
        kb=config.get("kb"),
    )
