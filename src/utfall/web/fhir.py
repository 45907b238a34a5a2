"""FHIR R4 API under ``/fhir`` (JSON, ``application/fhir+json``).

A sub-application mounted by ``utfall.web.app`` so its error handlers answer every
error – 401, 403, 404, invalid input, server errors – as an ``OperationOutcome``
without touching the rest of the app. Authentication (session cookie + CSRF header
on writes, or ``Authorization: Bearer``), roles, care relations, consent and audit
are exactly those of ``/api/``: the same dependencies and the same care/access
use-case functions. Resources are built in ``utfall.interop.fhir``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from utfall.access.policy import AccessDenied
from utfall.interop.fhir import service
from utfall.interop.fhir.capability import capability_statement
from utfall.interop.fhir.common import (
    MEDIA_TYPE,
    FhirError,
    operation_outcome,
    searchset,
    validated,
)
from utfall.web.deps import csrf_checked, needs_role
from utfall.web.security import CsrfFailed, NotAuthenticated, Principal

log = logging.getLogger("utfall.web")
router = APIRouter()
CARE = ("clinician", "social_worker", "unit_manager")
RECORDERS = ("clinician", "social_worker")
AGGREGATES = ("analyst", "unit_manager")
FhirId = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


class FhirResponse(JSONResponse):
    media_type = MEDIA_TYPE


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _patient(request: Request, patient: str | None, subject: str | None = None) -> str:
    """The person key of a ``patient``/``subject`` search parameter."""
    value = patient or subject
    if not value:
        raise FhirError(400, "required", "search parameter 'patient' is required",
                        "sökparametern 'patient' krävs", ["patient"])
    key = value.removeprefix("Patient/")
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise FhirError(404, "not-found", "unknown Patient", "okänd patient", ["patient"])
    request.state.person_key = key  # refusals are logged against the person
    return key


def _key_of_subject(request: Request, resource: Any) -> None:
    """Remember the subject's person key (a refusal is then logged against it)."""
    subject = resource.get("subject") if isinstance(resource, dict) else None
    ref = subject.get("reference") if isinstance(subject, dict) else None
    key = ref.removeprefix("Patient/") if isinstance(ref, str) else ""
    valid = len(key) == 64 and all(c in "0123456789abcdef" for c in key)
    request.state.person_key = key if valid else None


def _bundle(request: Request, resources: list[dict[str, Any]]) -> FhirResponse:
    return FhirResponse(searchset(resources, _base(request)))


def _one(items: list[dict[str, Any]], ident: str) -> FhirResponse:
    for item in items:
        if item["id"] == ident:
            return FhirResponse(item)
    raise FhirError(404, "not-found", "unknown resource id", "okänd resurs")


# ------------------------------------------------------------------ content


@router.get("/metadata")
def metadata(request: Request) -> FhirResponse:
    """The CapabilityStatement (public)."""
    from utfall import __version__

    return FhirResponse(capability_statement(_base(request), str(__version__)))


@router.get("/Questionnaire")
def questionnaires(request: Request, url: str | None = Query(default=None, max_length=300)
                   ) -> FhirResponse:
    """Every instrument as a Questionnaire (public content, no personal data)."""
    from utfall.instruments import default_registry
    from utfall.interop.fhir.questionnaire import build_questionnaire

    found = [build_questionnaire(d) for d in default_registry()]
    if url:
        found = [q for q in found if q["url"] == url.partition("|")[0]]
    return _bundle(request, found)


@router.get("/Questionnaire/{ident}")
def questionnaire(ident: FhirId) -> FhirResponse:
    """One instrument as a Questionnaire."""
    from utfall.instruments import UnknownInstrumentError, get_instrument
    from utfall.interop.fhir.questionnaire import build_questionnaire

    try:
        return FhirResponse(build_questionnaire(get_instrument(ident)))
    except UnknownInstrumentError:
        raise FhirError(404, "not-found", "unknown Questionnaire", "okänt formulär") from None


# ------------------------------------------------------------------ answers and scores


@router.post("/QuestionnaireResponse", status_code=201)
async def response_create(request: Request,
                          principal: Principal = Depends(needs_role(*RECORDERS))
                          ) -> FhirResponse:
    """Store a QuestionnaireResponse as a scored, flagged, audited assessment."""
    csrf_checked(request, principal)
    resource = await _json_body(request)
    _key_of_subject(request, resource)
    with request.app.state.engine.begin() as conn:
        ident, stored = service.record_response(conn, principal.actor, principal.unit_id,
                                                resource)
    return FhirResponse(stored, status_code=201, headers={
        "Location": f"{_base(request)}/QuestionnaireResponse/{ident}"})


