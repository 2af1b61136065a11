"""Request and response models of the HTTP API (pydantic), and the documented error responses."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from medcode_nlp.coder import DEFAULT_MAX_CHARS
from medcode_nlp.review.store import Decision
from medcode_nlp.schema import CodingResult

MAX_BATCH = 64

SystemName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]
CodeText = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-]{1,16}$")]
# Any printable text (no control characters), bounded.
Label = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]+$", min_length=1,
                                         max_length=200, strip_whitespace=True)]
ShortText = Annotated[str, StringConstraints(max_length=1000)]
NOTE_EXAMPLE = ("Assessment: type 2 diabetes mellitus with diabetic neuropathy. Essential "
                "hypertension. Denies chest pain.")


# ------------------------------------------------------------------ models
class CodeOptions(BaseModel):
    """Options that override the server's defaults for one request."""

    model_config = ConfigDict(extra="forbid")

    setting: Literal["outpatient", "inpatient"] | None = Field(
        None, description="Coding setting (outpatient: no uncertain diagnoses coded).")
    systems: list[SystemName] | None = Field(
        None, max_length=10, description="Code systems to suggest from, e.g. icd10cm, icd10pcs.")
    top_k: int | None = Field(None, ge=1, le=200, description="At most this many codes.")
    min_score: float | None = Field(None, ge=0.0, le=1.0, description="Confidence threshold.")

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"text", "notes"}).items()
                if v is not None}


class CodeRequest(CodeOptions):
    """One note to code."""

    text: str = Field(..., max_length=DEFAULT_MAX_CHARS, description="The note (UTF-8 text).",
                      examples=[NOTE_EXAMPLE])


class BatchNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Label | None = Field(None, description="Your id for the note, echoed in the result.")
    text: str = Field(..., max_length=DEFAULT_MAX_CHARS, examples=[NOTE_EXAMPLE])


class BatchRequest(CodeOptions):
    """Several notes coded with the same options (results in input order)."""

    notes: list[BatchNote] = Field(..., min_length=1, max_length=MAX_BATCH)


class EvidenceSpan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: int = Field(..., ge=0)
    end: int = Field(..., ge=0)
    text: Annotated[str, StringConstraints(max_length=500)] = ""


class DecisionIn(BaseModel):
    """A reviewer's decision about one code."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept", "reject", "replace", "add"]
    suggested_system: SystemName | None = None
    suggested_code: CodeText | None = None
    suggested_description: ShortText | None = None
    final_system: SystemName | None = None
    final_code: CodeText | None = None
    final_description: ShortText | None = None
    confidence: float | None = Field(None, allow_inf_nan=False, ge=-1e6, le=1e6)
    rank: int | None = Field(None, ge=0, le=100_000)
    evidence: list[EvidenceSpan] = Field(default_factory=list, max_length=100)
    comment: ShortText | None = None


class VersionsIn(BaseModel):
    """The ``versions`` block of the CodingResult that was reviewed."""

    model_config = ConfigDict(extra="ignore")

    medcode_nlp: Annotated[str, StringConstraints(max_length=100)] | None = None
    model: Annotated[str, StringConstraints(max_length=200)] | None = None
    ranker: Annotated[str, StringConstraints(max_length=200)] | None = None
    code_sets: dict[SystemName, Annotated[str, StringConstraints(max_length=200)] | None] = (
        Field(default_factory=dict, max_length=20))


class ReviewRequest(BaseModel):
    """Decisions of one reviewer about one note."""

    model_config = ConfigDict(extra="forbid")

    note_id: Label
    reviewer: Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]+$", min_length=1,
                                               max_length=100, strip_whitespace=True)]
    decisions: list[DecisionIn] = Field(..., min_length=1, max_length=500)
    versions: VersionsIn | None = Field(
        None, description="Versions of the reviewed result (default: this server's).")


# --------------------------------------------------------- response models
# Documented in the OpenAPI schema so that clients (and the schema fuzz test) know every
# status code and body the API can return.
class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(..., description="Where: e.g. [\"body\", \"top_k\"].")
    msg: str
    type: str


class ErrorInfo(BaseModel):
    type: str = Field(..., description="Kind of error, e.g. validation_error, not_found.")
    message: str
    details: list[ErrorDetail] | None = Field(
        None, description="Validation errors: where and what, never the input itself.")


FHIR_BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["resourceType", "type"],
    "properties": {"resourceType": {"type": "string", "enum": ["Bundle"]},
                   "type": {"type": "string"}, "entry": {"type": "array"}}}


class ErrorResponse(BaseModel):
    """The body of every error response: no traceback, no note text."""

    error: ErrorInfo


ERROR_DESCRIPTIONS = {
    400: "Host header not accepted (invalid_host), or a Content-Length or body that cannot "
         "be read (bad_request).",
    401: "This server needs its API token (unauthorized).",
    403: "Cross-origin write (cross_origin) or review write without the CSRF token (csrf).",
    404: "Unknown code or code system (not_found).",
    413: "Request body over the size limit (request_too_large).",
    415: "Request body is not application/json (unsupported_media_type).",
    422: "Invalid request (validation_error) or unusable value (input_error).",
    500: "Internal error; the details are only in the server log (internal_error).",
    503: "A model or knowledge-base file failed its integrity check (unavailable).",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error status codes."""
    return {code: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[code]}
            for code in codes}


READ_ERRORS = (400, 401, 422, 500, 503)
WRITE_ERRORS = (400, 401, 403, 413, 415, 422, 500, 503)


class HealthResponse(BaseModel):
    status: Literal["ok"]
    schema_version: str
    versions: dict[str, Any]
    coder_load_seconds: float | None
    systems: list[str]


class BatchItem(BaseModel):
    id: str | None
    result: CodingResult


class BatchResponse(BaseModel):
    results: list[BatchItem] = Field(..., description="results[i] belongs to notes[i].")


class CodeDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # fields the knowledge base may add pass through

    code: str
    system: str
    description: str
    billable: bool
    parent: str | None
    aliases: list[str]
    excludes1: list[str]
    excludes2: list[str]
    code_first: list[str]
    use_additional: list[str]
    seventh_characters: dict[str, str]
    extra: dict[str, str]
    ancestors: list[str] = Field(..., description="Parent chain, nearest first.")


class SearchHit(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    system: str
    description: str
    score: float
    billable: bool


class SearchResponse(BaseModel):
    results: list[SearchHit]


class CsrfResponse(BaseModel):
    csrf_token: str
    header: str
    cookie: str


class SavedResponse(BaseModel):
    saved: list[Decision]


class DecisionsResponse(BaseModel):
    decisions: list[Decision]
