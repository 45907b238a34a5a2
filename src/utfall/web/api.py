"""JSON API under ``/api/`` (OpenAPI at ``/api/openapi.json``).

Every route returning or changing personal data needs a session (401 otherwise) and
answers 403 outside the caller's scope (role, unit, consent). Identity numbers are
only ever sent in request bodies, never in URLs.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from utfall.access.accounts import LoginFailed, authenticate_local
from utfall.access.consent import (
    ConsentError,
    consents_view,
    record_consent,
    revoke_consent,
)
from utfall.access.extracts import access_log_for, review_sample
from utfall.access.policy import CATEGORIES, AccessDenied
from utfall.access.review import OUTCOMES, list_reviews, record_review
from utfall.access.sessions import create_session, revoke_session
from utfall.web import services
from utfall.web.deps import csrf_checked, current_principal, needs_role
from utfall.web.security import Principal, client_of, token_of

router = APIRouter(prefix="/api")
CARE = ("clinician", "social_worker", "unit_manager")
RECORDERS = ("clinician", "social_worker")
PersonKey = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="pseudonymous person key")]

UNAUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid session or token"},
    403: {"description": "Outside the caller's scope (role, unit or consent)"}}


class Problem(BaseModel):
    """A refused input: where and why (Swedish and English)."""

    where: str | None = None
    sv: str
    en: str


def _care_error(exc: Any) -> JSONResponse:
    issues = [{"where": i.where, "code": i.code, "sv": i.sv, "en": i.en}
              for i in getattr(exc, "issues", [])]
    status = 404 if type(exc).__name__ in ("NotFound", "SelfReportRefused") else 422
    return JSONResponse({"detail": exc.en, "code": exc.code, "sv": exc.sv, "en": exc.en,
                         "issues": issues}, status_code=status)


def _keyed(request: Request, person_key: str) -> None:
    request.state.person_key = person_key


# ------------------------------------------------------------------ session


class LoginIn(BaseModel):
    username: str = Field(max_length=100)
    password: str = Field(max_length=1000)
    unit_id: str | None = Field(default=None, max_length=64)


class SessionOut(BaseModel):
    token: str
    csrf_token: str | None = None
    user: str
    role: str
    unit_id: str | None
    units: list[str]


@router.post("/session", response_model=SessionOut, responses={401: {"description": "refused"}},
             tags=["session"])
def api_login(body: LoginIn, request: Request) -> Any:
    """Log in; returns a bearer token (send as ``Authorization: Bearer …``)."""
    engine = request.app.state.engine
    with engine.begin() as conn:  # failed attempts are recorded (committed) too
        code: str | None
        try:
            account = authenticate_local(conn, body.username, body.password, client_of(request))
        except LoginFailed as failed:
            code = failed.code
        else:
            code = None
            unit = body.unit_id if body.unit_id in account.units else (
                account.units[0] if account.units else None)
            token = create_session(conn, account.id, unit)
    if code is not None:
        return JSONResponse({"detail": code}, status_code=401)
    return SessionOut(token=token, user=account.username, role=account.role, unit_id=unit,
                      units=list(account.units))


@router.delete("/session", responses=UNAUTH, tags=["session"])
def api_logout(request: Request, principal: Principal = Depends(csrf_checked)) -> dict[str, str]:
    """End the current session."""
    token, _via = token_of(request)
    with request.app.state.engine.begin() as conn:
        revoke_session(conn, token)
    return {"status": "logged out"}


@router.get("/me", responses=UNAUTH, tags=["session"])
def me(principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Who is logged in, in which unit."""
    return {"user": principal.account.username, "role": principal.role,
            "unit_id": principal.unit_id, "units": list(principal.account.units),
            "csrf_token": principal.session.csrf_token if principal.via == "cookie" else None}


# ------------------------------------------------------------------ content


@router.get("/instruments", tags=["content"])
def instruments() -> list[dict[str, Any]]:
    """Instrument ids and titles (no personal data)."""
    return [{"id": d.id, "version": d.version, "title": d.title.model_dump()}
            for d in services.instruments()]