@router.get("/QuestionnaireResponse")
def responses(request: Request,
              patient: str | None = Query(default=None, max_length=80),
              subject: str | None = Query(default=None, max_length=80),
              principal: Principal = Depends(needs_role(*CARE))) -> FhirResponse:
    """A person's QuestionnaireResponses (consent-filtered, audited)."""
    key = _patient(request, patient, subject)
    with request.app.state.engine.begin() as conn:
        return _bundle(request, service.responses(conn, principal.actor, key))


@router.get("/QuestionnaireResponse/{ident}")
def response_read(ident: FhirId, request: Request,
                  principal: Principal = Depends(needs_role(*CARE))) -> FhirResponse:
    with request.app.state.engine.begin() as conn:
        key = service.person_of_assessment(conn, ident)
        request.state.person_key = key
        return _one(service.responses(conn, principal.actor, key), ident)


@router.get("/Observation")
def observations(request: Request,
                 patient: str | None = Query(default=None, max_length=80),
                 subject: str | None = Query(default=None, max_length=80),
                 code: str | None = Query(default=None, max_length=200),
                 principal: Principal = Depends(needs_role(*CARE))) -> FhirResponse:
    """Score Observations (total, subscales, band, flags) of a person."""
    key = _patient(request, patient, subject)
    with request.app.state.engine.begin() as conn:
        return _bundle(request, service.observations(conn, principal.actor, key, code))


@router.get("/Observation/{ident}")
def observation_read(ident: FhirId, request: Request,
                     principal: Principal = Depends(needs_role(*CARE))) -> FhirResponse:
    with request.app.state.engine.begin() as conn:
        key = service.person_of_assessment(conn, ident, observation=True)
        request.state.person_key = key
        return _one(service.observations(conn, principal.actor, key), ident)


# ------------------------------------------------------------------ person, care, consent


@router.get("/Patient/{ident}")
def patient_read(ident: FhirId, request: Request,
                 principal: Principal = Depends(needs_role(*CARE))) -> FhirResponse:
    """The person with the Swedish identifier (callers with access only; audited)."""
    key = _patient(request, ident)
    with request.app.state.engine.begin() as conn:
        return FhirResponse(service.patient(conn, principal.actor, key))


@router.get("/EpisodeOfCare")
def episodes(request: Request, patient: str | None = Query(default=None, max_length=80),
             principal: Principal = Depends(needs_role(*CARE))) -> FhirResponse:
    """Enrolments with their phase histories (LARO phases)."""
    key = _patient(request, patient)
    with request.app.state.engine.begin() as conn:
        return _bundle(request, service.episodes(conn, principal.actor, key))


@router.get("/EpisodeOfCare/{ident}")
def episode_read(ident: FhirId, request: Request,
                 principal: Principal = Depends(needs_role(*CARE))) -> FhirResponse:
    with request.app.state.engine.begin() as conn:
        key = service.person_of_enrolment(conn, ident)
        request.state.person_key = key
        return _one(service.episodes(conn, principal.actor, key), ident)


@router.get("/Consent")
def consents(request: Request, patient: str | None = Query(default=None, max_length=80),
             principal: Principal = Depends(needs_role(*CARE))) -> FhirResponse:
    """Cross-principal consents involving the caller's organisation."""
    key = _patient(request, patient)
    with request.app.state.engine.begin() as conn:
        return _bundle(request, service.consents(conn, principal.actor, key))


@router.get("/Consent/{ident}")
def consent_read(ident: FhirId, request: Request,
                 principal: Principal = Depends(needs_role(*CARE))) -> FhirResponse:
    with request.app.state.engine.begin() as conn:
        key = service.person_of_consent(conn, ident)
        request.state.person_key = key
        return _one(service.consents(conn, principal.actor, key), ident)


# ------------------------------------------------------------------ indicators


def _reports(request: Request) -> dict[str, dict[str, Any]]:
    from utfall.analytics.runs import read_stored_run
    from utfall.interop.fhir.measure import measure_reports
    from utfall.web.services import indicator_titles

    run = read_stored_run()  # the latest stored run: never computed inside a request
    if run is None:
        return {}
    table = run.results
    meta = {k.decode().removeprefix("utfall."): v.decode()
            for k, v in (table.schema.metadata or {}).items()
            if k.decode().startswith("utfall.")}
    return measure_reports(table.to_pylist(), indicator_titles(), meta)


@router.get("/MeasureReport")
def measure_reports(request: Request,
                    measure: str | None = Query(default=None, max_length=200),
                    period: str | None = Query(default=None, max_length=20),
                    principal: Principal = Depends(needs_role(*AGGREGATES))) -> FhirResponse:
    """Indicator results as summary MeasureReports (disclosure-controlled only)."""
    found = list(_reports(request).values())
    if measure:
        found = [r for r in found if r["measure"] == measure
                 or r["measure"].rsplit("/", 1)[-1] == measure]
    if period:
        found = [r for r in found if r["period"].get("start", "").startswith(period)
                 and r["period"].get("end", "").startswith(period)]
    return _bundle(request, found)


