"""Server-rendered pages (Jinja2; plain forms with a little progressive enhancement)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from utfall.access.consent import (
    ConsentError,
    consents_view,
    create_sip,
    record_consent,
    revoke_consent,
)
from utfall.access.extracts import access_log_for, review_overview
from utfall.access.policy import CATEGORIES, AccessDenied, actor_organisation
from utfall.access.review import OUTCOMES, record_review
from utfall.access.sessions import switch_unit
from utfall.domain.identity import IdentityNumberError, parse_identity_number
from utfall.i18n import t
from utfall.store.db import is_unavailable
from utfall.web import health, services
from utfall.web.deps import as_list, checked_form, current_principal, form_data, needs_role
from utfall.web.render import locale_of, render
from utfall.web.security import (
    LANG_COOKIE,
    Principal,
    set_cookie,
)

router = APIRouter(include_in_schema=False)
CARE = ("clinician", "social_worker", "unit_manager")
PERSON_KEY_LEN = 64


def _text(key: str, locale: str) -> str:
    """A message in ``locale``."""
    return t(key, locale)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(target: str | None) -> str:
    """Only local paths (no open redirects)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _home(principal: Principal) -> str:
    return {"clinician": "/worklist", "social_worker": "/worklist", "unit_manager": "/dashboard",
            "analyst": "/analytics", "admin": "/admin/users"}.get(principal.role, "/")


def _date(value: Any, default: dt.date | None = None) -> dt.date | None:
    if value in (None, ""):
        return default
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def _check_key(request: Request, person_key: str) -> None:
    from fastapi import HTTPException

    if len(person_key) != PERSON_KEY_LEN or not all(c in "0123456789abcdef" for c in person_key):
        raise HTTPException(404)
    request.state.person_key = person_key


def _care_error_fields(exc: Any, locale: str) -> tuple[str, dict[str, str]]:
    """Summary and field-level messages of a CareError."""
    summary = exc.en if locale == "en" else exc.sv
    fields: dict[str, str] = {}
    for issue in getattr(exc, "issues", []):
        text = issue.en if locale == "en" else issue.sv
        key = issue.where or "_"
        fields[key] = f"{fields[key]}; {text}" if key in fields else text
    return summary, fields


# ------------------------------------------------------------------ session pages


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


# ------------------------------------------------------------------ persons


