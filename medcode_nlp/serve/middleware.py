"""ASGI middleware of the server: access log lines without query or body, and a shield turning unexpected errors into a JSON 500."""

from __future__ import annotations

import logging
import time
import traceback

from medcode_nlp.serve.asgi import (
    HttpMiddleware,
    Message,
    Receive,
    Scope,
    Send,
    error_body,
    send_json,
)

logger = logging.getLogger("medcode_nlp.serve")  # the server's one logger name


class AccessLogMiddleware(HttpMiddleware):
    """One log line per request: method, path, status, milliseconds. No query, no body."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            logger.info("%s %s %s %.1fms", scope["method"], scope["path"], status or 500,
                        (time.perf_counter() - started) * 1000)


class ErrorShieldMiddleware(HttpMiddleware):
    """Turns any unhandled exception into a JSON 500; logs its type and frames, not its text."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as error:  # noqa: BLE001  (never show a traceback to the client)
            # The message of an unexpected error could quote input: log only type and frames.
            logger.error("unhandled %s in %s %s\n%s", type(error).__name__, scope.get("method"),
                         scope.get("path"), "".join(traceback.format_tb(error.__traceback__)))
            if not started:
                await send_json(send, 500, error_body(
                    "internal_error", "Internal server error; the server log has details."))
