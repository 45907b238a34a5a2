"""Consent pages, SIP, self-report links and the person's access log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.access.consent import (
    ConsentError,
    consents_view,
    create_sip,
    record_consent,
    revoke_consent,
)
from utfall.access.extracts import access_log_for
from utfall.access.policy import CATEGORIES, actor_organisation
from utfall.web import services
from utfall.web.deps import as_list, checked_form, needs_role
from utfall.web.pages._common import (
    CARE,
    _check_key,
    _date,
    _person_context,
    _redirect,
    _text,
)
from utfall.web.render import locale_of, render
from utfall.web.security import (
    Principal,
)

router = APIRouter(include_in_schema=False)


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
            from utfall.messaging.invitations import remember_link  # QR code and sending

            link_id = remember_link(conn, principal.actor, token, str(request.base_url))
    except CareError as exc:
        summary = exc.en if locale == "en" else exc.sv
        with engine.begin() as conn:
            ctx = _person_context(conn, principal, person_key, None, locale)
        ctx["link_error"] = summary
        return render(request, "person.html", ctx, 422)
    url = str(request.base_url).rstrip("/") + f"/r/{token}"
    with engine.begin() as conn:
        ctx = _person_context(conn, principal, person_key, None, locale)
    ctx["link"], ctx["link_id"] = url, link_id
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
