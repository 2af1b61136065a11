"""Access control for ``medcode serve``: API token, CSRF and origin checks, body size limit.

Rules (see docs/api.md):

* The server listens on 127.0.0.1 by default. Any other address needs an API token
  (``--token`` or ``$MEDCODE_API_TOKEN``); when a token is set, every path (API, UI, static
  files, docs, health check) needs it: ``Authorization: Bearer <token>`` or
  ``X-API-Token: <token>`` for programs, a session cookie for the browser (set by the login
  form at ``/`` or by opening ``/?token=<token>`` once).
* Without a token (loopback only) the ``Host`` header must name the loopback interface, so a
  web page cannot reach the server through DNS rebinding.
* Requests other than GET/HEAD/OPTIONS are refused when they come from another origin
  (``Origin`` or ``Sec-Fetch-Site``), must send JSON (a cross-site form cannot), and, when
  they change state, must carry the double-submit CSRF token: header ``X-CSRF-Token`` equal to
  the ``medcode_csrf`` cookie (``GET /v1/csrf`` issues one). Requests authenticated with the
  token in a header are exempt from the CSRF token, since a browser never adds that header
  on its own.
* Bodies over ``max_body_bytes`` are refused with 413 before the application sees them. The
  rest of such a body is read and discarded (up to ``DRAIN_FACTOR`` times the limit, for at most
  ``DRAIN_SECONDS``) before the answer, and the connection is then closed: a client still
  writing its body reads the 413 instead of a connection reset.

The token itself (who needs one, the session cookie value, the sign-in page) is
:mod:`medcode_nlp.serve.api_token`; headers, cookies and responses are
:mod:`medcode_nlp.serve.asgi`.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from medcode_nlp.errors import MedcodeError
from medcode_nlp.serve.api_token import LOGIN_PAGE, MIN_TOKEN_LENGTH, session_value
from medcode_nlp.serve.asgi import (
    DOCS_CSP,
    UI_CSP,
    ASGIApp,
    HttpMiddleware,
    Message,
    Receive,
    Scope,
    Send,
    base_headers,
    cookie_header,
    error_body,
    host_name,
    more_body,
    request_cookies,
    request_headers,
    send_html,
    send_json,
)

SESSION_COOKIE = "medcode_session"
CSRF_COOKIE = "medcode_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# POST endpoints that compute without changing state: origin and JSON checks only.
CSRF_EXEMPT_PATHS = frozenset({"/v1/code", "/v1/code/batch", "/login"})
FORM_PATHS = frozenset({"/login"})
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
DRAIN_FACTOR = 4
DRAIN_SECONDS = 30.0

DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})



@dataclass(slots=True)
class SecurityConfig:
    """What :class:`SecurityMiddleware` enforces."""

    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Host header names accepted; None accepts any (only allowed together with a token).
    allowed_hosts: frozenset[str] | None = field(default=LOOPBACK_NAMES)

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise MedcodeError(f"The API token must have at least {MIN_TOKEN_LENGTH} characters.")
        if self.token is None and self.allowed_hosts is None:
            raise MedcodeError("Accepting any Host header needs an API token.")
        if self.max_body_bytes <= 0:
            raise MedcodeError("max_body_bytes must be positive.")


async def _discard_body(receive: Receive, received: int, limit: int) -> None:
    """Read and drop request body messages until the body ends, the client leaves, ``limit``
    bytes in all were received, or ``DRAIN_SECONDS`` passed."""
    import anyio

    with anyio.move_on_after(DRAIN_SECONDS):
        while received <= limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            received += len(message.get("body", b""))
            if not more_body(message):
                return


class SecurityMiddleware(HttpMiddleware):
    """ASGI middleware enforcing :class:`SecurityConfig` on every HTTP request."""

    def __init__(self, app: ASGIApp, config: SecurityConfig) -> None:
        super().__init__(app)
        self.config = config
        self._session = session_value(config.token) if config.token else None

    # ----------------------------------------------------------- helpers
    def _token_in_headers(self, headers: dict[str, str]) -> bool:
        token = self.config.token
        if token is None:
            return False
        given = headers.get("x-api-token", "")
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), token.encode())

    def _session_ok(self, cookies: dict[str, str]) -> bool:
        given = cookies.get(SESSION_COOKIE, "")
        return (self._session is not None and bool(given)
                and hmac.compare_digest(given.encode(), self._session.encode()))

    def _token_ok(self, given: str) -> bool:
        token = self.config.token
        return token is not None and bool(given) and hmac.compare_digest(given.encode(),
                                                                         token.encode())

    @staticmethod
    def _cross_origin(headers: dict[str, str]) -> bool:
        site = headers.get("sec-fetch-site", "").lower()
        if site in ("cross-site", "same-site"):
            return True
        origin = headers.get("origin")
        if origin is None:
            return False
        if origin == "null":
            return True
        return urlsplit(origin).netloc.lower() != headers.get("host", "").lower()

    # -------------------------------------------------------------- ASGI
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        method = scope["method"].upper()
        path = scope["path"]
        secure = scope.get("scheme") == "https"

        allowed = self.config.allowed_hosts
        if allowed is not None and host_name(headers.get("host", "")) not in allowed:
            await send_json(send, 400, error_body(
                "invalid_host", "The Host header does not name this server; without an API "
                "token the server answers only to localhost / 127.0.0.1."))
            return

        if method not in SAFE_METHODS and self._cross_origin(headers):
            await send_json(send, 403, error_body(
                "cross_origin", "Cross-origin requests that change state are refused."))
            return

        cookies = request_cookies(headers)
        header_auth = self._token_in_headers(headers)
        authenticated = self.config.token is None or header_auth or self._session_ok(cookies)

        # Body size limit (declared length first, then the bytes actually sent).
        declared = headers.get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.config.max_body_bytes
            except ValueError:
                await send_json(send, 400, error_body("bad_request", "Invalid Content-Length."))
                return
            if too_large:
                # A client waiting for "100 Continue" has sent nothing: answer at once.
                drain = (headers.get("expect", "").lower() != "100-continue"
                         and int(declared) <= DRAIN_FACTOR * self.config.max_body_bytes)
                await self._too_large(receive, send, 0 if drain else None)
                return

        body = b""
        if method not in SAFE_METHODS:
            chunks = []
            size = 0
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.config.max_body_bytes:
                    await self._too_large(receive, send, size if more_body(message) else None)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)

        if path == "/login" and self.config.token is not None:
            await self._login(method, body, headers, send, secure)
            return

        if not authenticated:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if method == "GET" and path == "/" and "token" in query:
                if self._token_ok(query["token"][0]):
                    await self._signed_in(send, secure)
                else:
                    await send_html(send, 401, LOGIN_PAGE.format(
                        message='<p class="error">Wrong token.</p>'))
                return
            if method == "GET" and path == "/":
                await send_html(send, 401, LOGIN_PAGE.format(message=""))
            else:
                await send_json(send, 401, error_body(
                    "unauthorized", "This server needs its API token: send "
                    "'Authorization: Bearer <token>' or sign in at /."),
                    [(b"www-authenticate", b'Bearer realm="medcode_nlp"')])
            return

        if method not in SAFE_METHODS:
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if path not in FORM_PATHS and body and content_type != "application/json":
                await send_json(send, 415, error_body(
                    "unsupported_media_type", "Send the request body as application/json."))
                return
            if path not in CSRF_EXEMPT_PATHS and not header_auth:
                given = headers.get(CSRF_HEADER, "")
                expected = cookies.get(CSRF_COOKIE, "")
                if not (given and expected and hmac.compare_digest(given.encode(),
                                                                   expected.encode())):
                    await send_json(send, 403, error_body(
                        "csrf", "Missing or wrong CSRF token: send header X-CSRF-Token equal "
                        "to the medcode_csrf cookie (GET /v1/csrf issues one)."))
                    return

        # An empty cookie counts as none: it could never match a non-empty header.
        needs_csrf_cookie = not cookies.get(CSRF_COOKIE) and (path == "/" or path == "/v1/csrf")
        csrf_value = secrets.token_urlsafe(32) if needs_csrf_cookie else cookies.get(CSRF_COOKIE)
        scope.setdefault("state", {})["csrf_token"] = csrf_value
        csp = DOCS_CSP if path in DOCS_PATHS else UI_CSP

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = base_headers(csp)
                if needs_csrf_cookie and csrf_value:
                    extra.append(cookie_header(CSRF_COOKIE, csrf_value, http_only=False,
                                               secure=secure))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay if method not in SAFE_METHODS else receive, send_wrapper)

    async def _too_large(self, receive: Receive, send: Send, drain_from: int | None) -> None:
        """Answer 413 and close; first read and discard the rest of the body from byte
        ``drain_from`` on (``None``: nothing to read) up to the drain bound."""
        if drain_from is not None:
            await _discard_body(receive, drain_from, DRAIN_FACTOR * self.config.max_body_bytes)
        await send_json(send, 413, error_body(
            "request_too_large",
            f"The request body is over the limit of {self.config.max_body_bytes} bytes."),
            [(b"connection", b"close")])

    async def _signed_in(self, send: Send, secure: bool) -> None:
        assert self._session is not None
        headers = [(b"location", b"/"), (b"content-length", b"0"), (b"cache-control", b"no-store"),
                   *base_headers(),
                   cookie_header(SESSION_COOKIE, self._session, http_only=True, secure=secure)]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _login(self, method: str, body: bytes, headers: dict[str, str], send: Send,
                     secure: bool) -> None:
        if method != "POST":
            await send_json(send, 405, error_body("method_not_allowed", "Use POST."))
            return
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        given = ""
        if content_type == "application/x-www-form-urlencoded":
            given = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
        elif content_type == "application/json":
            try:
                data = json.loads(body or b"{}")
                given = str(data.get("token", "")) if isinstance(data, dict) else ""
            except ValueError:
                given = ""
        if self._token_ok(given):
            await self._signed_in(send, secure)
        else:
            await send_html(send, 401, LOGIN_PAGE.format(
                message='<p class="error">Wrong token.</p>'))
