"""The API token of ``medcode serve``: when one is needed, where it comes from, the session
cookie value that stands for it in a browser, and the sign-in page that asks for it."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os

from medcode_nlp.errors import MedcodeError

TOKEN_ENV = "MEDCODE_API_TOKEN"
MIN_TOKEN_LENGTH = 16


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


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>medcode_nlp: sign in</title>
</head>
<body class="login"><main class="login-box"><h1>medcode_nlp review</h1>
<p>This server needs its API token.</p>
<form method="post" action="/login"><label>API token
<input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button></form>{message}</main></body></html>
"""