@router.get("/instruments/{instrument_id}", tags=["content"])
def instrument(instrument_id: Annotated[str, Path(max_length=40)]) -> dict[str, Any]:
    """One instrument definition (items, answer options, sv/en texts)."""
    from utfall.instruments import UnknownInstrumentError, get_instrument

    try:
        return get_instrument(instrument_id).model_dump(mode="json")
    except UnknownInstrumentError:
        raise HTTPException(404, "unknown instrument") from None


# ------------------------------------------------------------------ persons


class IdentityIn(BaseModel):
    identity_number: str = Field(max_length=20, description="personnummer/samordningsnummer")


class RegisterIn(IdentityIn):
    municipality_code: str | None = Field(default=None, max_length=4)


@router.post("/persons/search", responses=UNAUTH, tags=["persons"])
def search(body: IdentityIn, request: Request,
           principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """Find a person by identity number; returns the person key or 404."""
    from utfall.care import CareError, find_person
    from utfall.care.persons import key_of

    csrf_checked(request, principal)
    try:
        request.state.person_key = key_of(body.identity_number)
        with request.app.state.engine.begin() as conn:
            key = find_person(conn, principal.actor, body.identity_number)
    except CareError as exc:
        return _care_error(exc)
    if key is None:
        raise HTTPException(404, "no such person")
    return {"person_key": key}


@router.post("/persons", status_code=201, responses=UNAUTH, tags=["persons"])
def register(body: RegisterIn, request: Request,
             principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Register a person (or return the existing one's key)."""
    from utfall.care import CareError, register_person
    from utfall.care.persons import key_of

    csrf_checked(request, principal)
    try:
        request.state.person_key = key_of(body.identity_number)  # refusals are logged
        with request.app.state.engine.begin() as conn:
            key = register_person(conn, principal.actor, body.identity_number, None,
                                  body.municipality_code)
    except CareError as exc:
        return _care_error(exc)
    return {"person_key": key}


@router.get("/persons/{person_key}/timeline", responses=UNAUTH, tags=["persons"])
def timeline(person_key: PersonKey, request: Request,
             principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """The person's timeline: own organisation's data plus consented categories."""
    from utfall.care import CareError

    _keyed(request, person_key)
    try:
        with request.app.state.engine.begin() as conn:
            tl, _entries, _hidden = services.person_timeline(conn, principal.actor, person_key)
    except CareError as exc:
        return _care_error(exc)
    return Response(tl.model_dump_json(), media_type="application/json")


class AssessmentIn(BaseModel):
    instrument: str = Field(max_length=40)
    answers: dict[str, int | str | None]
    on_date: dt.date | None = None
    stage: str | None = Field(default=None, max_length=40)
    enrolment_id: str | None = Field(default=None, max_length=40)


@router.post("/persons/{person_key}/assessments", status_code=201, responses=UNAUTH,
             tags=["persons"])
def assessment(person_key: PersonKey, body: AssessmentIn, request: Request,
               principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Record an assessment at the caller's unit (answers by item linkId)."""
    from utfall.care import CareError, record_assessment

    _keyed(request, person_key)
    csrf_checked(request, principal)
    on_date = body.on_date or services.today()
    if on_date > services.today() or on_date < dt.date(1900, 1, 1):
        return JSONResponse({"detail": "invalid date", "issues": [
            {"where": "on_date", "code": "bad_date", "sv": "ogiltigt datum",
             "en": "invalid date"}]}, status_code=422)
    try:
        with request.app.state.engine.begin() as conn:
            assessment_id = record_assessment(
                conn, principal.actor, person_key, body.instrument, body.answers,
                stage=body.stage, enrolment_id=body.enrolment_id, unit_id=str(principal.unit_id),
                on_date=on_date, source="capture")
    except CareError as exc:
        return _care_error(exc)
    return {"assessment_id": assessment_id}


class EnrolIn(BaseModel):
    programme: str = Field(max_length=40)
    start_date: dt.date
    responsible_worker: str | None = Field(default=None, max_length=100)
    municipal_unit_id: str | None = Field(default=None, max_length=64)
    facts: dict[str, Any] = Field(default_factory=dict)


@router.post("/persons/{person_key}/enrolments", status_code=201, responses=UNAUTH,
             tags=["persons"])
def enrolment(person_key: PersonKey, body: EnrolIn, request: Request,
              principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Enrol the person in a programme at the caller's unit."""
    from utfall.care import CareError, enrol

    _keyed(request, person_key)
    csrf_checked(request, principal)
    if abs((body.start_date - services.today()).days) > 36500:
        return JSONResponse({"detail": "invalid date"}, status_code=422)
    try:
        with request.app.state.engine.begin() as conn:
            enrolment_id = enrol(conn, principal.actor, person_key, body.programme,
                                 str(principal.unit_id), body.start_date,
                                 responsible_worker=body.responsible_worker,
                                 municipal_unit_id=body.municipal_unit_id, facts=body.facts)
    except CareError as exc:
        return _care_error(exc)
    return {"enrolment_id": enrolment_id}


@router.get("/persons/{person_key}/access-log", responses=UNAUTH, tags=["persons"])
def access_log(person_key: PersonKey, request: Request,
               principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """Who accessed the person's data (the person's right to an extract)."""
    _keyed(request, person_key)
    with request.app.state.engine.begin() as conn:
        return access_log_for(conn, principal.actor, person_key)


class SelfReportLinkIn(BaseModel):
    enrolment_id: str = Field(max_length=40)
    stage: str = Field(max_length=40)
    instruments: list[str] | None = None
    locale: Literal["sv", "en"] = "sv"
    valid_days: int = Field(default=14, ge=1, le=90)


@router.post("/persons/{person_key}/self-report-links", status_code=201, responses=UNAUTH,
             tags=["persons"])
def self_report_link(person_key: PersonKey, body: SelfReportLinkIn, request: Request,
                     principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Issue a single-use self-report link for a stage of an enrolment."""
    from utfall.care import CareError, check_person, issue_self_report_link
    from utfall.web.pages.consents import _check_enrolment_person

    _keyed(request, person_key)
    csrf_checked(request, principal)
    try:
        with request.app.state.engine.begin() as conn:
            check_person(conn, principal.actor, person_key, "create")  # 404 before anything
            _check_enrolment_person(conn, body.enrolment_id, person_key)
            token = issue_self_report_link(conn, principal.actor, body.enrolment_id, body.stage,
                                           valid_days=body.valid_days,
                                           instruments=body.instruments, locale=body.locale)
            from utfall.messaging.invitations import remember_link  # QR code and sending

            link_id = remember_link(conn, principal.actor, token, str(request.base_url))
    except CareError as exc:
        return _care_error(exc)
    return {"token": token, "url": str(request.base_url).rstrip("/") + f"/r/{token}",
            "link_id": link_id}


# ------------------------------------------------------------------ consents


class ConsentIn(BaseModel):
    to_organisation_id: int = Field(ge=1, le=2**31 - 1)
    categories: list[str] = Field(min_length=1, max_length=len(CATEGORIES))
    valid_from: dt.date
    valid_to: dt.date | None = None
    form: Literal["written", "oral"] = "written"
    note: str | None = Field(default=None, max_length=1000)


@router.get("/persons/{person_key}/consents", responses=UNAUTH, tags=["consent"])
def consents(person_key: PersonKey, request: Request,
             principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """Consents and SIP plans of the person involving the caller's organisation."""
    _keyed(request, person_key)
    with request.app.state.engine.begin() as conn:
        return consents_view(conn, principal.actor, person_key)


@router.post("/persons/{person_key}/consents", status_code=201, responses=UNAUTH,
             tags=["consent"])
def consent_create(person_key: PersonKey, body: ConsentIn, request: Request,
                   principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """Document the person's consent that the caller's organisation may share data."""
    _keyed(request, person_key)
    csrf_checked(request, principal)
    try:
        with request.app.state.engine.begin() as conn:
            consent_id = record_consent(
                conn, principal.actor, person_key, to_organisation_id=body.to_organisation_id,
                categories=body.categories, valid_from=body.valid_from, valid_to=body.valid_to,
                form=body.form, note=body.note)
    except ConsentError as exc:
        return JSONResponse({"detail": exc.en, "issues": [
            {"where": exc.field, "sv": exc.sv, "en": exc.en}]}, status_code=422)
    return {"consent_id": consent_id}


@router.post("/consents/{consent_id}/revoke", responses=UNAUTH, tags=["consent"])
def consent_revoke(consent_id: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request,
                   principal: Principal = Depends(needs_role(*CARE))) -> dict[str, str]:
    """Revoke a consent; applies from the next request on."""
    csrf_checked(request, principal)
    with request.app.state.engine.begin() as conn:  # relation to the consent's person
        revoke_consent(conn, principal.actor, consent_id)
    return {"status": "revoked"}


# ------------------------------------------------------------------ care relations


class RelationIn(BaseModel):
    unit_id: str = Field(max_length=64)
    basis: Literal["referral", "assignment", "sip"]
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    note: str | None = Field(default=None, max_length=500)


class ReferralIn(IdentityIn):
    note: str = Field(min_length=1, max_length=500)
    valid_to: dt.date | None = None


class EmergencyIn(BaseModel):
    reason: str = Field(min_length=10, max_length=500)


def _relation_error(exc: Any) -> JSONResponse:
    return JSONResponse({"detail": exc.en, "issues": [
        {"where": exc.field, "sv": exc.sv, "en": exc.en}]}, status_code=422)


@router.get("/persons/{person_key}/relations", responses=UNAUTH, tags=["relations"])
def relations(person_key: PersonKey, request: Request,
              principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """The person's care relations at units of the caller's organisation (logged read)."""
    from utfall.access.relations import list_relations

    _keyed(request, person_key)
    with request.app.state.engine.begin() as conn:
        return list_relations(conn, principal.actor, person_key)


@router.post("/persons/{person_key}/relations", status_code=201, responses=UNAUTH,
             tags=["relations"])
def relation_create(person_key: PersonKey, body: RelationIn, request: Request,
                    principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Refer or assign the person to another unit (the caller's unit has the relation)."""
    from utfall.access.relations import RelationError, create_relation

    _keyed(request, person_key)
    csrf_checked(request, principal)
    try:
        with request.app.state.engine.begin() as conn:
            relation_id = create_relation(
                conn, principal.actor, person_key, unit_id=body.unit_id, basis=body.basis,
                valid_from=body.valid_from, valid_to=body.valid_to, note=body.note)
    except RelationError as exc:
        return _relation_error(exc)
    return {"relation_id": relation_id}


@router.post("/relations/referrals", status_code=201, responses=UNAUTH, tags=["relations"])
def referral_accept(body: ReferralIn, request: Request,
                    principal: Principal = Depends(needs_role("unit_manager"))) -> Any:
    """The unit manager accepts a referral to the unit; returns the person key."""
    from utfall.care import CareError, accept_referral

    csrf_checked(request, principal)
    try:
        with request.app.state.engine.begin() as conn:
            key = accept_referral(conn, principal.actor, body.identity_number, note=body.note,
                                  valid_to=body.valid_to)
    except CareError as exc:
        return _care_error(exc)
    return {"person_key": key}


@router.post("/persons/{person_key}/emergency-access", status_code=201, responses=UNAUTH,
             tags=["relations"])
def emergency_access(person_key: PersonKey, body: EmergencyIn, request: Request,
                     principal: Principal = Depends(needs_role("clinician"))) -> Any:
    """Open a 4-hour emergency access (health care, own principal; flagged, reviewed)."""
    from utfall.access.emergency import request_emergency

    _keyed(request, person_key)
    csrf_checked(request, principal)
    with request.app.state.engine.begin() as conn:
        return request_emergency(conn, principal.actor, person_key, body.reason)


@router.get("/emergency-accesses", responses=UNAUTH, tags=["audit"])
def emergency_accesses(request: Request,
                       principal: Principal = Depends(needs_role("unit_manager"))) -> Any:
    """Emergency accesses opened from the manager's unit, for review (logged reads)."""
    from utfall.access.extracts import emergency_review

    with request.app.state.engine.begin() as conn:
        return emergency_review(conn, principal.actor)


# ------------------------------------------------------------------ unit level


# GET /api/worklist (paged, filtered, CSV, assignment): utfall.web.api_worklist


# the dashboard and analytics routes live in utfall.web.api_analytics (stored runs)


class ReviewIn(BaseModel):
    date_from: dt.date
    date_to: dt.date
    every_k: int = Field(default=10, ge=1, le=1000)
    random_n: int = Field(default=5, ge=0, le=200)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    event_ids: list[int] = Field(default_factory=list, max_length=10000)
    findings: str = Field(min_length=1, max_length=5000)
    outcome: Literal["ok", "remarks", "incident"]


@router.get("/audit/sample", responses=UNAUTH, tags=["audit"])
def audit_sample(request: Request, date_from: dt.date, date_to: dt.date,
                 every_k: Annotated[int, Query(ge=1, le=1000)] = 10,
                 random_n: Annotated[int, Query(ge=0, le=200)] = 5,
                 seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
                 principal: Principal = Depends(needs_role("unit_manager"))) -> Any:
    """A reproducible sample of the unit's access log (systematic + random + emergencies)."""
    if (date_to - date_from).days > 3660:
        raise HTTPException(422, "period too long")
    with request.app.state.engine.begin() as conn:  # each person shown is logged as read
        return review_sample(conn, principal.actor, date_from, date_to, every_k=every_k,
                             random_n=random_n, seed=seed)


@router.post("/audit/reviews", status_code=201, responses=UNAUTH, tags=["audit"])
def audit_review(body: ReviewIn, request: Request,
                 principal: Principal = Depends(needs_role("unit_manager"))) -> Any:
    """Store a documented log review."""
    csrf_checked(request, principal)
    assert body.outcome in OUTCOMES
    with request.app.state.engine.begin() as conn:
        review_id = record_review(
            conn, principal.account.username, principal.unit_id, period_from=body.date_from,
            period_to=body.date_to, method={"every_k": body.every_k, "random_n": body.random_n,
                                            "seed": body.seed},
            event_ids=body.event_ids, findings=body.findings, outcome=body.outcome)
    return {"review_id": review_id}


@router.get("/audit/reviews", responses=UNAUTH, tags=["audit"])
def audit_reviews(request: Request,
                  principal: Principal = Depends(needs_role("unit_manager"))) -> Any:
    """Stored reviews of the caller's unit."""
    with request.app.state.engine.connect() as conn:
        return list_reviews(conn, principal.unit_id)


# ------------------------------------------------------------------ self-report


@router.get("/self-report/{token}", tags=["self-report"],
            responses={404: {"description": "unknown, used or expired link"}})
def self_report(token: Annotated[str, Path(max_length=400)], request: Request) -> Any:
    """The questionnaires behind a self-report link (the token is the credential)."""
    from utfall.care import CareError, open_self_report

    try:
        with request.app.state.engine.begin() as conn:
            opened = open_self_report(conn, token)
    except (CareError, AccessDenied):
        raise HTTPException(404, "link not valid") from None
    return {"stage": opened.stage, "stage_title": opened.stage_title.model_dump(),
            "unit_name": opened.unit_name, "locale": opened.locale,  # never the programme
            "expires_at": opened.expires_at.isoformat(),
            "instruments": [d.model_dump(mode="json") for d in opened.instruments]}


class SelfReportIn(BaseModel):
    answers: dict[str, dict[str, int | str | None]]


@router.post("/self-report/{token}", tags=["self-report"],
             responses={404: {"description": "unknown, used or expired link"}})
def self_report_submit(token: Annotated[str, Path(max_length=400)], body: SelfReportIn,
                       request: Request) -> Any:
    """Submit answers per instrument; the link is then used up."""
    from utfall.care import CareError, SelfReportRefused, submit_self_report

    try:
        with request.app.state.engine.begin() as conn:
            ids = submit_self_report(conn, token, body.answers)
    except SelfReportRefused:
        raise HTTPException(404, "link not valid") from None
    except CareError as exc:
        return _care_error(exc)
    except AccessDenied:
        raise HTTPException(404, "link not valid") from None
    return {"assessment_ids": ids}
