"""Authentication and CSRF for the web app.

A request is authenticated by the session cookie (browser) or by
``Authorization: Bearer <token>`` (API clients; the token comes from
``POST /api/session``). Cookie-authenticated requests that change state must carry
the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``);
bearer requests carry no ambient authority and need none.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from sqlalchemy import Engine

from utfall.access.accounts import Account, load_account
from utfall.access.audit import Actor
from utfall.access.sessions import SessionInfo, check_csrf, load_session, touch_session

SESSION_COOKIE = "utfall_session"
LOGIN_CSRF_COOKIE = "utfall_login_csrf"
LANG_COOKIE = "utfall_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotAuthenticated(Exception):
    """No valid session or token."""


class CsrfFailed(Exception):
    """A state-changing request without the right CSRF token."""


@dataclass(frozen=True)
class Principal:
    """The authenticated user of a request."""

    account: Account
    session: SessionInfo
    via: str  # "cookie" or "bearer"

    @property
    def actor(self) -> Actor:
        """The audit/policy actor: user, role and the unit acted from."""
        return Actor(self.account.username, self.account.role, self.session.unit_id)

    @property
    def role(self) -> str:
        return self.account.role

    @property
    def unit_id(self) -> str | None:
        return self.session.unit_id


def cookie_secure(request: Request) -> bool:
    """Secure cookies over HTTPS, or always when ``UTFALL_COOKIE_SECURE=1``."""
    forced = os.environ.get("UTFALL_COOKIE_SECURE", "").lower()
    if forced in {"1", "true", "yes"}:
        return True
    if forced in {"0", "false", "no"}:
        return False
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int | None = None, http_only: bool = True) -> None:
    """Set a cookie with the project's flags (HttpOnly, SameSite=Strict, Secure on TLS)."""
    response.set_cookie(name, value, max_age=max_age, httponly=http_only, samesite="strict",
                        secure=cookie_secure(request), path="/")


def token_of(request: Request) -> tuple[str | None, str]:
    """The session token presented and how (``bearer`` or ``cookie``)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), "bearer"
    return request.cookies.get(SESSION_COOKIE), "cookie"


def authenticate(engine: Engine, request: Request) -> Principal | None:
    """The principal of the request, or None."""
    token, via = token_of(request)
    if not token:
        return None
    # a read-only transaction: on SQLite a signed-in request takes the write lock only
    # when last_seen is refreshed (at most once a minute per session)
    with engine.connect() as conn:
        session = load_session(conn, token, touch=False)
        if session is None:
            return None
        account = load_account(conn, session.user_id)
    if session.stale:
        with engine.begin() as conn:
            touch_session(conn, session.id)
    if account is None:
        return None
    if session.unit_id is not None and session.unit_id not in account.units:
        return None
    return Principal(account, session, via)


def require_csrf(request: Request, principal: Principal, form: dict[str, Any] | None) -> None:
    """Raise :class:`CsrfFailed` for an unsafe cookie request without the CSRF token."""
    if request.method in SAFE_METHODS or principal.via == "bearer":
        return
    presented = request.headers.get("x-csrf-token")
    if presented is None and form is not None:
        value = form.get("csrf_token")
        presented = value if isinstance(value, str) else None
    if not check_csrf(principal.session, presented):
        raise CsrfFailed()


def login_csrf(request: Request) -> str:
    """The pre-login CSRF value (double-submit cookie), new if absent."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def check_login_csrf(request: Request, presented: str | None) -> bool:
    """Double-submit check of the login form."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    return bool(cookie and presented) and secrets.compare_digest(cookie or "", presented or "")


def client_of(request: Request) -> str | None:
    """The client address (for login rate limiting): the peer, or the forwarded client
    only when the peer is one of ``UTFALL_TRUSTED_PROXIES`` (``utfall.access.accounts``)."""
    from utfall.access.accounts import client_address, parse_proxies

    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"),
                          parse_proxies(os.environ.get("UTFALL_TRUSTED_PROXIES")))


# ------------------------------------------------------------------ response headers

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HSTS = "max-age=31536000; includeSubDomains"


def served_over_https(request: Request) -> bool:
    """True over TLS: directly, or behind a proxy uvicorn trusts (its
    ``--forwarded-allow-ips``, set from ``UTFALL_TRUSTED_PROXIES`` by ``utfall serve``)
    that says ``X-Forwarded-Proto: https``; ``UTFALL_HSTS=1`` forces it."""
    if os.environ.get("UTFALL_HSTS", "").lower() in {"1", "true", "yes"}:
        return True
    return request.url.scheme == "https"


def apply_security_headers(request: Request, response: Response) -> Response:
    """The security headers every response carries, error pages included."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if not request.url.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if served_over_https(request):
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


# ------------------------------------------------------------------ log redaction

_TOKEN_PATH = re.compile(r"(/r/|/api/self-report/|/min/|/api/own-view/)[^/?#\s\"]+")
_TOKEN_QUERY = re.compile(r"((?:^|[?&;\s])(?:token|access_token|code|state|csrf_token)=)"
                          r"[^&;#\s\"]*", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with self-report tokens and ``token=`` (and OIDC code/state) values
    replaced: tokens never reach a log."""
    return _TOKEN_QUERY.sub(r"\1" + REDACTED, _TOKEN_PATH.sub(r"\1" + REDACTED, text))


class RedactTokens(logging.Filter):
    """Logging filter that redacts tokens in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v
                           for k, v in record.args.items()}
        return True


_REDACTOR = RedactTokens()
REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "utfall", "utfall.web",
                    "fastapi")


def install_log_redaction() -> None:
    """Put the token filter on the server's loggers and on every handler of the root
    and uvicorn loggers (a filter on a logger does not see its children's records)."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error"):
        for handler in logging.getLogger(name).handlers:
            if _REDACTOR not in handler.filters:
                handler.addFilter(_REDACTOR)