@router.get("/MeasureReport/{ident}")
def measure_report(ident: FhirId, request: Request,
                   principal: Principal = Depends(needs_role(*AGGREGATES))) -> FhirResponse:
    report = _reports(request).get(ident)
    if report is None:
        raise FhirError(404, "not-found", "unknown MeasureReport", "okänd MeasureReport")
    return FhirResponse(report)


# ------------------------------------------------------------------ transaction


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise FhirError(400, "structure", "the body is not JSON",
                        "innehållet är inte JSON") from None


@router.post("/")
async def transaction(request: Request,
                      principal: Principal = Depends(needs_role(*RECORDERS))) -> FhirResponse:
    """A transaction Bundle of QuestionnaireResponse creates: all stored or none."""
    csrf_checked(request, principal)
    bundle = await _json_body(request)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or \
            bundle.get("type") != "transaction":
        raise FhirError(400, "structure", "expected a transaction Bundle",
                        "en transaktions-Bundle förväntades")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise FhirError(400, "structure", "Bundle.entry must be a list of entries",
                        "Bundle.entry ska vara en lista av poster", ["Bundle.entry"])
    for n, entry in enumerate(entries):
        req = entry.get("request") or {}
        resource = entry.get("resource") or {}
        if req.get("method") != "POST" or resource.get("resourceType") != \
                "QuestionnaireResponse" or str(req.get("url", "")).strip("/") != \
                "QuestionnaireResponse":
            raise FhirError(422, "not-supported",
                            f"entry {n}: only POST QuestionnaireResponse is supported",
                            f"post {n}: bara POST QuestionnaireResponse stöds",
                            [f"Bundle.entry[{n}]"])
    out = []
    with request.app.state.engine.begin() as conn:  # one transaction: all or nothing
        for n, entry in enumerate(entries):
            _key_of_subject(request, entry["resource"])
            try:
                ident, stored = service.record_response(conn, principal.actor,
                                                         principal.unit_id, entry["resource"])
            except FhirError as exc:
                exc.en = f"entry {n}: {exc.en}"
                raise
            out.append({"fullUrl": f"{_base(request)}/QuestionnaireResponse/{ident}",
                        "resource": stored,
                        "response": {"status": "201 Created",
                                     "location": f"QuestionnaireResponse/{ident}"}})
    return FhirResponse(validated({"resourceType": "Bundle", "type": "transaction-response",
                                   "entry": out}))


# ------------------------------------------------------------------ application


def _outcome(status: int, code: str, en: str, sv: str | None = None,
             headers: dict[str, str] | None = None, **kw: Any) -> Response:
    return FhirResponse(operation_outcome(status, code, en, sv, **kw), status_code=status,
                        headers=headers)


def create_fhir_app(parent: FastAPI) -> FastAPI:
    """The ``/fhir`` sub-application sharing the parent's state (store, settings)."""
    sub = FastAPI(title="Utfall FHIR R4", openapi_url=None, docs_url=None, redoc_url=None)
    sub.state = parent.state
    sub.include_router(router)

    @sub.exception_handler(NotAuthenticated)
    async def not_authenticated(_request: Request, _exc: NotAuthenticated) -> Response:
        return _outcome(401, "login", "not authenticated", "inte inloggad",
                        headers={"WWW-Authenticate": "Bearer"})

    @sub.exception_handler(CsrfFailed)
    async def csrf_failed(_request: Request, _exc: CsrfFailed) -> Response:
        return _outcome(403, "forbidden", "missing or invalid CSRF token",
                        "CSRF-token saknas eller är ogiltig")

    @sub.exception_handler(AccessDenied)
    async def access_denied(request: Request, exc: AccessDenied) -> Response:
        from utfall.web.app import _log_denial

        _log_denial(request, exc)
        status = getattr(exc, "status", 403)
        return _outcome(status, "not-found" if status == 404 else "forbidden", exc.en, exc.sv)

    @sub.exception_handler(FhirError)
    async def fhir_error(_request: Request, exc: FhirError) -> Response:
        return _outcome(exc.status, exc.code, exc.en, exc.sv, expression=exc.expression,
                        issues=exc.issues)

    @sub.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(
            exc.status_code, "processing")
        return _outcome(exc.status_code, code, str(exc.detail), headers=getattr(
            exc, "headers", None))

    @sub.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        where = [".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()][:20]
        return _outcome(400, "invalid", "invalid request parameters",
                        "ogiltiga parametrar", expression=where)

    @sub.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        from utfall.web.security import apply_security_headers

        log.exception("unhandled error on %s %s", request.method, request.url.path,
                      exc_info=exc)
        return apply_security_headers(request, _outcome(500, "exception", "internal error",
                                                        "internt fel"))

    return sub
