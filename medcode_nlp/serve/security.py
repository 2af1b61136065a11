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
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from medcode_nlp.errors import MedcodeError

TOKEN_ENV = "MEDCODE_API_TOKEN"
MIN_TOKEN_LENGTH = 16
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

UI_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
          "form-action 'self'")
# FastAPI's interactive docs load Swagger UI / ReDoc from a CDN with an inline script.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
            "https://fastapi.tiangolo.com; worker-src blob:; frame-ancestors 'none'")
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IP addresses (127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> str | None:
    """The API token to enforce: ``token``, else ``$MEDCODE_API_TOKEN``; required off loopback."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise MedcodeError(
            f"Listening on {host} exposes the API beyond this machine: set an API token with "
            f"--token or ${TOKEN_ENV} (at least {MIN_TOKEN_LENGTH} characters), or listen on "
            "127.0.0.1.")
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise MedcodeError(f"The API token must have at least {MIN_TOKEN_LENGTH} characters; "
                           "generate one with: python3 -c 'import secrets; "
                           "print(secrets.token_urlsafe(32))'")
    return token


def session_value(token: str) -> str:
    """Session-cookie value for a token (the raw token never goes into a cookie)."""
    return hmac.new(token.encode(), b"medcode_nlp session v1", hashlib.sha256).hexdigest()


def error_body(error_type: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of every error response."""
    return {"error": {"type": error_type, "message": message, **extra}}


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


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        if name in found:
            text = f"{found[name]}{'; ' if name == 'cookie' else ', '}{text}"
        found[name] = text
    return found


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001  (a malformed cookie header is just no cookies)
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0].lower()
    return host_header.rsplit(":", 1)[0].lower() if host_header.count(":") == 1 else (
        host_header.lower())


def cookie_header(name: str, value: str, *, http_only: bool, secure: bool,
                  max_age: int | None = None) -> tuple[bytes, bytes]:
    """A Set-Cookie header (SameSite=Strict, Path=/)."""
    parts = [f"{name}={value}", "Path=/", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return b"set-cookie", "; ".join(parts).encode("latin-1")


def base_headers(csp: str = UI_CSP) -> list[tuple[bytes, bytes]]:
    """Headers added to every response."""
    return [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", csp.encode()),
    ]


async def send_json(send: Send, status: int, body: dict[str, Any],
                    extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send a complete JSON response."""
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode()),
               (b"cache-control", b"no-store"), *base_headers(), *(extra_headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def send_html(send: Send, status: int, html: str,
                    extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send a complete HTML response."""
    payload = html.encode()
    headers = [(b"content-type", b"text/html; charset=utf-8"),
               (b"content-length", str(len(payload)).encode()),
               (b"cache-control", b"no-store"), *base_headers(), *(extra_headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _more_body(message: Message) -> bool:
    """Whether an ASGI ``http.request`` message says more of the body follows."""
    return bool(message.get("more_body", False))


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
            if not _more_body(message):
                return


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>medcode_nlp: sign in</title>
</head>
<body class="login"><main class="login-box"><h1>medcode_nlp review</h1>
<p>This server needs its API token.</p>
<form method="post" action="/login"><label>API token
<input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button></form>{message}</main></body></html>
"""


class SecurityMiddleware:
    """ASGI middleware enforcing :class:`SecurityConfig` on every HTTP request."""

    def __init__(self, app: ASGIApp, config: SecurityConfig) -> None:
        self.app = app
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
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        method = scope["method"].upper()
        path = scope["path"]
        secure = scope.get("scheme") == "https"

        allowed = self.config.allowed_hosts
        if allowed is not None and _host_name(headers.get("host", "")) not in allowed:
            await send_json(send, 400, error_body(
                "invalid_host", "The Host header does not name this server; without an API "
                "token the server answers only to localhost / 127.0.0.1."))
            return

        if method not in SAFE_METHODS and self._cross_origin(headers):
            await send_json(send, 403, error_body(
                "cross_origin", "Cross-origin requests that change state are refused."))
            return

        cookies = _cookies(headers)
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
                    await self._too_large(receive, send, size if _more_body(message) else None)
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
