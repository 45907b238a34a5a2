"""Health probes and clean failure when the store is unavailable.

- ``GET /healthz``: liveness — the process answers; never touches the database.
- ``GET /readyz``: readiness — the database answers and its migrations are current;
  503 with ``Retry-After`` otherwise (a load balancer stops sending traffic).
- Any request that fails because the store is unavailable (unreachable, connection
  lost, pool exhausted, SQLite still locked after waiting, a PostgreSQL statement or
  lock timeout) is answered 503 with ``Retry-After``: a clean Swedish/English page, or
  JSON under ``/api/``. The log gets one line per failure burst (and one when the store
  is back), not a traceback per request.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc

from utfall.store.db import current_revisions, is_unavailable, pending_heads

log = logging.getLogger("utfall.web")
router = APIRouter(tags=["health"], include_in_schema=False)  # like the pages

RETRY_AFTER_SECONDS = 5
QUIET_SECONDS = 60.0  # a failure after this long without one starts a new burst
UNAVAILABLE_SV = "Databasen kan inte nås just nu. Försök igen om en stund."
UNAVAILABLE_EN = "The database cannot be reached right now. Try again in a moment."


class OutageLog:
    """Logs one line when the store starts failing and one when it is back."""

    def __init__(self, quiet_seconds: float = QUIET_SECONDS) -> None:
        self.quiet = quiet_seconds
        self._lock = threading.Lock()
        self.failing = False
        self.count = 0
        self._started = 0.0
        self._last = 0.0

    def failure(self, exc: BaseException) -> None:
        """Count a failed request; log only the first of a burst."""
        now = time.monotonic()
        with self._lock:
            new_burst = not self.failing or now - self._last > self.quiet
            if new_burst:
                self.failing, self.count, self._started = True, 0, now
            self.count += 1
            self._last = now
        if new_burst:
            log.error("database unavailable, answering 503 until it is back: %s",
                      describe(exc))

    def success(self) -> None:
        """The store answered again: close the burst with one line."""
        if not self.failing:
            return
        with self._lock:
            if not self.failing:
                return
            count, seconds = self.count, time.monotonic() - self._started
            self.failing, self.count = False, 0
        log.warning("database reachable again after %d failed requests in %.0f s",
                    count, seconds)


def describe(exc: BaseException) -> str:
    """The error class and the first line of its message (no SQL, no parameters)."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0][:200]
    return f"{type(orig).__name__}: {first}"


def _outage(request: Request) -> OutageLog:
    state = request.app.state
    if not hasattr(state, "outage"):
        state.outage = OutageLog()
    return state.outage


def _retry_headers() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness probe: the process answers (no database access)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "database unreachable or not migrated"}})
def readyz(request: Request) -> Any:
    """Readiness probe: the database answers and its migrations are current."""
    try:
        current = current_revisions(request.app.state.engine)
    except Exception as exc:
        if not is_unavailable(exc):
            log.error("readiness check failed: %s", describe(exc))
        _outage(request).failure(exc)
        return JSONResponse({"status": "unavailable", "database": "unreachable"},
                            status_code=503, headers=_retry_headers())
    pending = pending_heads(current)
    if pending:
        return JSONResponse({"status": "unavailable", "database": "ok",
                             "migrations": "not current", "pending": sorted(pending)},
                            status_code=503, headers=_retry_headers())
    _outage(request).success()
    return {"status": "ready", "database": "ok", "migrations": "current"}


async def store_unavailable(request: Request, exc: Exception) -> Response:
    """503 with ``Retry-After``: JSON under ``/api/``, the error page otherwise."""
    from utfall.web.render import render

    _outage(request).failure(exc)
    headers = _retry_headers()
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": "database unavailable", "code": "unavailable",
                             "sv": UNAVAILABLE_SV, "en": UNAVAILABLE_EN},
                            status_code=503, headers=headers)
    response = render(request, "error.html", {"status": 503, "key": "web.error.503"}, 503)
    response.headers.update(headers)
    return response


def not_saved(request: Request, exc: Exception, response: Response) -> Response:
    """A form re-rendered with what the user typed after the store refused the write:
    503 with ``Retry-After`` (the caller has checked :func:`is_unavailable`)."""
    _outage(request).failure(exc)
    response.status_code = 503
    response.headers.update(_retry_headers())
    return response


class _QuietPoolFilter(logging.Filter):
    """Drops SQLAlchemy's per-connection tracebacks (failed reset/close of a connection
    whose server went away) while an outage is being reported once."""

    def __init__(self, outage: OutageLog) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.outage.failing


def install(app: FastAPI) -> None:
    """Register the probes and the 503 handlers on ``app``."""
    app.state.outage = OutageLog()
    app.include_router(router)
    for kind in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                 sa_exc.DisconnectionError):
        app.add_exception_handler(kind, store_unavailable)
    quiet = _QuietPoolFilter(app.state.outage)
    for name in ("sqlalchemy.pool", "sqlalchemy.pool.impl.QueuePool"):
        logging.getLogger(name).addFilter(quiet)
