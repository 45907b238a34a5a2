"""Request body size limits (pure ASGI middleware), checked before anything parses a body.

A request that presents no credentials (no session cookie, no bearer token) may send at
most :data:`ANONYMOUS_LIMIT` bytes; a login at most :data:`LOGIN_LIMIT`; an
authenticated request the limit of its route (:data:`ROUTE_LIMITS`, else
:data:`DEFAULT_LIMIT`). A declared ``Content-Length`` above the limit is refused with 413
at once, without reading the body; a body without a length (chunked) is read up to the
limit and refused as soon as it goes over. Whether the credentials are *valid* is
checked later by the route; this only decides how much may be read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KIB = 1024
ANONYMOUS_LIMIT = 64 * KIB  # login forms, self-report answers (token in the URL)
LOGIN_LIMIT = 16 * KIB
DEFAULT_LIMIT = 256 * KIB
# (method, path pattern, limit) for authenticated requests; first match wins
ROUTE_LIMITS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("POST", re.compile(r"^/(api/session|login)$"), LOGIN_LIMIT),
    ("POST", re.compile(r"^/api/persons/[^/]+/(assessments|enrolments)$"), 128 * KIB),
    ("POST", re.compile(r"^/persons/[^/]+/(assess|enrol)$"), 128 * KIB),
    ("POST", re.compile(r"^/r/[^/]+$"), ANONYMOUS_LIMIT),
    ("POST", re.compile(r"^/api/self-report/[^/]+$"), ANONYMOUS_LIMIT),
)
SESSION_COOKIE = "utfall_session"


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


def has_credentials(headers: dict[bytes, bytes]) -> bool:
    """Whether the request presents a bearer token or a session cookie (not yet checked)."""
    if headers.get(b"authorization", b"").lower().startswith(b"bearer "):
        return True
    return (SESSION_COOKIE + "=").encode() in headers.get(b"cookie", b"")


def limit_for(method: str, path: str, headers: dict[bytes, bytes]) -> int:
    """The body limit of a request in bytes."""
    limit = DEFAULT_LIMIT
    for route_method, pattern, route_limit in ROUTE_LIMITS:
        if method == route_method and pattern.match(path):
            limit = route_limit
            break
    if not has_credentials(headers):
        limit = min(limit, ANONYMOUS_LIMIT)
    return limit


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    path = scope.get("path", "")
    if path.startswith("/api/"):
        body = json.dumps({"detail": "request body too large", "code": "too_large",
                           "limit_bytes": limit,
                           "sv": f"Förfrågan är för stor (högst {limit // KIB} KiB).",
                           "en": f"The request is too large (at most {limit // KIB} KiB)."}
                          ).encode()
        kind = b"application/json"
    else:
        page = _error_page(scope, limit)
        if page is not None:
            await page(scope, _no_body, send)
            return
        body = (f"<!doctype html><html lang=\"sv\"><meta charset=\"utf-8\"><title>413</title>"
                f"<h1>För stor förfrågan / Request too large</h1>"
                f"<p>Det som skickades är större än {limit // KIB} KiB och togs inte emot. / "
                f"What was sent is larger than {limit // KIB} KiB and was not accepted.</p>"
                f"<p><a href=\"/\">Till startsidan / Home</a></p></html>").encode()
        kind = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", kind), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")]})
    await send({"type": "http.response.body", "body": body})


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _error_page(scope: Scope, limit: int) -> Any:
    """The app's error page (language, layout) for a refused body; None if unavailable."""
    if "app" not in scope:
        return None
    try:
        from starlette.requests import Request

        from utfall.i18n import t
        from utfall.web.render import locale_of, render

        request = Request(scope)
        reason = t("web.error.413", locale_of(request), kib=limit // KIB)
        response = render(request, "error.html", {"status": 413, "reason": reason}, 413)
    except Exception:  # never let the refusal itself fail
        return None
    response.headers["Connection"] = "close"
    return response


class BodyLimit:
    """ASGI middleware enforcing :func:`limit_for` on every HTTP request body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        limit = limit_for(scope.get("method", "GET"), scope.get("path", ""), headers)
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = limit + 1
            if size > limit:
                await _too_large(scope, send, limit)
                return
            await self.app(scope, _capped(receive, limit), send)
            return
        if headers.get(b"transfer-encoding") is None:  # no body at all
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                await _too_large(scope, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _capped(receive: Receive, limit: int) -> Receive:
    """``receive`` that never hands over more than ``limit`` bytes (a lying length)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.disconnect"}
        return message

    return wrapped


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def wrapped() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped
