"""Person pages: search, registration, the person page, emergency access, recording
and enrolment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.domain.identity import IdentityNumberError, parse_identity_number
from utfall.store.db import is_unavailable
from utfall.web import health, services
from utfall.web.deps import checked_form, needs_role
from utfall.web.pages._common import (
    CARE,
    _care_error_fields,
    _check_key,
    _date,
    _id_error,
    _person_context,
    _redirect,
    _text,
)
from utfall.web.pages.enrolments import with_phase_rows
from utfall.web.render import locale_of, render
from utfall.web.security import (
    Principal,
)

router = APIRouter(include_in_schema=False)


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






@router.get("/persons/{person_key}", response_class=HTMLResponse)
def person_page(request: Request, person_key: str,
                principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """The person's timeline, filtered by consent, with chart and actions."""
    _check_key(request, person_key)
    locale = locale_of(request)
    with request.app.state.engine.begin() as conn:
        ctx = _person_context(conn, principal, person_key, None, locale)
    ctx = with_phase_rows(ctx, locale)  # phase changes and discharges on the timeline
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
    ctx = with_phase_rows(ctx, locale)
    return render(request, "person.html", ctx)


@router.get("/persons/{person_key}/assess", response_class=HTMLResponse)
def assessment_form(request: Request, person_key: str, instrument: str = "audit",
                    stage: str = "",
                    principal: Principal = Depends(needs_role("clinician", "social_worker"))
                    ) -> Response:
    """A questionnaire rendered from the instrument definition; the stage is chosen
    from the person's scheduled stages (``stage=<enrolment>|<occurrence>`` preselects
    one, e.g. from the worklist) or "unscheduled"."""
    from utfall.care.stage_choice import best_choice, stage_choices

    _check_key(request, person_key)
    definition = _instrument(instrument)
    with request.app.state.engine.connect() as conn:
        choices = stage_choices(conn, principal.actor, person_key)  # checks "create"
    values = {c.value for c in choices}
    if stage not in values and stage != "unscheduled":
        best = best_choice(choices, definition.id)
        stage = best.value if best else ("unscheduled" if not choices else "")
    return render(request, "assess.html", _assess_ctx(
        request, person_key, definition, {}, {}, stage=stage, choices=choices))


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
    """Validate, score and store an assessment; field messages on errors. The stage is
    one of the person's scheduled stages (``<enrolment>|<occurrence>``) or
    "unscheduled" — never free text; a missing field means unscheduled."""
    from utfall.care import CareError, record_assessment
    from utfall.care.stage_choice import stage_choices

    _check_key(request, person_key)
    with request.app.state.engine.connect() as conn:  # no form answer before the check
        choices = stage_choices(conn, principal.actor, person_key)  # checks "create"
    locale = locale_of(request)
    definition = _instrument(instrument)
    answers, errors = services.parse_answers(definition, form)
    on_date = _date(form.get("on_date"), services.today())
    if on_date is None or on_date > services.today():
        errors["on_date"] = _text("web.form.bad_date", locale)
    stage = str(form.get("stage", "unscheduled")).strip()
    picked = {c.value: c for c in choices}.get(stage)
    if picked is None and stage != "unscheduled":
        errors["stage"] = _text("worklist.stage_invalid", locale)
    ctx = {"stage": stage, "choices": choices}
    if errors or on_date is None:  # no date always has an error
        msgs = {k: (v if k in ("on_date", "stage") else _text("web.form.number", locale))
                for k, v in errors.items()}
        return render(request, "assess.html", _assess_ctx(
            request, person_key, definition, answers, msgs, **ctx,
            summary=_text("web.form.fix", locale)), 422)
    try:
        with request.app.state.engine.begin() as conn:
            record_assessment(conn, principal.actor, person_key, definition.id, answers,
                              stage=picked.stage_id if picked else None,
                              enrolment_id=picked.enrolment_id if picked else None,
                              unit_id=principal.unit_id, on_date=on_date, source="capture")
    except CareError as exc:
        summary, fields = _care_error_fields(exc, locale)
        return render(request, "assess.html", _assess_ctx(
            request, person_key, definition, answers, fields, summary=summary, **ctx,
            on_date=on_date.isoformat() if on_date else ""), 422)
    except Exception as exc:  # the store is busy or down: keep what was typed
        if not is_unavailable(exc):
            raise
        return health.not_saved(request, exc, render(request, "assess.html", _assess_ctx(
            request, person_key, definition, answers, {}, **ctx,
            summary=_text("web.form.not_saved", locale),
            on_date=on_date.isoformat() if on_date else "")))
    return _redirect(f"/persons/{person_key}?saved={definition.id}#timeline")


@router.get("/persons/{person_key}/enrol", response_class=HTMLResponse)
def enrol_form(request: Request, person_key: str, programme: str = "",
               principal: Principal = Depends(needs_role("clinician", "social_worker"))
               ) -> Response:
    """The enrolment form: choose a programme, then only its data fields are shown."""
    from utfall.care import check_person

    _check_key(request, person_key)
    with request.app.state.engine.connect() as conn:
        check_person(conn, principal.actor, person_key, "create")
        ctx = _enrol_ctx(conn, person_key, {"programme": programme}, {})
    return render(request, "enrol.html", ctx)


def _programme(programme_id: Any) -> Any:
    from utfall.followup import UnknownProgrammeError, get_programme

    try:
        return get_programme(str(programme_id or ""))
    except UnknownProgrammeError:
        return None


def _enrol_ctx(conn: Any, person_key: str, values: dict[str, Any], errors: dict[str, str],
               **extra: Any) -> dict[str, Any]:
    """The form's context: every programme for the choice, the chosen one's fields,
    what was typed (kept after errors) and the names of the fields in words."""
    from utfall.followup import default_programmes

    chosen = _programme(values.get("programme"))
    names = {"programme": "web.enrol.programme", "start_date": "worklist.enrol.start",
             "start": "worklist.enrol.start", "responsible_worker": "web.enrol.worker",
             "municipal_unit": "web.enrol.municipal_unit",
             "municipal_unit_id": "web.enrol.municipal_unit"}
    fields = {f.id: f.title for f in chosen.data_fields} if chosen else {}
    return {"person_key": person_key, "programmes": list(default_programmes()),
            "chosen": chosen, "field_titles": fields, "field_names": names,
            "municipal_units": services.units(conn, "municipality") if conn else [],
            "values": values, "errors": errors, "today": services.today().isoformat(),
            **extra}


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


def _enrol_errors(exc: Any, programme: Any, locale: str) -> tuple[str, dict[str, str]]:
    """Summary and field messages of a refused enrolment, in words: a field's message
    without its repeated title, the start date's own message, checks as sentences."""
    summary, fields = _care_error_fields(exc, locale)
    titles = {f.id: (f.title.en if locale == "en" else f.title.sv)
              for f in (programme.data_fields if programme else ())}
    out: dict[str, str] = {}
    for key, text in fields.items():
        key = {"start": "start_date", "municipal_unit": "municipal_unit_id"}.get(key, key)
        title = titles.get(key)
        if title and text.startswith(f"{title}: "):
            text = text[len(title) + 2:]
        if key == "start_date" and exc.code == "start_too_late":
            text = summary
        out[key] = text
    return summary, out


@router.post("/persons/{person_key}/enrol", response_class=HTMLResponse)
def enrol_post(request: Request, person_key: str, form: dict[str, Any] = Depends(checked_form),
               principal: Principal = Depends(needs_role("clinician", "social_worker"))
               ) -> Response:
    """Enrol the person at the user's unit; on errors the form comes back with what was
    typed and a message at each field."""
    from utfall.care import CareError, check_person, enrol

    _check_key(request, person_key)
    locale = locale_of(request)
    engine = request.app.state.engine
    with engine.connect() as conn:  # no re-rendered form before the check
        check_person(conn, principal.actor, person_key, "create")
    errors: dict[str, str] = {}
    programme = _programme(form.get("programme"))
    if programme is None:
        errors["programme"] = _text("web.enrol.choose_programme", locale)
    start = _date(form.get("start_date"))
    if start is None:
        errors["start_date"] = _text("web.form.bad_date", locale)
    if errors or programme is None or start is None:
        with engine.connect() as conn:
            return render(request, "enrol.html", _enrol_ctx(
                conn, person_key, form, errors, summary=_text("web.form.fix", locale)), 422)
    try:
        with engine.begin() as conn:
            enrol(conn, principal.actor, person_key, programme.id, str(principal.unit_id),
                  start, responsible_worker=str(form.get("responsible_worker") or "") or None,
                  municipal_unit_id=str(form.get("municipal_unit_id") or "") or None,
                  facts=_facts(programme, form))
    except CareError as exc:
        summary, fields = _enrol_errors(exc, programme, locale)
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
