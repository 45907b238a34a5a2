"""The person's own view behind a personal link (``/min/{token}``), and the staff pages
for the person's goals (``/persons/{key}/goals``) and own-view links
(``/persons/{key}/own-link``). Access and audit live in ``utfall.care.goals`` and
``utfall.care.own_view``; these handlers only shape forms and pages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.access.policy import AccessDenied
from utfall.web.deps import checked_form, needs_role
from utfall.web.pages._common import CARE, _check_key, _redirect, _text
from utfall.web.render import locale_of, render
from utfall.web.security import Principal

router = APIRouter(include_in_schema=False)
RECORDERS = ("clinician", "social_worker")


@router.get("/min/{token}", response_class=HTMLResponse)
def own_view_page(request: Request, token: str) -> Response:
    """The person's results over time, life-situation profile and goals (read-only)."""
    from utfall.care import CareError
    from utfall.care.help_contacts import help_contacts
    from utfall.care.own_view import open_own_view

    try:
        with request.app.state.engine.begin() as conn:
            view = open_own_view(conn, token)
    except (CareError, AccessDenied):
        return render(request, "own_view_closed.html", {"contacts": help_contacts(None)}, 404)
    return render(request, "own_view.html", {
        "view": view, "opened": view, "contacts": help_contacts(view.municipality_code)})


def _goals_ctx(conn: Any, principal: Principal, person_key: str, **extra: Any) -> dict[str, Any]:
    from utfall.care.goals import domains, list_goals, statuses

    return {"person_key": person_key, "goals": list_goals(conn, principal.actor, person_key),
            "domains": domains(), "statuses": statuses(), "errors": {}, "values": {},
            "can_record": principal.role in RECORDERS, **extra}


@router.get("/persons/{person_key}/goals", response_class=HTMLResponse)
def goals_page(request: Request, person_key: str,
               principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """The person's own goals: list, add, follow up."""
    _check_key(request, person_key)
    with request.app.state.engine.begin() as conn:
        ctx = _goals_ctx(conn, principal, person_key,
                         saved=request.query_params.get("saved") == "1")
    return render(request, "person_goals.html", ctx)


@router.post("/persons/{person_key}/goals", response_class=HTMLResponse)
def goals_post(request: Request, person_key: str, form: dict[str, Any] = Depends(checked_form),
               principal: Principal = Depends(needs_role(*RECORDERS))) -> Response:
    """Add a goal (``domain``, ``text``) or review one (``goal_id``, ``status``, ``note``)."""
    from utfall.care import CareError
    from utfall.care.goals import add_goal, review_goal

    _check_key(request, person_key)
    locale = locale_of(request)
    engine = request.app.state.engine
    try:
        with engine.begin() as conn:
            if form.get("goal_id"):
                review_goal(conn, principal.actor, int(str(form["goal_id"])),
                            str(form.get("status") or ""),
                            note=str(form.get("note") or "") or None,
                            stage=str(form.get("stage") or "") or None)
            else:
                add_goal(conn, principal.actor, person_key, str(form.get("domain") or ""),
                         str(form.get("text") or ""))
    except (CareError, ValueError) as exc:
        errors: dict[str, str] = {}
        for issue in getattr(exc, "issues", []):
            field = (issue.where or "_").rsplit(".", 1)[-1]
            errors[field] = issue.en if locale == "en" else issue.sv
        with engine.begin() as conn:
            ctx = _goals_ctx(conn, principal, person_key, errors=errors,
                             values={k: str(v) for k, v in form.items()},
                             summary=_text("web.form.fix", locale))
        return render(request, "person_goals.html", ctx, 422)
    return _redirect(f"/persons/{person_key}/goals?saved=1")


@router.get("/persons/{person_key}/own-link", response_class=HTMLResponse)
def own_link_page(request: Request, person_key: str,
                  principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """The person's own-view links: issue a new one, block all."""
    from utfall.care.own_view import own_view_links

    _check_key(request, person_key)
    with request.app.state.engine.begin() as conn:
        links = own_view_links(conn, principal.actor, person_key)
    return render(request, "own_link.html", {
        "person_key": person_key, "links": links, "can_record": principal.role in RECORDERS,
        "revoked": request.query_params.get("revoked")})


@router.post("/persons/{person_key}/own-link", response_class=HTMLResponse)
def own_link_post(request: Request, person_key: str, form: dict[str, Any] = Depends(checked_form),
                  principal: Principal = Depends(needs_role(*RECORDERS))) -> Response:
    """``action=create`` shows a new link once; ``action=revoke`` blocks every link."""
    from utfall.care.own_view import issue_own_view_link, own_view_links, revoke_own_view_links

    _check_key(request, person_key)
    engine = request.app.state.engine
    if form.get("action") == "revoke":
        with engine.begin() as conn:
            n = revoke_own_view_links(conn, principal.actor, person_key)
        return _redirect(f"/persons/{person_key}/own-link?revoked={n}")
    with engine.begin() as conn:
        token = issue_own_view_link(conn, principal.actor, person_key)
        links = own_view_links(conn, principal.actor, person_key)
    url = str(request.base_url).rstrip("/") + f"/min/{token}"
    return render(request, "own_link.html", {
        "person_key": person_key, "links": links, "can_record": True, "new_url": url})
