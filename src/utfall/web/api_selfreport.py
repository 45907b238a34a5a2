"""JSON API of the person's own side: goals and own-view links (care roles, checked and
audited in ``utfall.care.goals`` / ``utfall.care.own_view``), and the own view itself
(the personal link is the credential).

* ``GET /api/persons/{key}/goals`` → ``[{id, domain, text, source, recorded_at, status,
  reviews}]`` (care roles; other principals' goals only with consent for ``plan``)
* ``POST /api/persons/{key}/goals`` ``{domain, text, enrolment_id?}`` → 201 ``{goal_id}``
* ``POST /api/goals/{goal_id}/reviews`` ``{status, stage?, note?}`` → 201 ``{review_id}``
* ``POST /api/persons/{key}/own-view-links`` ``{valid_days?}`` → 201 ``{token, path}``
* ``DELETE /api/persons/{key}/own-view-links`` → ``{revoked}``
* ``GET /api/own-view/{token}`` → the person's results, profile and goals (404 when the
  link is unknown, revoked or expired)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from utfall.access.policy import AccessDenied
from utfall.web import services
from utfall.web.deps import csrf_checked, needs_role
from utfall.web.security import Principal

router = APIRouter(prefix="/api")
RECORDERS = ("clinician", "social_worker")
CARE = ("clinician", "social_worker", "unit_manager")
UNAUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid session or token"},
    403: {"description": "Outside the caller's scope (role, unit or consent)"},
    404: {"description": "No such person or goal"}}
PersonKey = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="pseudonymous person key")]


def _error(exc: Any) -> JSONResponse:
    issues = [{"where": i.where, "code": i.code, "sv": i.sv, "en": i.en}
              for i in getattr(exc, "issues", [])]
    status = 404 if type(exc).__name__ in ("NotFound", "OwnViewRefused") else 422
    return JSONResponse({"detail": exc.en, "code": exc.code, "sv": exc.sv, "en": exc.en,
                         "issues": issues}, status_code=status)


class GoalIn(BaseModel):
    domain: str = Field(max_length=40, description="life domain id (content/goals)")
    text: str = Field(max_length=2000)
    enrolment_id: str | None = Field(default=None, max_length=40)


class ReviewIn(BaseModel):
    status: Literal["achieved", "partly", "not", "changed"]
    stage: str | None = Field(default=None, max_length=40)
    note: str | None = Field(default=None, max_length=2000)


class OwnLinkIn(BaseModel):
    valid_days: int = Field(default=365, ge=1, le=730)


def goal_json(goal: Any) -> dict[str, Any]:
    """A goal as JSON."""
    return {"id": goal.id, "domain": goal.domain, "domain_label": goal.domain_label,
            "text": goal.text, "source": goal.source, "unit_id": goal.unit_id,
            "recorded_at": goal.recorded_at.isoformat(), "status": goal.status,
            "reviews": services.plain(goal.reviews)}


@router.get("/persons/{person_key}/goals", responses=UNAUTH, tags=["persons"])
def goals(person_key: PersonKey, request: Request,
          principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """The person's own goals with their reviews."""
    from utfall.care import CareError
    from utfall.care.goals import list_goals

    request.state.person_key = person_key
    try:
        with request.app.state.engine.begin() as conn:
            found = list_goals(conn, principal.actor, person_key)
    except CareError as exc:
        return _error(exc)
    return [goal_json(g) for g in found]


@router.post("/persons/{person_key}/goals", status_code=201, responses=UNAUTH, tags=["persons"])
def add_goal(person_key: PersonKey, body: GoalIn, request: Request,
             principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Record a goal of the person (free text + life domain)."""
    from utfall.care import CareError
    from utfall.care.goals import add_goal as add

    request.state.person_key = person_key
    csrf_checked(request, principal)
    try:
        with request.app.state.engine.begin() as conn:
            goal_id = add(conn, principal.actor, person_key, body.domain, body.text,
                          enrolment_id=body.enrolment_id)
    except CareError as exc:
        return _error(exc)
    return {"goal_id": goal_id}


@router.post("/goals/{goal_id}/reviews", status_code=201, responses=UNAUTH, tags=["persons"])
def review_goal(goal_id: Annotated[int, Path(ge=1, le=2**31 - 1)], body: ReviewIn,
                request: Request,
                principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Record how a goal has gone at a follow-up."""
    from utfall.care import CareError
    from utfall.care.goals import review_goal as review

    csrf_checked(request, principal)
    try:
        with request.app.state.engine.begin() as conn:
            review_id = review(conn, principal.actor, goal_id, body.status, stage=body.stage,
                               note=body.note)
    except CareError as exc:
        return _error(exc)
    return {"review_id": review_id}


@router.post("/persons/{person_key}/own-view-links", status_code=201, responses=UNAUTH,
             tags=["persons"])
def own_link(person_key: PersonKey, request: Request, body: OwnLinkIn | None = None,
             principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """A new personal link to the person's own view (shown once)."""
    from utfall.care import CareError
    from utfall.care.own_view import issue_own_view_link

    request.state.person_key = person_key
    csrf_checked(request, principal)
    try:
        with request.app.state.engine.begin() as conn:
            token = issue_own_view_link(conn, principal.actor, person_key,
                                        valid_days=(body or OwnLinkIn()).valid_days)
    except CareError as exc:
        return _error(exc)
    return {"token": token, "path": f"/min/{token}"}


@router.delete("/persons/{person_key}/own-view-links", responses=UNAUTH, tags=["persons"])
def revoke_own_links(person_key: PersonKey, request: Request,
                     principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Block every own-view link of the person at once."""
    from utfall.care.own_view import revoke_own_view_links

    request.state.person_key = person_key
    csrf_checked(request, principal)
    with request.app.state.engine.begin() as conn:
        return {"revoked": revoke_own_view_links(conn, principal.actor, person_key)}


@router.get("/own-view/{token}", tags=["self-report"],
            responses={404: {"description": "unknown, revoked or expired link"}})
def own_view(token: Annotated[str, Path(max_length=400)], request: Request) -> Any:
    """The person's own view (the personal link is the credential)."""
    from utfall.care import CareError
    from utfall.care.own_view import open_own_view

    try:
        with request.app.state.engine.begin() as conn:
            view = open_own_view(conn, token)
    except (CareError, AccessDenied):
        raise HTTPException(404, "link not valid") from None
    return {"unit_name": view.unit_name, "series": services.plain(view.series),
            "profile": services.plain(view.profile),
            "goals": [goal_json(g) for g in view.goals]}
