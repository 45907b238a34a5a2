"""API documentation (OpenAPI schema, Swagger UI, ReDoc) for logged-in users only.

The schema describes every route and parameter; it is no secret, but there is no
reason to hand the map of a health-data system to anyone who asks. Unauthenticated
requests get 401 (schema) or a redirect to the login page (the HTML viewers).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse, RedirectResponse, Response

from utfall.web.security import NotAuthenticated, authenticate

OPENAPI = "/api/openapi.json"
# the viewers load their scripts from a CDN: allowed on these two pages only
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net "
            "https://fonts.googleapis.com; font-src https://fonts.gstatic.com; "
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
            "worker-src blob:; frame-ancestors 'none'; base-uri 'none'")


def _signed_in(request: Request) -> bool:
    return authenticate(request.app.state.engine, request) is not None


def install(app: FastAPI) -> None:
    """Add ``/api/openapi.json``, ``/api/docs`` and ``/api/redoc`` behind the session
    (create the app with ``openapi_url=None, docs_url=None, redoc_url=None``)."""

    @app.get(OPENAPI, include_in_schema=False)
    def openapi_schema(request: Request) -> Any:
        if not _signed_in(request):
            raise NotAuthenticated()
        return JSONResponse(app.openapi())

    def viewer(request: Request, page: Response) -> Response:
        if not _signed_in(request):
            return RedirectResponse(f"/login?next={quote(request.url.path, safe='')}",
                                    status_code=303)
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @app.get("/api/docs", include_in_schema=False)
    def swagger(request: Request) -> Response:
        return viewer(request, get_swagger_ui_html(openapi_url=OPENAPI,
                                                   title=f"{app.title} – API"))

    @app.get("/api/redoc", include_in_schema=False)
    def redoc(request: Request) -> Response:
        return viewer(request, get_redoc_html(openapi_url=OPENAPI, title=f"{app.title} – API"))
