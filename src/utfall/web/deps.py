"""FastAPI dependencies: the authenticated principal, form data, CSRF, roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import Engine

from utfall.access.policy import AccessDenied
from utfall.web.security import NotAuthenticated, Principal, authenticate, require_csrf


def engine_of(request: Request) -> Engine:
    """The store engine of the app."""
    return request.app.state.engine


def optional_principal(request: Request) -> Principal | None:
    """The authenticated principal or None (also kept on ``request.state``)."""
    principal = authenticate(request.app.state.engine, request)
    request.state.principal = principal
    return principal


def current_principal(request: Request) -> Principal:
    """The authenticated principal; 401 (API) or redirect to login (pages) otherwise."""
    principal = optional_principal(request)
    if principal is None:
        raise NotAuthenticated()
    return principal


async def form_data(request: Request) -> dict[str, Any]:
    """The posted form as a dict (repeated fields become lists)."""
    form = await request.form()
    out: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        out[key] = values if len(values) > 1 else (values[0] if values else "")
    return out


def checked_form(request: Request, form: dict[str, Any] = Depends(form_data),
                 principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """The posted form after the CSRF check."""
    require_csrf(request, principal, form)
    return form


def csrf_checked(request: Request, principal: Principal = Depends(current_principal)
                 ) -> Principal:
    """The principal of a state-changing JSON request after the CSRF check."""
    require_csrf(request, principal, None)
    return principal


def needs_role(*roles: str) -> Callable[..., Principal]:
    """Dependency: the principal must have one of ``roles`` (403 otherwise)."""

    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in roles:
            raise AccessDenied("role", "Din roll har inte behörighet till detta.",
                               "Your role is not allowed to do this.")
        return principal

    return dependency


def as_list(value: Any) -> list[str]:
    """A form value as a list of strings."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]
