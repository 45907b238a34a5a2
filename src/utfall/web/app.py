"""The FastAPI application: JSON API under ``/api/`` and server-rendered pages.

``create_app(settings)`` migrates the store (all heads) and wires routes, error
pages (no stack traces to users) and security headers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from utfall.access.audit import log_event
from utfall.access.policy import AccessDenied
from utfall.config import Settings, get_settings
from utfall.store.db import ensure_schema, get_engine
from utfall.web import health
from utfall.web.limits import BodyLimit
from utfall.web.render import locale_of, render
from utfall.web.security import (
    CsrfFailed,
    NotAuthenticated,
    apply_security_headers,
    install_log_redaction,
)
from utfall.web.services import ResultCache

log = logging.getLogger("utfall.web")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the web application on the configured (or given) store."""
    settings = settings or get_settings()
    engine = get_engine(settings.effective_database_url, serving=True)
    ensure_schema(engine)
    app = FastAPI(
        title="Utfall",
        description="Uppföljning av utfall i beroendevården / outcome follow-up in addiction "
                    "care. Every route returning or changing personal data needs a session "
                    "(cookie + CSRF header, or `Authorization: Bearer` from `POST /api/session`).",
        version="0.1.0",
        openapi_url=None,  # /api/openapi.json, /api/docs, /api/redoc: logged-in users only
        docs_url=None,
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.locale = settings.locale
    app.state.results = ResultCache()
    from utfall.analytics.jobs import install as install_runs

    install_runs(app, settings.analytics_runs_poll_seconds)  # stored runs, never on a page load
    health.install(app)  # /healthz, /readyz, 503 + Retry-After when the store is down

    from utfall.access.checkpoint import start_periodic
    from utfall.web import api, docs, downloads, oidc, pages, pages_accounts

    install_log_redaction()  # no self-report token or token= in any log
    start_periodic(engine, settings)  # signed audit checkpoints every N events / T minutes

    app.include_router(api.router)
    from utfall.web import api_invitations

    app.include_router(api_invitations.router)  # send self-report links, message log
    from utfall.web import api_analytics

    app.include_router(api_analytics.router)  # dashboard and analytics from stored runs
    from utfall.web import api_enrolments

    app.include_router(api_enrolments.router)  # person overview, phase changes, discharge
    from utfall.web import api_worklist

    app.include_router(api_worklist.router)  # the unit's work list: paged, CSV, assignment
    from utfall.web import api_flags

    app.include_router(api_flags.router)  # clinical flags, unit inbox, corrections
    from utfall.web import api_selfreport

    app.include_router(api_selfreport.router)  # own goals, own-view links, the own view
    from utfall.web.fhir import create_fhir_app

    app.mount("/fhir", create_fhir_app(app))  # FHIR R4; errors as OperationOutcome
    from utfall.web import register_pages

    app.include_router(register_pages.router)  # the unit's missing register data
    docs.install(app)
    app.include_router(downloads.router)  # access log as CSV/JSON
    app.include_router(pages_accounts.router)  # login, own password, user administration
    app.include_router(oidc.router)  # regional / municipal OpenID Connect login
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).with_name("static"))),
              name="static")

    app.add_middleware(BodyLimit)  # 413 before parsing (inside the security headers)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response: Response = await call_next(request)
        return apply_security_headers(request, response)

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, _exc: NotAuthenticated) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "not authenticated"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, _exc: CsrfFailed) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "missing or invalid CSRF token"}, status_code=403)
        return render(request, "error.html", {"status": 403, "key": "web.error.csrf"}, 403)

    @app.exception_handler(AccessDenied)
    async def access_denied(request: Request, exc: AccessDenied) -> Response:
        _log_denial(request, exc)
        status = getattr(exc, "status", 403)  # PersonNotFound: 404, unknown or not yours
        if _is_api(request):
            return JSONResponse({"detail": exc.en, "code": exc.code, "sv": exc.sv, "en": exc.en},
                                status_code=status)
        return render(request, "error.html",
                      {"status": status, "reason": exc.text(locale_of(request)),
                       "code": exc.code, "person_key": getattr(request.state, "person_key",
                                                               None)}, status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=getattr(exc, "headers", None))
        key = {404: "web.error.404", 403: "web.error.403", 405: "web.error.405"}.get(
            exc.status_code, "web.error.generic")
        return render(request, "error.html", {"status": exc.status_code, "key": key},
                      exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                      for e in exc.errors()]
            return JSONResponse({"detail": errors}, status_code=422)
        return render(request, "error.html", {"status": 400, "key": "web.error.400"}, 400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path,
                      exc_info=exc)
        # answered outside the middleware stack: add the security headers here
        if _is_api(request):
            return apply_security_headers(
                request, JSONResponse({"detail": "internal error"}, status_code=500))
        return apply_security_headers(
            request, render(request, "error.html", {"status": 500, "key": "web.error.500"}, 500))

    return app


def _log_denial(request: Request, exc: AccessDenied) -> None:
    """Write a refused person-level access to the audit log (own transaction)."""
    principal = getattr(request.state, "principal", None)
    person_key = getattr(request.state, "person_key", None)
    if principal is None or person_key is None:
        return
    try:
        with request.app.state.engine.begin() as conn:
            log_event(conn, principal.actor, "read", person_key,
                      {"denied": True, "code": exc.code, "path": request.url.path[:200]})
    except Exception:  # never turn a 403 into a 500
        log.exception("could not log a refused access")
