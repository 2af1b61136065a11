"""ASGI plumbing the server's middlewares share: the ASGI types, a request's headers and
cookies, complete JSON or HTML responses carrying the headers every response gets (no
sniffing, no framing, no referrer, a content security policy), and their base class
(:class:`HttpMiddleware`)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UI_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
          "form-action 'self'")
# FastAPI's interactive docs load Swagger UI / ReDoc from a CDN with an inline script.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
            "https://fastapi.tiangolo.com; worker-src blob:; frame-ancestors 'none'")


def error_body(error_type: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of every error response."""
    return {"error": {"type": error_type, "message": message, **extra}}


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (repeated ones joined)."""
    found: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        if name in found:
            text = f"{found[name]}{'; ' if name == 'cookie' else ', '}{text}"
        found[name] = text
    return found


def request_cookies(headers: dict[str, str]) -> dict[str, str]:
    """The cookies the request sends (none for a malformed Cookie header)."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001  (a malformed cookie header is just no cookies)
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def host_name(host_header: str) -> str:
    """The host a Host header names, without its port, lower case."""
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


def more_body(message: Message) -> bool:
    """Whether an ASGI ``http.request`` message says more of the body follows."""
    return bool(message.get("more_body", False))


class HttpMiddleware:
    """Base of the server's ASGI middlewares: an HTTP request goes to :meth:`handle`, any
    other scope (lifespan) straight to the wrapped ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request (subclasses say how)."""
        raise NotImplementedError
