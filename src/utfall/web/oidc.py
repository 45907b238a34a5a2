"""OpenID Connect login routes: ``/login/oidc/{name}`` starts the flow,
``/login/oidc/{name}/callback`` finishes it (``utfall.access.oidc``).

The flow state (state, nonce, PKCE verifier, target) lives in an encrypted cookie
(Fernet, key derived from the server secret, 10 minutes, ``SameSite=Lax`` because the
provider's redirect back is a cross-site navigation); the callback answers with a
small page that continues to the target, so the new ``SameSite=Strict`` session
cookie is sent on the next, same-site request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from utfall.access import oidc
from utfall.access.accounts import record_external_login
from utfall.access.sessions import create_session
from utfall.i18n import t
from utfall.web.pages_accounts import safe_next, secret, start_session
from utfall.web.render import locale_of, render
from utfall.web.security import client_of, cookie_secure

router = APIRouter(include_in_schema=False)
FLOW_COOKIE = "utfall_oidc"
log = logging.getLogger("utfall.web.oidc")


def _fernet(request: Request) -> Fernet:
    key = hmac.new(secret(request), b"oidc-flow", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def redirect_uri(request: Request, name: str) -> str:
    """The callback URL registered at the provider."""
    import os

    base = (os.environ.get("UTFALL_OIDC_REDIRECT_BASE") or str(request.base_url)).rstrip("/")
    return f"{base}/login/oidc/{name}/callback"


def _provider(name: str) -> oidc.Provider:
    provider = oidc.provider_named(name)
    if provider is None:
        raise HTTPException(404)
    return provider


def _refused(request: Request, code: str, status: int = 403) -> Response:
    key = f"web.oidc.{code}" if code in {"no_assignment", "acr_too_low", "no_account",
                                         "inactive", "cancelled"} else "web.oidc.failed"
    response = render(request, "oidc_refused.html", {"message": t(key, locale_of(request)),
                                                     "code": code}, status)
    response.delete_cookie(FLOW_COOKIE, path="/login/oidc")
    return response


@router.get("/login/oidc/{name}")
def oidc_start(request: Request, name: str, next: str = "/",
               login_hint: str | None = None) -> Response:
    """Send the browser to the provider (authorization code + PKCE)."""
    provider = _provider(name)
    try:
        url, flow = oidc.begin(provider, redirect_uri(request, name), safe_next(next),
                               login_hint)
    except Exception:  # provider unreachable or inconsistent metadata
        log.exception("OIDC provider %s: could not start the login", name)
        return _refused(request, "failed", 502)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(FLOW_COOKIE, _fernet(request).encrypt(json.dumps(flow).encode()).decode(),
                        max_age=oidc.FLOW_SECONDS, httponly=True, samesite="lax",
                        secure=cookie_secure(request), path="/login/oidc")
    return response


@router.get("/login/oidc/{name}/callback", response_class=HTMLResponse)
def oidc_callback(request: Request, name: str) -> Response:
    """Verify the provider's answer, map the identity to an account, start a session."""
    provider = _provider(name)
    params: dict[str, Any] = dict(request.query_params)
    try:
        flow = json.loads(_fernet(request).decrypt(
            (request.cookies.get(FLOW_COOKIE) or "").encode(), ttl=oidc.FLOW_SECONDS))
    except (InvalidToken, ValueError):
        return _refused(request, "failed", 400)
    engine = request.app.state.engine
    client = client_of(request)
    try:
        claims = oidc.finish(provider, flow, params, redirect_uri(request, name))
        with engine.begin() as conn:
            account, unit = oidc.account_for_login(conn, provider, claims)
            record_external_login(conn, account.username, client, "ok")
            token = create_session(conn, account.id, unit)
    except oidc.OidcRefused as refused:
        log.info("OIDC login refused by %s: %s", name, refused)
        with engine.begin() as conn:
            record_external_login(conn, refused.username, client, f"oidc_{refused.code}"[:20])
        return _refused(request, refused.code)
    target = safe_next(flow.get("next"))
    response = render(request, "oidc_continue.html", {"target": target})
    start_session(request, response, token)
    response.delete_cookie(FLOW_COOKIE, path="/login/oidc")
    return response
