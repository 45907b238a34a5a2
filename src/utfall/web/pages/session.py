"""Session pages: start page, unit switch and language."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.access.policy import AccessDenied
from utfall.access.sessions import switch_unit
from utfall.web.deps import checked_form, current_principal
from utfall.web.pages._common import (
    _home,
    _redirect,
    _safe_next,
)
from utfall.web.security import (
    LANG_COOKIE,
    Principal,
    set_cookie,
)

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> Response:
    """Start page: the role's home, or the login."""
    from utfall.web.deps import optional_principal

    principal = optional_principal(request)
    return _redirect(_home(principal) if principal else "/login")


# login, logout: utfall.web.pages_accounts


@router.post("/unit")
def change_unit(request: Request, form: dict[str, Any] = Depends(checked_form),
                principal: Principal = Depends(current_principal)) -> Response:
    """Act from another of the user's units."""
    unit = str(form.get("unit_id", ""))
    if unit not in principal.account.units:
        raise AccessDenied("unit", "Du är inte medlem av enheten.",
                           "You are not a member of this unit.")
    with request.app.state.engine.begin() as conn:
        switch_unit(conn, principal.session.id, unit)
    return _redirect(_home(principal))


@router.get("/lang/{code}")
def set_language(request: Request, code: str, next: str = "/") -> Response:
    """Remember the language (sv/en) and go back."""
    response = _redirect(_safe_next(next))
    if code in ("sv", "en"):
        set_cookie(request, response, LANG_COOKIE, code, max_age=365 * 86400)
    return response
