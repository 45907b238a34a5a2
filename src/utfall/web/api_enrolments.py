"""JSON API of the person overview and of phase changes and discharge.

``GET /api/persons/{person_key}/overview`` (care roles), ``POST
/api/enrolments/{enrolment_id}/phase`` and ``…/discharge`` (clinician, social worker).
Access and audit happen in the use cases (:mod:`utfall.care.overview`,
:mod:`utfall.care.phases`); a forbidden transition answers 409 with the allowed phases,
invalid input 422 with ``issues``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from utfall.web.api_bodies import body_schema, invalid_body
from utfall.web.deps import csrf_checked, needs_role
from utfall.web.security import Principal

router = APIRouter(prefix="/api")
CARE = ("clinician", "social_worker", "unit_manager")
RECORDERS = ("clinician", "social_worker")
PersonKey = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="pseudonymous person key")]
EnrolmentId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="enrolment id")]
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid session or token"},
    403: {"description": "Role, or an enrolment of another organisation"},
    404: {"description": "No such enrolment, or no care relation with the person"},
    409: {"description": "Transition not allowed: `detail` and the `allowed` phases"},
    422: {"description": "Invalid input: `issues` name the field"}}


class PhaseIn(BaseModel):
    """A phase change: the target phase, its date and the data its entry checks need."""

    model_config = ConfigDict(extra="forbid")

    phase: str = Field(min_length=1, max_length=40)
    date: dt.date | None = Field(default=None, description="default: today (Stockholm)")
    facts: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = Field(default=None, max_length=2000)


class DischargeIn(BaseModel):
    """A discharge: date, end reason and the data it requires (e.g. ``medical_ground``)."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date | None = Field(default=None, description="default: today (Stockholm)")
    end_reason: str = Field(min_length=1, max_length=40)
    facts: dict[str, Any] = Field(default_factory=dict)
    note: str | None = Field(default=None, max_length=2000)
    municipal_unit_id: str | None = Field(
        default=None, max_length=64,
        description="municipal unit that takes over the post-discharge follow-up")


def _refusal(exc: Any) -> JSONResponse:
    """A ``CareError`` as JSON: 409 (with ``allowed``), 404 or 422 with ``issues``."""
    from utfall.care.phases import PhaseRefused

    issues = [{"where": i.where, "code": i.code, "sv": i.sv, "en": i.en}
              for i in getattr(exc, "issues", [])]
    body: dict[str, Any] = {"detail": exc.sv, "code": exc.code, "sv": exc.sv, "en": exc.en,
                            "issues": issues}
    if isinstance(exc, PhaseRefused):
        body["allowed"] = [a.id for a in exc.allowed]
        body["allowed_names"] = [a.name.model_dump() for a in exc.allowed]
        return JSONResponse(body, status_code=409)
    # an unknown enrolment is 404; an unknown unit named in the body is invalid input
    status = 404 if type(exc).__name__ == "NotFound" and not issues else 422
    return JSONResponse(body, status_code=status)


def _today() -> dt.date:
    from utfall.followup import local_today

    return local_today()


def _keyed(request: Request, conn: Any, enrolment_id: str) -> None:
    """Remember the enrolment's person for the audit of a refusal (raises NotFound)."""
    from utfall.care.phases import enrolment_person

    request.state.person_key = enrolment_person(conn, enrolment_id)


@router.get("/persons/{person_key}/overview", responses=RESPONSES, tags=["persons"])
def overview(person_key: PersonKey, request: Request,
             principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """The person overview: full identity number, programmes with phase and next due
    stage, latest score per instrument, open flags, consent, responsible per principal."""
    from utfall.care.overview import overview_json, person_overview

    request.state.person_key = person_key
    with request.app.state.engine.begin() as conn:
        view = person_overview(conn, principal.actor, person_key)
    return overview_json(view)


@router.post("/enrolments/{enrolment_id}/phase", responses=RESPONSES, tags=["enrolments"],
             openapi_extra=body_schema(PhaseIn))
def phase(enrolment_id: EnrolmentId, request: Request,
          body: Annotated[Any, Body()] = None,
          principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Move the enrolment to another phase (allowed transition, entry checks pass);
    200 with the enrolment, 409 with ``allowed`` for a forbidden transition."""
    from utfall.care import CareError
    from utfall.care.phases import set_phase

    csrf_checked(request, principal)
    try:
        data = PhaseIn.model_validate(body if body is not None else {})
    except ValidationError as exc:
        return invalid_body(exc)
    try:
        with request.app.state.engine.begin() as conn:
            _keyed(request, conn, enrolment_id)
            view = set_phase(conn, principal.actor, enrolment_id, data.phase,
                             on_date=data.date or _today(), facts=data.facts,
                             reason=data.reason)
    except CareError as exc:
        return _refusal(exc)
    return view.as_json()


@router.post("/enrolments/{enrolment_id}/discharge", responses=RESPONSES, tags=["enrolments"],
             openapi_extra=body_schema(DischargeIn))
def discharge(enrolment_id: EnrolmentId, request: Request,
              body: Annotated[Any, Body()] = None,
              principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """End the enrolment with an end reason (and the data it requires); schedules the
    post-discharge stages. 200 with the enrolment."""
    from utfall.care import CareError
    from utfall.care.phases import discharge as discharge_enrolment

    csrf_checked(request, principal)
    try:
        data = DischargeIn.model_validate(body if body is not None else {})
    except ValidationError as exc:
        return invalid_body(exc)
    try:
        with request.app.state.engine.begin() as conn:
            _keyed(request, conn, enrolment_id)
            view = discharge_enrolment(
                conn, principal.actor, enrolment_id, on_date=data.date or _today(),
                end_reason=data.end_reason, facts=data.facts, note=data.note,
                municipal_unit_id=data.municipal_unit_id)
    except CareError as exc:
        return _refusal(exc)
    return view.as_json()
