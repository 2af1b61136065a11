"""``medcode serve``: the HTTP API and the coder review UI (needs the ``serve`` extra).

Importing this package needs only the standard library; FastAPI and uvicorn are imported
when an app is built or the server runs.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode_nlp.errors import MedcodeError
from medcode_nlp.serve.api_token import TOKEN_ENV, resolve_token
from medcode_nlp.serve.security import DEFAULT_MAX_BODY_BYTES

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app", "run_server"]

logger = logging.getLogger("medcode_nlp.serve")
HEALTHCHECK_SECONDS = 60


def _require_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise MedcodeError("medcode serve needs the serve extra: "
                           "pip install 'medcode_nlp[serve]'") from None


def create_app(*args: Any, **kwargs: Any) -> FastAPI:
    """Build the FastAPI app; see :func:`medcode_nlp.serve.app.create_app`."""
    _require_extra()
    from medcode_nlp.serve.app import create_app as build

    return build(*args, **kwargs)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging setup plus the medcode_nlp loggers; no access log (it has queries)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["medcode_nlp"] = {"handlers": ["default"], "level": level.upper(),
                                        "propagate": False}
    return config


def run_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    db: str | Path | None = None,
    *,
    ner: str | None = None,
    kb: str | Path | None = None,
    workers: int = 1,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    log_level: str = "info",
) -> None:
    """Serve the API and review UI with uvicorn until interrupted.

    Listening anywhere but loopback needs ``token`` (or ``$MEDCODE_API_TOKEN``). Each of the
    ``workers`` processes loads the coder once.
    """
    _require_extra()
    import uvicorn

    if not 0 < port < 65536:
        raise MedcodeError(f"Invalid port {port}.")
    if workers < 1:
        raise MedcodeError("--workers must be at least 1.")
    if log_level.lower() not in ("critical", "error", "warning", "info", "debug"):
        raise MedcodeError(f"Unknown log level {log_level!r}.")
    resolved = resolve_token(host, token)
    if resolved is not None:
        os.environ[TOKEN_ENV] = resolved  # worker processes read it from the environment
    os.environ["MEDCODE_SERVE_CONFIG"] = json.dumps({
        "db": str(db) if db is not None else None,
        "ner": ner,
        "kb": str(kb) if kb is not None else None,
        "max_body_bytes": max_body_bytes,
    })
    # Fail now, with a clear message, if the review database cannot be opened.
    from medcode_nlp.review.store import ReviewStore

    store = ReviewStore(db)
    where = f"[{host}]" if ":" in host else host
    print(f"medcode_nlp review UI and API on http://{where}:{port}/ (docs at /docs); "
          f"reviews in {store.path}; {'API token required' if resolved else 'no token'}",
          flush=True)
    extra: dict[str, Any] = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:
        # uvicorn >= 0.37 kills a worker that misses its 5 s health check; a worker busy
        # coding on a loaded machine can miss it mid-request, so give it a minute.
        extra["timeout_worker_healthcheck"] = HEALTHCHECK_SECONDS
    uvicorn.run(
        "medcode_nlp.serve.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=log_config(log_level),
        log_level=log_level.lower(),
        server_header=False,
        proxy_headers=False,
        **extra,
    )