@router.get("/persons", response_class=HTMLResponse)
def search_page(request: Request, principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Search form for an identity number."""
    return render(request, "search.html", {})


@router.post("/persons/search", response_class=HTMLResponse)
def search(request: Request, form: dict[str, Any] = Depends(checked_form),
           principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Find a person by identity number (validated; the number stays out of URLs)."""
    from utfall.care import find_person
    from utfall.care.persons import key_of

    locale = locale_of(request)
    raw = str(form.get("identity_number", "")).strip()
    try:
        parse_identity_number(raw)
    except IdentityNumberError as exc:
        return render(request, "search.html", {"errors": {"identity_number": _id_error(
            exc, locale)}}, 422)
    request.state.person_key = key_of(raw)
    with request.app.state.engine.begin() as conn:
        key = find_person(conn, principal.actor, raw)
    if key is None:
        return render(request, "search.html", {"not_found": True, "identity_number": raw}, 200)
    return _redirect(f"/persons/{key}")


def _id_error(exc: IdentityNumberError, locale: str) -> str:
    """The field message for an invalid identity number (never repeats the number)."""
    base = t("web.search.invalid", locale)
    return base if locale != "en" else f"{base} ({exc})"


@router.post("/persons/register", response_class=HTMLResponse)
def register(request: Request, form: dict[str, Any] = Depends(checked_form),
             principal: Principal = Depends(needs_role("clinician", "social_worker"))
             ) -> Response:
    """Register a person who was not found."""
    from utfall.care import CareError, register_person
    from utfall.care.persons import key_of

    locale = locale_of(request)
    raw = str(form.get("identity_number", "")).strip()
    municipality = str(form.get("municipality_code", "")).strip() or None
    try:
        request.state.person_key = key_of(raw)  # a refused registration is logged
        with request.app.state.engine.begin() as conn:
            key = register_person(conn, principal.actor, raw, None, municipality)
    except CareError as exc:
        summary, fields = _care_error_fields(exc, locale)
        return render(request, "search.html", {"not_found": True, "identity_number": raw,
                                               "summary": summary, "errors": fields}, 422)
    return _redirect(f"/persons/{key}")


def _person_context(conn: Any, principal: Principal, person_key: str,
                    emergency_reason: str | None, locale: str) -> dict[str, Any]:
    """Everything the person page shows, from the one checked and logged use case."""
    from utfall.access.relations import BASIS_TEXT, HANDOVER_BASES
    from utfall.care import person_overview

    view = person_overview(conn, principal.actor, person_key,
                           emergency_reason=emergency_reason)
    tl = view["timeline"]
    return {
        "person_key": person_key,
        "masked": view["masked"],
        "timeline": tl,
        "entries": list(reversed(tl.entries())),
        "hidden": tl.hidden,
        "chart": services.chart_svg(tl, locale),
        "consents": view["consents"],
        "sips": view["sips"],
        "relations": view["relations"],
        "bases": BASIS_TEXT,
        "handover_bases": HANDOVER_BASES,
        "units": services.units(conn),
        "instruments": services.instruments(),
        "emergency": tl.emergency,
        "stages": _stages(tl),
    }


def _stages(tl: Any) -> dict[str, list[tuple[str, Any]]]:
    """Stages per programme of the person's enrolments (for the self-report form)."""
    from utfall.followup import UnknownProgrammeError, get_programme

    out: dict[str, list[tuple[str, Any]]] = {}
    for e in tl.enrolments:
        try:
            out[e.programme] = [(s.id, s.title) for s in get_programme(e.programme).stages]
        except UnknownProgrammeError:
            continue
    return out


@router.get("/persons/{person_key}", response_class=HTMLResponse)
def person_page(request: Request, person_key: str,
                principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """The person's timeline, filtered by consent, with chart and actions."""
    _check_key(request, person_key)
    locale = locale_of(request)
    with request.app.state.engine.begin() as conn:
        ctx = _person_context(conn, principal, person_key, None, locale)
    ctx["link"] = None
    return render(request, "person.html", ctx)


@router.post("/persons/{person_key}/emergency", response_class=HTMLResponse)
def emergency(request: Request, person_key: str, form: dict[str, Any] = Depends(checked_form),
              principal: Principal = Depends(needs_role("clinician"))) -> Response:
    """Emergency access (health care, own principal): opens a 4-hour access to the
    person, stored and flagged for the unit manager's review; every read is flagged."""
    from utfall.access.emergency import MIN_REASON

    _check_key(request, person_key)
    locale = locale_of(request)
    reason = str(form.get("reason", "")).strip()
    if len(reason) < MIN_REASON:
        return render(request, "error.html", {
            "status": 422, "key": "web.emergency.reason_needed", "person_key": person_key,
            "code": "not_found"}, 422)
    with request.app.state.engine.begin() as conn:
        ctx = _person_context(conn, principal, person_key, reason, locale)
    return render(request, "person.html", ctx)


@router.get("/persons/{person_key}/assess", response_class=HTMLResponse)
def assessment_form(request: Request, person_key: str, instrument: str = "audit",
                    principal: Principal = Depends(needs_role("clinician", "social_worker"))
                    ) -> Response:
    """A questionnaire rendered from the instrument definition."""
    from utfall.care import check_person

    _check_key(request, person_key)
    with request.app.state.engine.connect() as conn:
        check_person(conn, principal.actor, person_key, "create")
    definition = _instrument(instrument)
    return render(request, "assess.html", _assess_ctx(request, person_key, definition, {}, {}))


def _instrument(instrument: str):
    from fastapi import HTTPException

    from utfall.instruments import UnknownInstrumentError, get_instrument

    try:
        return get_instrument(instrument)
    except UnknownInstrumentError:
        raise HTTPException(404) from None


def _assess_ctx(request: Request, person_key: str, definition: Any, answers: dict[str, Any],
                errors: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"person_key": person_key, "definition": definition,
            "items": services.form_items(definition, answers), "answers": answers,
            "errors": errors, "on_date": extra.pop("on_date", services.today().isoformat()),
            "action": f"/persons/{person_key}/assess?instrument={definition.id}", **extra}


@router.post("/persons/{person_key}/assess", response_class=HTMLResponse)
def record(request: Request, person_key: str, instrument: str = "audit",
           form: dict[str, Any] = Depends(checked_form),
           principal: Principal = Depends(needs_role("clinician", "social_worker"))
           ) -> Response:
    """Validate, score and store an assessment; field messages on errors."""
    from utfall.care import CareError, check_person, record_assessment

    _check_key(request, person_key)
    with request.app.state.engine.connect() as conn:  # no form answer before the check
        check_person(conn, principal.actor, person_key, "create")
    locale = locale_of(request)
    definition = _instrument(instrument)
    answers, errors = services.parse_answers(definition, form)
    on_date = _date(form.get("on_date"), services.today())
    if on_date is None or on_date > services.today():
        errors["on_date"] = _text("web.form.bad_date", locale)
    stage = str(form.get("stage", "")).strip() or None
    if errors or on_date is None:  # no date always has an error
        msgs = {k: (v if k == "on_date" else _text("web.form.number", locale))
                for k, v in errors.items()}
        return render(request, "assess.html", _assess_ctx(
            request, person_key, definition, answers, msgs, stage=stage,
            summary=_text("web.form.fix", locale)), 422)
    try:
        with request.app.state.engine.begin() as conn:
            record_assessment(conn, principal.actor, person_key, definition.id, answers,
                              stage=stage, enrolment_id=None, unit_id=principal.unit_id,
                              on_date=on_date, source="capture")
    except CareError as exc:
        summary, fields = _care_error_fields(exc, locale)
        return render(request, "assess.html", _assess_ctx(
            request, person_key, definition, answers, fields, summary=summary, stage=stage,
            on_date=on_date.isoformat() if on_date else ""), 422)
    except Exception as exc:  # the store is busy or down: keep what was typed
        if not is_unavailable(exc):
            raise
        return health.not_saved(request, exc, render(request, "assess.html", _assess_ctx(
            request, person_key, definition, answers, {}, stage=stage,
            summary=_text("web.form.not_saved", locale),
            on_date=on_date.isoformat() if on_date else "")))
    return _redirect(f"/persons/{person_key}?saved={definition.id}#timeline")


@router.get("/persons/{person_key}/enrol", response_class=HTMLResponse)
def enrol_form(request: Request, person_key: str,
               principal: Principal = Depends(needs_role("clinician", "social_worker"))
               ) -> Response:
    """The enrolment form with the programmes' data fields."""
    from utfall.care import check_person

    _check_key(request, person_key)
    with request.app.state.engine.connect() as conn:
        check_person(conn, principal.actor, person_key, "create")
        ctx = _enrol_ctx(conn, person_key, {}, {})
    return render(request, "enrol.html", ctx)


def _enrol_ctx(conn: Any, person_key: str, values: dict[str, Any], errors: dict[str, str],
               **extra: Any) -> dict[str, Any]:
    from utfall.followup import default_programmes

    return {"person_key": person_key, "programmes": list(default_programmes()),
            "municipal_units": services.units(conn, "municipality") if conn else [],
            "values": values,
            "errors": errors, "today": services.today().isoformat(), **extra}


def _facts(programme: Any, form: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for field in programme.data_fields:
        raw = form.get(f"fact_{field.id}")
        if raw in (None, ""):
            continue
        if field.type == "boolean":
            facts[field.id] = str(raw) in ("1", "true", "on", "yes")
        elif field.type == "integer":
            try:
                facts[field.id] = int(str(raw))
            except ValueError:
                facts[field.id] = str(raw)
        elif field.type == "date":
            facts[field.id] = _date(raw) or str(raw)
        else:
            facts[field.id] = str(raw)
    return facts


@router.post("/persons/{person_key}/enrol", response_class=HTMLResponse)
def enrol_post(request: Request, person_key: str, form: dict[str, Any] = Depends(checked_form),
               principal: Principal = Depends(needs_role("clinician", "social_worker"))
               ) -> Response:
    """Enrol the person at the user's unit."""
    from utfall.care import CareError, check_person, enrol
    from utfall.followup import UnknownProgrammeError, get_programme

    _check_key(request, person_key)
    locale = locale_of(request)
    engine = request.app.state.engine
    with engine.connect() as conn:  # no re-rendered form before the check
        check_person(conn, principal.actor, person_key, "create")
    errors: dict[str, str] = {}
    try:
        programme = get_programme(str(form.get("programme", "")))
    except UnknownProgrammeError:
        programme = None
        errors["programme"] = _text("web.enrol.choose_programme", locale)
    start = _date(form.get("start_date"))
    if start is None:
        errors["start_date"] = _text("web.form.bad_date", locale)
    if errors or programme is None or start is None:
        with engine.connect() as conn:
            return render(request, "enrol.html", _enrol_ctx(conn, person_key, form, errors), 422)
    try:
        with engine.begin() as conn:
            enrol(conn, principal.actor, person_key, programme.id, str(principal.unit_id),
                  start, responsible_worker=str(form.get("responsible_worker") or "") or None,
                  municipal_unit_id=str(form.get("municipal_unit_id") or "") or None,
                  facts=_facts(programme, form))
    except CareError as exc:
        summary, fields = _care_error_fields(exc, locale)
        with engine.connect() as conn:
            return render(request, "enrol.html", _enrol_ctx(
                conn, person_key, form, fields, summary=summary), 422)
    except Exception as exc:  # the store is busy or down: keep what was typed
        if not is_unavailable(exc):
            raise
        chosen = str(form.get("municipal_unit_id") or "")
        return health.not_saved(request, exc, render(request, "enrol.html", {
            **_enrol_ctx(None, person_key, form, {}, summary=_text("web.form.not_saved", locale)),
            "municipal_units": [{"unit_id": chosen, "name": chosen, "organisation": ""}]
            if chosen else []}))
    return _redirect(f"/persons/{person_key}?saved=enrolment#timeline")


@router.get("/persons/{person_key}/consents", response_class=HTMLResponse)
def consents_page(request: Request, person_key: str,
                  principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Consents and SIP plans involving the user's organisation."""
    _check_key(request, person_key)
    with request.app.state.engine.begin() as conn:
        ctx = _consent_ctx(conn, principal, person_key, {}, {})
    return render(request, "consents.html", ctx)


def _consent_ctx(conn: Any, principal: Principal, person_key: str, values: dict[str, Any],
                 errors: dict[str, str], **extra: Any) -> dict[str, Any]:
    """The consents page (also its 422 re-render): a checked, logged read."""
    view = consents_view(conn, principal.actor, person_key)
    own = actor_organisation(conn, principal.actor)
    return {"person_key": person_key, "consents": view["consents"],
            "sips": view["sips"], "categories": CATEGORIES,
            "organisations": [o for o in services.organisations(conn) if o["id"] != own],
            "all_organisations": services.organisations(conn), "own_org": own,
            "values": values, "errors": errors, "today": services.today().isoformat(),
            **extra}


@router.post("/persons/{person_key}/consents", response_class=HTMLResponse)
def consent_post(request: Request, person_key: str, form: dict[str, Any] = Depends(checked_form),
                 principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Document a consent to share data from the user's organisation."""
    from utfall.care import check_person

    _check_key(request, person_key)
    locale = locale_of(request)
    engine = request.app.state.engine
    with engine.connect() as conn:  # managers and units without relation: refused first
        check_person(conn, principal.actor, person_key, "change")
    errors: dict[str, str] = {}
    valid_from = _date(form.get("valid_from"), services.today())
    valid_to = _date(form.get("valid_to")) if form.get("valid_to") else None
    if valid_from is None:
        errors["valid_from"] = _text("web.form.bad_date", locale)
    if form.get("valid_to") and valid_to is None:
        errors["valid_to"] = _text("web.form.bad_date", locale)
    try:
        to_org = int(str(form.get("to_organisation_id", "")))
    except ValueError:
        to_org = 0
        errors["to_organisation_id"] = _text("web.consent.choose_org", locale)
    if not errors and valid_from is not None:
        try:
            with engine.begin() as conn:
                record_consent(conn, principal.actor, person_key, to_organisation_id=to_org,
                               categories=as_list(form.get("categories")),
                               valid_from=valid_from, valid_to=valid_to,
                               form=str(form.get("form") or "written"),
                               note=str(form.get("note") or "")[:1000] or None)
            return _redirect(f"/persons/{person_key}/consents?saved=1")
        except ConsentError as exc:
            errors[exc.field] = exc.en if locale == "en" else exc.sv
    with engine.begin() as conn:
        return render(request, "consents.html",
                      _consent_ctx(conn, principal, person_key, form, errors), 422)


@router.post("/persons/{person_key}/consents/{consent_id}/revoke")
def consent_revoke(request: Request, person_key: str, consent_id: int,
                   form: dict[str, Any] = Depends(checked_form),
                   principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Revoke a consent (effective from the next request)."""
    _check_key(request, person_key)
    with request.app.state.engine.begin() as conn:
        revoke_consent(conn, principal.actor, consent_id, person_key)
    return _redirect(f"/persons/{person_key}/consents?revoked=1")


@router.post("/persons/{person_key}/sip", response_class=HTMLResponse)
def sip_post(request: Request, person_key: str, form: dict[str, Any] = Depends(checked_form),
             principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Store a SIP plan."""
    from utfall.care import check_person

    _check_key(request, person_key)
    locale = locale_of(request)
    engine = request.app.state.engine
    with engine.connect() as conn:  # the 422 re-render below shows SIPs: check first
        check_person(conn, principal.actor, person_key, "create")
    errors: dict[str, str] = {}
    meeting = _date(form.get("meeting_date"), services.today())
    if meeting is None:
        errors["meeting_date"] = _text("web.form.bad_date", locale)
    try:
        responsible = int(str(form.get("responsible_organisation_id", "")))
    except ValueError:
        responsible = 0
        errors["responsible_organisation_id"] = _text("web.consent.choose_org", locale)
    interventions = []
    for org_id, text in zip(as_list(form.get("intervention_org")),
                            as_list(form.get("intervention_text")), strict=False):
        if text.strip():
            interventions.append({"organisation_id": int(org_id) if org_id.isdigit() else None,
                                  "text": text.strip()[:500]})
    if not interventions:
        errors["intervention_text"] = _text("web.sip.need_intervention", locale)
    if not errors and meeting is not None:
        try:
            with engine.begin() as conn:
                create_sip(conn, principal.actor, person_key,
                           responsible_organisation_id=responsible, interventions=interventions,
                           goals=str(form.get("goals") or "")[:2000], meeting_date=meeting)
            return _redirect(f"/persons/{person_key}/consents?sip=1")
        except ConsentError as exc:
            errors[exc.field] = exc.en if locale == "en" else exc.sv
    with engine.begin() as conn:
        return render(request, "consents.html",
                      _consent_ctx(conn, principal, person_key, form, errors, sip_errors=True),
                      422)


@router.post("/persons/{person_key}/self-report", response_class=HTMLResponse)
def issue_link(request: Request, person_key: str, form: dict[str, Any] = Depends(checked_form),
               principal: Principal = Depends(needs_role("clinician", "social_worker"))
               ) -> Response:
    """Issue a single-use self-report link for a stage of an enrolment."""
    from utfall.care import CareError, check_person, issue_self_report_link

    _check_key(request, person_key)
    locale = locale_of(request)
    engine = request.app.state.engine
    instruments = as_list(form.get("instruments")) or None
    lang = str(form.get("locale") or locale)
    try:
        with engine.begin() as conn:
            check_person(conn, principal.actor, person_key, "create")  # 404 before anything
            enrolment_id, _, stage = str(form.get("enrolment_stage") or "").partition("|")
            _check_enrolment_person(conn, enrolment_id, person_key)
            token = issue_self_report_link(
                conn, principal.actor, enrolment_id, stage,
                instruments=instruments, locale=lang if lang in ("sv", "en") else "sv")
    except CareError as exc:
        summary = exc.en if locale == "en" else exc.sv
        with engine.begin() as conn:
            ctx = _person_context(conn, principal, person_key, None, locale)
        ctx["link_error"] = summary
        return render(request, "person.html", ctx, 422)
    url = str(request.base_url).rstrip("/") + f"/r/{token}"
    with engine.begin() as conn:
        ctx = _person_context(conn, principal, person_key, None, locale)
    ctx["link"] = url
    return render(request, "person.html", ctx)


def _check_enrolment_person(conn: Any, enrolment_id: str, person_key: str) -> None:
    """The enrolment must be the person's (the URL names the person)."""
    from sqlalchemy import select

    from utfall.care import CareError
    from utfall.store.models import Enrolment

    owner = conn.execute(select(Enrolment.person_key).where(Enrolment.row_key == enrolment_id)
                         ).scalar_one_or_none()
    if owner != person_key:
        raise CareError("enrolment_not_found", "Välj en inskrivning.", "Choose an enrolment.")


@router.get("/persons/{person_key}/access-log", response_class=HTMLResponse)
def access_log(request: Request, person_key: str,
               principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """The person's extract of who accessed their data (to print and hand over)."""
    _check_key(request, person_key)
    with request.app.state.engine.begin() as conn:
        rows = access_log_for(conn, principal.actor, person_key)
    return render(request, "access_log.html", {"person_key": person_key, "rows": rows})


@router.post("/persons/{person_key}/relations", response_class=HTMLResponse)
def relation_post(request: Request, person_key: str,
                  form: dict[str, Any] = Depends(checked_form),
                  principal: Principal = Depends(needs_role("clinician", "social_worker"))
                  ) -> Response:
    """Refer or assign the person to another unit (the user's unit has the relation)."""
    from utfall.access.relations import RelationError, create_relation
    from utfall.care import check_person

    _check_key(request, person_key)
    locale = locale_of(request)
    engine = request.app.state.engine
    with engine.connect() as conn:
        check_person(conn, principal.actor, person_key, "change")
    valid_to = _date(form.get("valid_to")) if form.get("valid_to") else None
    error: str | None = None
    if form.get("valid_to") and valid_to is None:
        error = _text("web.form.bad_date", locale)
    else:
        try:
            with engine.begin() as conn:
                create_relation(conn, principal.actor, person_key,
                                unit_id=str(form.get("unit_id") or ""),
                                basis=str(form.get("basis") or ""), valid_to=valid_to,
                                note=str(form.get("note") or "")[:500] or None)
            return _redirect(f"/persons/{person_key}?saved=relation#relations")
        except RelationError as exc:
            error = exc.en if locale == "en" else exc.sv
    with engine.begin() as conn:
        ctx = _person_context(conn, principal, person_key, None, locale)
    ctx["relation_error"] = error
    return render(request, "person.html", ctx, 422)


@router.get("/relations", response_class=HTMLResponse)
def relations_page(request: Request,
                   principal: Principal = Depends(needs_role("unit_manager"))) -> Response:
    """The unit manager accepts referrals to the unit (identity number in the body)."""
    return render(request, "relations.html", {"values": {}, "errors": {}})


@router.post("/relations/referral", response_class=HTMLResponse)
def referral_post(request: Request, form: dict[str, Any] = Depends(checked_form),
                  principal: Principal = Depends(needs_role("unit_manager"))) -> Response:
    """Accept a referral: the unit gets a care relation with the person (audited)."""
    from utfall.care import CareError, accept_referral

    locale = locale_of(request)
    raw = str(form.get("identity_number", "")).strip()
    valid_to = _date(form.get("valid_to")) if form.get("valid_to") else None
    errors: dict[str, str] = {}
    if form.get("valid_to") and valid_to is None:
        errors["valid_to"] = _text("web.form.bad_date", locale)
    if not str(form.get("note") or "").strip():
        errors["note"] = _text("web.relation.note_needed", locale)
    try:
        parse_identity_number(raw)
    except IdentityNumberError as exc:
        errors["identity_number"] = _id_error(exc, locale)
    if errors:
        return render(request, "relations.html", {"values": form, "errors": errors}, 422)
    try:
        with request.app.state.engine.begin() as conn:
            key = accept_referral(conn, principal.actor, raw,
                                  note=str(form.get("note") or "")[:500], valid_to=valid_to)
    except CareError as exc:
        summary, fields = _care_error_fields(exc, locale)
        return render(request, "relations.html", {"values": form, "errors": fields,
                                                  "summary": summary}, 422)
    return _redirect(f"/persons/{key}?saved=relation#relations")


# ------------------------------------------------------------------ unit pages


@router.get("/worklist", response_class=HTMLResponse)
def worklist(request: Request, status: str = "",
             principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Due and overdue follow-ups of the user's unit."""
    from utfall.care import due_list

    statuses = [status] if status in ("due", "overdue", "upcoming") else None
    with request.app.state.engine.begin() as conn:
        items = due_list(conn, principal.actor, unit_id=principal.unit_id, statuses=statuses)
    return render(request, "worklist.html", {"items": items, "status": status})


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Unit dashboard: follow-up coverage and disclosure-controlled indicators."""
    from utfall.care import due_list

    engine = request.app.state.engine
    with engine.begin() as conn:
        items = due_list(conn, principal.actor, unit_id=principal.unit_id,
                         statuses=("overdue", "due", "missed", "done_in_window", "done_late",
                                   "done_early"))
    coverage = _coverage(items)
    aggregates = request.app.state.results.get(engine)
    indicators = _unit_indicators(aggregates.get("results"), principal.unit_id)
    return render(request, "dashboard.html", {
        "coverage": coverage, "indicators": indicators, "titles": services.indicator_titles(),
        "errors": aggregates.get("errors", [])})


def _coverage(items: list[Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    done = sum(v for k, v in counts.items() if k.startswith("done"))
    expected = done + counts.get("missed", 0) + counts.get("overdue", 0)
    from utfall.analytics.disclosure import load_rules

    rules = load_rules()  # the published disclosure rules, not a number of our own
    small = rules.threshold

    def shown(n: int) -> str:
        return rules.primary_display if rules.is_small(n) else str(n)

    share = None if expected < small else done / expected
    return {"counts": {k: shown(v) for k, v in counts.items()}, "done": shown(done),
            "expected": shown(expected), "share": share}


def _unit_indicators(results: Any, unit_id: str | None) -> list[dict[str, Any]]:
    if results is None:
        return []
    rows = [r for r in results.to_pylist()
            if (r["breakdown"] == "unit_id" and r["level"] == unit_id)
            or r["breakdown"] == "total"]
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["indicator_id"], r["breakdown"])
        if key not in latest or str(r["period"]) > str(latest[key]["period"]):
            latest[key] = r
    out = []
    for (ind, breakdown), r in sorted(latest.items()):
        if breakdown != "unit_id":
            continue
        total = latest.get((ind, "total"))
        out.append({"indicator_id": ind, "period": r["period"],
                    "numerator": r["numerator_display"], "denominator": r["denominator_display"],
                    "value": _shown_value(ind, r), "region": _shown_value(ind, total)
                    if total else "", "suppressed": r["suppressed"],
                    "reason": r["suppression_reason"]})
    return out


def _shown_value(indicator_id: str, row: dict[str, Any]) -> str:
    """Disclosure-controlled display value; proportions as per cent."""
    if row.get("value") is None:  # masked by disclosure control (or not computable)
        return str(row.get("value_display") or "–")
    if services.indicator_kinds().get(indicator_id) == "proportion":
        return f"{float(row['value']) * 100:.1f} %"
    return str(row.get("value_display"))


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, every_k: int = 10, random_n: int = 5, seed: int | None = None,
                date_from: str = "", date_to: str = "",
                principal: Principal = Depends(needs_role("unit_manager"))) -> Response:
    """Access-log sample for review (systematic, random, emergencies)."""
    today = services.today()
    start = _date(date_from, today - dt.timedelta(days=30)) or today - dt.timedelta(days=30)
    end = _date(date_to, today) or today
    every_k = min(max(every_k, 1), 1000)
    random_n = min(max(random_n, 0), 200)
    seed = seed if seed is not None else secrets.randbelow(10**6)
    with request.app.state.engine.begin() as conn:  # each person shown is logged as read
        view = review_overview(conn, principal.actor, start, end, every_k=every_k,
                               random_n=random_n, seed=seed)
    return render(request, "review.html", {
        "sample": view["sample"], "reviews": view["reviews"], "flagged": view["flagged"],
        "emergencies": view["emergencies"], "every_k": every_k,
        "random_n": random_n, "seed": seed, "date_from": start.isoformat(),
        "date_to": end.isoformat(), "outcomes": OUTCOMES})


@router.post("/review", response_class=HTMLResponse)
def review_post(request: Request, form: dict[str, Any] = Depends(checked_form),
                principal: Principal = Depends(needs_role("unit_manager"))) -> Response:
    """Store a documented log review."""
    today = services.today()
    start = _date(form.get("date_from"), today) or today
    end = _date(form.get("date_to"), today) or today
    ids = [int(i) for i in as_list(form.get("event_ids")) if str(i).isdigit()]
    findings = str(form.get("findings") or "").strip()
    outcome = str(form.get("outcome") or "")
    if not findings or outcome not in OUTCOMES:
        return _redirect("/review?error=1")
    with request.app.state.engine.begin() as conn:
        record_review(conn, principal.account.username, principal.unit_id, period_from=start,
                      period_to=end, method={"every_k": form.get("every_k"),
                                             "random_n": form.get("random_n"),
                                             "seed": form.get("seed")},
                      event_ids=ids, findings=findings[:5000], outcome=outcome)
    return _redirect("/review?saved=1")


@router.get("/analytics", response_class=HTMLResponse)
def analytics(request: Request, indicator: str = "",
              principal: Principal = Depends(needs_role("analyst", "unit_manager"))
              ) -> Response:
    """Regional report and funnel plot (aggregates only)."""
    from utfall.analytics.regional import regional_html_fragment

    locale = locale_of(request)
    aggregates = request.app.state.results.get(request.app.state.engine)
    regional = aggregates.get("regional")
    fragment = regional_html_fragment(regional, locale) if regional is not None else None
    results = aggregates.get("results")
    titles = services.indicator_titles()
    kinds = services.indicator_kinds()
    proportion_ids = sorted({r["indicator_id"] for r in results.to_pylist()
                             if r["breakdown"] == "unit_id"
                             and kinds.get(r["indicator_id"]) == "proportion"}
                            ) if results is not None else []
    chosen = indicator if indicator in proportion_ids else (proportion_ids[0] if proportion_ids
                                                            else "")
    funnel_svg = _funnel(results, chosen, locale, titles) if chosen else None
    return render(request, "analytics.html", {
        "regional": fragment, "indicators": proportion_ids, "chosen": chosen,
        "funnel": funnel_svg, "titles": titles, "errors": aggregates.get("errors", [])})


def _funnel(results: Any, indicator_id: str, locale: str, titles: dict[str, Any]) -> str | None:
    """Funnel plot of the latest period from disclosure-controlled values only."""
    from utfall.reports.charts import funnel_chart
    from utfall.web.render import local

    rows = [r for r in results.to_pylist() if r["indicator_id"] == indicator_id]
    published: dict[str, int] = {}
    for r in rows:
        if r["breakdown"] == "unit_id" and not r["suppressed"] and r["value"] is not None:
            published[str(r["period"])] = published.get(str(r["period"]), 0) + 1
    if not published:
        return None
    # the latest period among those with the most published units
    period = max(published, key=lambda p: (published[p], p))
    total = next((r for r in rows if r["breakdown"] == "total" and str(r["period"]) == period),
                 None)
    units = [{"series": r["level"], "denominator": r["denominator"], "value": r["value"]}
             for r in rows if r["breakdown"] == "unit_id" and str(r["period"]) == period
             and not r["suppressed"] and r["value"] is not None and r["denominator"]]
    if total is None or total["value"] is None or not 0 <= float(total["value"]) <= 1:
        return None
    p0 = float(total["value"])
    title = f"{local(titles.get(indicator_id), locale)} {period}"
    key = json.dumps([units, p0, title, locale], sort_keys=True, default=str)
    return services.cached_svg(key, lambda: funnel_chart(units, p0, title=title,
                                                         locale=locale))


# ------------------------------------------------------------------ admin


# user administration: utfall.web.pages_accounts


# ------------------------------------------------------------------ self-report


@router.get("/r/{token}", response_class=HTMLResponse)
def self_report(request: Request, token: str) -> Response:
    """The person's questionnaires behind a self-report link."""
    from utfall.care import CareError, open_self_report

    try:
        with request.app.state.engine.begin() as conn:
            opened = open_self_report(conn, token)
    except (CareError, AccessDenied):
        return render(request, "selfreport_closed.html", {}, 404)
    return render(request, "selfreport.html", _self_ctx(request, token, opened, {}, {}))


def _self_ctx(request: Request, token: str, opened: Any, answers: dict[str, dict[str, Any]],
              errors: dict[str, dict[str, str]], **extra: Any) -> dict[str, Any]:
    forms = []
    for definition in opened.instruments:
        iid = definition.id
        forms.append({"definition": definition,
                      "items": services.form_items(definition, answers.get(iid, {})),
                      "answers": answers.get(iid, {}), "errors": errors.get(iid, {})})
    if opened.locale in ("sv", "en") and not request.query_params.get("lang") and \
            not request.cookies.get(LANG_COOKIE):
        request.state.forced_locale = opened.locale
    return {"token": token, "forms": forms, "opened": opened, **extra}


@router.post("/r/{token}", response_class=HTMLResponse)
def self_report_post(request: Request, token: str,
                     form: dict[str, Any] = Depends(form_data)) -> Response:
    """Submit the person's answers (field messages on errors)."""
    from utfall.care import CareError, open_self_report, submit_self_report

    locale = locale_of(request)
    engine = request.app.state.engine
    try:
        with engine.begin() as conn:
            opened = open_self_report(conn, token)
    except (CareError, AccessDenied):
        return render(request, "selfreport_closed.html", {}, 404)
    answers: dict[str, dict[str, Any]] = {}
    errors: dict[str, dict[str, str]] = {}
    for definition in opened.instruments:
        iid = definition.id
        prefixed = {k.split(":", 1)[1]: v for k, v in form.items()
                    if k.startswith(f"{iid}:")}
        parsed, bad = services.parse_answers(definition, prefixed)
        answers[iid] = parsed
        problems = {k: _text("web.form.number", locale) for k in bad}
        if not bad:
            problems = services.answer_problems(definition, parsed, locale)
        if problems:
            errors[iid] = problems
    if errors:
        return render(request, "selfreport.html", _self_ctx(
            request, token, opened, answers, errors,
            summary=_text("web.form.fix", locale)), 422)
    try:
        with engine.begin() as conn:
            submit_self_report(conn, token, answers)
    except CareError as exc:
        summary, fields = _care_error_fields(exc, locale)
        per = {iid: fields for iid in answers}
        return render(request, "selfreport.html", _self_ctx(
            request, token, opened, answers, per, summary=summary), 422)
    except AccessDenied:
        return render(request, "selfreport_closed.html", {}, 404)
    except Exception as exc:  # the store is busy or down: keep what was typed
        if not is_unavailable(exc):
            raise
        return health.not_saved(request, exc, render(request, "selfreport.html", _self_ctx(
            request, token, opened, answers, {},
            summary=_text("web.form.not_saved", locale))))
    return render(request, "selfreport_done.html", {})
