"""JSON API of clinical flags, the unit inbox and assessment corrections.

* ``GET /api/inbox`` (care roles): open flags and unseen self-reports of the own unit;
* ``POST /api/flags/{flag_id}/acknowledge`` ``{"note"}`` (clinician, social worker);
* ``GET /api/persons/{person_key}/flags`` (care roles): the person's open flags;
* ``POST /api/self-reports/{assessment_id}/seen`` (care roles): off the inbox;
* ``GET /api/assessments/{assessment_id}/history`` (care roles);
* ``POST /api/assessments/{assessment_id}/correct`` ``{"answers", "reason"}`` and
  ``…/void`` ``{"reason"}`` (clinician, social worker).

Access checks and audit happen in the use cases (:mod:`utfall.care.flags`,
:mod:`utfall.care.inbox`, :mod:`utfall.care.corrections`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from utfall.web.api_bodies import body_schema, invalid_body
from utfall.web.deps import csrf_checked, needs_role
from utfall.web.security import Principal

router = APIRouter(prefix="/api")
CARE = ("clinician", "social_worker", "unit_manager")
RECORDERS = ("clinician", "social_worker")
PersonKey = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="pseudonymous person key")]
AssessmentId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
                                   description="assessment id")]
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid session or token"},
    403: {"description": "Role, unit, or a record of another organisation"},
    404: {"description": "Not found, or outside the caller's scope"},
    422: {"description": "Invalid input: `issues` name the field"}}


class NoteIn(BaseModel):
    """What was done about the flag."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field(max_length=2000)


class CorrectionIn(BaseModel):
    """New answers (all items, as when recording) and why they replace the old ones."""

    model_config = ConfigDict(extra="forbid")
    answers: dict[str, Any]
    reason: str = Field(max_length=2000)


class VoidIn(BaseModel):
    """Why the assessment is voided."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=2000)


def _refusal(exc: Any) -> JSONResponse:
    issues = [{"where": i.where, "code": i.code, "sv": i.sv, "en": i.en}
              for i in getattr(exc, "issues", [])]
    status = 404 if type(exc).__name__ == "NotFound" else 422
    return JSONResponse({"detail": exc.en, "code": exc.code, "sv": exc.sv, "en": exc.en,
                         "issues": issues}, status_code=status)


def _parse(model: type[BaseModel], body: Any) -> BaseModel | JSONResponse:
    try:
        return model.model_validate(body if body is not None else {})
    except ValidationError as exc:
        return invalid_body(exc)


def _assessment_person(request: Request, conn: Any, assessment_id: str) -> None:
    from utfall.store.models import Assessment

    request.state.person_key = conn.execute(select(Assessment.person_key).where(
        Assessment.row_key == assessment_id)).scalar()


@router.get("/inbox", responses=RESPONSES, tags=["flags"])
def inbox(request: Request, principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """Open clinical flags and self-reports not yet seen at the caller's unit."""
    from utfall.care.inbox import unit_inbox

    with request.app.state.engine.begin() as conn:
        return unit_inbox(conn, principal.actor)


@router.post("/flags/{flag_id}/acknowledge", responses=RESPONSES, tags=["flags"],
             openapi_extra=body_schema(NoteIn))
def acknowledge(flag_id: Annotated[int, Path(ge=1, le=2**62)], request: Request,
                body: Annotated[Any, Body()] = None,
                principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Close an open flag with a note on what was done (audited)."""
    from utfall.care import CareError
    from utfall.care.flags import acknowledge_flag
    from utfall.store.models_flags import CareFlag

    csrf_checked(request, principal)
    data = _parse(NoteIn, body)
    if isinstance(data, JSONResponse):
        return data
    assert isinstance(data, NoteIn)
    try:
        with request.app.state.engine.begin() as conn:
            request.state.person_key = conn.execute(select(CareFlag.person_key).where(
                CareFlag.id == flag_id)).scalar()
            return acknowledge_flag(conn, principal.actor, flag_id, data.note)
    except CareError as exc:
        return _refusal(exc)


@router.get("/persons/{person_key}/flags", responses=RESPONSES, tags=["flags"])
def person_flags(person_key: PersonKey, request: Request,
                 principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """The person's open flags the caller may see (audited read)."""
    from utfall.care.flags import person_open_flags

    request.state.person_key = person_key
    with request.app.state.engine.begin() as conn:
        return {"flags": person_open_flags(conn, principal.actor, person_key)}


@router.post("/self-reports/{assessment_id}/seen", responses=RESPONSES, tags=["flags"])
def seen(assessment_id: AssessmentId, request: Request,
         principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """Mark a self-report of the caller's unit as seen (it leaves the inbox)."""
    from utfall.care import CareError
    from utfall.care.inbox import mark_self_report_seen

    csrf_checked(request, principal)
    try:
        with request.app.state.engine.begin() as conn:
            _assessment_person(request, conn, assessment_id)
            return mark_self_report_seen(conn, principal.actor, assessment_id)
    except CareError as exc:
        return _refusal(exc)


@router.get("/assessments/{assessment_id}/history", responses=RESPONSES, tags=["assessments"])
def history(assessment_id: AssessmentId, request: Request,
            principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """The current version, earlier versions (who, when, why), void and flags."""
    from utfall.care import CareError
    from utfall.care.corrections import assessment_history

    try:
        with request.app.state.engine.begin() as conn:
            _assessment_person(request, conn, assessment_id)
            return assessment_history(conn, principal.actor, assessment_id)
    except CareError as exc:
        return _refusal(exc)


def _change(request: Request, principal: Principal, assessment_id: str,
            model: type[BaseModel], body: Any, apply: Any) -> Any:
    """A checked body, then ``apply(conn, data)`` on the assessment in one transaction;
    a ``CareError`` becomes its JSON refusal."""
    from utfall.care import CareError

    csrf_checked(request, principal)
    data = _parse(model, body)
    if isinstance(data, JSONResponse):
        return data
    try:
        with request.app.state.engine.begin() as conn:
            _assessment_person(request, conn, assessment_id)
            return apply(conn, data)
    except CareError as exc:
        return _refusal(exc)


@router.post("/assessments/{assessment_id}/correct", responses=RESPONSES, tags=["assessments"],
             openapi_extra=body_schema(CorrectionIn))
def correct(assessment_id: AssessmentId, request: Request,
            body: Annotated[Any, Body()] = None,
            principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Replace the answers (re-scored, flags re-evaluated); the old version is kept."""
    from utfall.care.corrections import correct_assessment

    return _change(request, principal, assessment_id, CorrectionIn, body,
                   lambda conn, data: correct_assessment(conn, principal.actor, assessment_id,
                                                         data.answers, data.reason))


@router.post("/assessments/{assessment_id}/void", responses=RESPONSES, tags=["assessments"],
             openapi_extra=body_schema(VoidIn))
def void(assessment_id: AssessmentId, request: Request,
         body: Annotated[Any, Body()] = None,
         principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Void the assessment with a reason: kept in its history, left out of indicators."""
    from utfall.care.corrections import void_assessment

    return _change(request, principal, assessment_id, VoidIn, body,
                   lambda conn, data: void_assessment(conn, principal.actor, assessment_id,
                                                      data.reason))
