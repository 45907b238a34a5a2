"""Pages to change an enrolment's phase and to discharge (clinician, social worker).

``GET/POST /enrolments/{id}/phase?to=<phase>`` shows the data fields the target
phase needs (required data and the facts its entry checks read), filled in with what
is recorded; ``GET/POST /enrolments/{id}/discharge`` asks for the end reason, the
data it requires and the municipal unit that follows up after discharge. Both call the
use cases in :mod:`utfall.care.phases` (access, validation, audit); the person page
offers only the phases the model allows from the current one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from utfall.i18n import t
from utfall.web.deps import checked_form, needs_role
from utfall.web.pages._common import _care_error_fields, _redirect, _text
from utfall.web.render import locale_of, render
from utfall.web.security import Principal

router = APIRouter(include_in_schema=False)
RECORDERS = ("clinician", "social_worker")
ID_CHARS = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.:-")


def _check_id(request: Request, conn: Any, enrolment_id: str) -> str:
    """404 for a malformed or unknown id; remembers the person for refusal audits."""
    from utfall.care import NotFound
    from utfall.care.phases import enrolment_person

    if not 0 < len(enrolment_id) <= 64 or not set(enrolment_id) <= ID_CHARS:
        raise HTTPException(404)
    try:
        key = enrolment_person(conn, enrolment_id)
    except NotFound:
        raise HTTPException(404) from None
    request.state.person_key = key
    return key


def _facts_from_form(fields: list[Any], form: dict[str, Any]) -> tuple[dict[str, Any],
                                                                      dict[str, str]]:
    """Typed facts of the shown fields (blank ones left out) and field-level errors."""
    facts: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in fields:
        raw = str(form.get(f"fact_{spec.id}", "")).strip()
        if raw == "":
            continue
        if spec.type == "boolean":
            facts[spec.id] = raw in ("1", "true", "on", "yes")
        elif spec.type == "integer":
            try:
                facts[spec.id] = int(raw)
            except ValueError:
                errors[spec.id] = "overview.form.integer"
        elif spec.type == "date":
            try:
                facts[spec.id] = dt.date.fromisoformat(raw).isoformat()
            except ValueError:
                errors[spec.id] = "overview.form.bad_date"
        else:
            facts[spec.id] = raw
    return facts, errors


def _values(form_data: Any, posted: dict[str, Any] | None) -> dict[str, str]:
    """Values to show in the fields: what was posted, else what is recorded."""
    if posted is not None:
        return {k: str(v) for k, v in posted.items() if isinstance(v, str)}
    out: dict[str, str] = {}
    for spec in form_data.fields:
        value = form_data.facts.get(spec.id)
        if value is None:
            continue
        out[f"fact_{spec.id}"] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return out


def _errors(exc: Any, locale: str, check_fields: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A CareError's summary and messages per field (entry checks at their field)."""
    summary, fields = _care_error_fields(exc, locale)
    out: dict[str, str] = {}
    for where, text in fields.items():
        key = where.removeprefix("facts.")
        key = check_fields.get(key, key)
        out[key] = f"{out[key]}; {text}" if key in out else text
    return summary, out


def _today() -> dt.date:
    from utfall.followup import local_today

    return local_today()


def _phase_page(request: Request, form_data: Any, *, values: dict[str, str],
                errors: dict[str, str], summary: str | None = None,
                refused: Any = None, status: int = 200) -> Response:
    view = form_data.view
    return render(request, "phase.html", {
        "form": form_data, "view": view, "person_key": view.person_key, "values": values,
        "errors": errors, "summary": summary, "refused": refused,
        "today": _today().isoformat()}, status)


@router.get("/enrolments/{enrolment_id}/phase", response_class=HTMLResponse)
def phase_form(request: Request, enrolment_id: str, to: str = "",
               principal: Principal = Depends(needs_role(*RECORDERS))) -> Response:
    """The form for moving to phase ``to`` (only phases allowed from the current one)."""
    from utfall.care.phases import PhaseRefused
    from utfall.care.phases import phase_form as load

    with request.app.state.engine.begin() as conn:
        _check_id(request, conn, enrolment_id)
        try:
            data = load(conn, principal.actor, enrolment_id, to or None)
        except PhaseRefused as exc:
            data = load(conn, principal.actor, enrolment_id, None)
            return _phase_page(request, data, values={}, errors={}, refused=exc, status=409)
    if data.to_phase is None:
        raise HTTPException(404)
    if data.to_phase.terminal:  # ending is recorded with its end reason
        return _redirect(f"/enrolments/{enrolment_id}/discharge")
    return _phase_page(request, data, values=_values(data, None), errors={})


@router.post("/enrolments/{enrolment_id}/phase", response_class=HTMLResponse)
def phase_post(request: Request, enrolment_id: str, form: dict[str, Any] = Depends(checked_form),
               principal: Principal = Depends(needs_role(*RECORDERS))) -> Response:
    """Save the phase change; field messages (input kept) or the allowed set on refusal."""
    from utfall.care import CareError
    from utfall.care.phases import PhaseRefused, set_phase
    from utfall.care.phases import phase_form as load

    locale = locale_of(request)
    to = str(form.get("to", ""))
    engine = request.app.state.engine
    with engine.begin() as conn:
        key = _check_id(request, conn, enrolment_id)
        try:
            data = load(conn, principal.actor, enrolment_id, to or None)
        except PhaseRefused as exc:
            data = load(conn, principal.actor, enrolment_id, None)
            return _phase_page(request, data, values={}, errors={}, refused=exc, status=409)
    if data.to_phase is None:
        raise HTTPException(404)
    facts, bad = _facts_from_form(data.fields, form)
    errors = {k: _text(v, locale) for k, v in bad.items()}
    on_date = _date(form.get("date"))
    if on_date is None:
        errors["date"] = _text("overview.form.bad_date", locale)
    reason = str(form.get("reason", "")).strip() or None
    if errors or on_date is None:
        return _phase_page(request, data, values=_values(data, form), errors=errors,
                           summary=_text("overview.form.fix", locale), status=422)
    try:
        with engine.begin() as conn:
            set_phase(conn, principal.actor, enrolment_id, data.to_phase.id, on_date=on_date,
                      facts=facts, reason=reason)
    except PhaseRefused as exc:
        return _phase_page(request, data, values=_values(data, form), errors={}, refused=exc,
                           status=409)
    except CareError as exc:
        summary, errors = _errors(exc, locale, data.check_fields)
        return _phase_page(request, data, values=_values(data, form), errors=errors,
                           summary=summary, status=422)
    return _redirect(f"/persons/{key}?saved=phase#overview")


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value or "").strip())
    except ValueError:
        return None


def _discharge_page(request: Request, conn: Any, form_data: Any, *, values: dict[str, str],
                    errors: dict[str, str], summary: str | None = None,
                    refused: Any = None, status: int = 200) -> Response:
    from utfall.web import services

    view = form_data.view
    en = locale_of(request) == "en"
    stage_titles = [s.title.en if en else s.title.sv for s in view.pending
                    if s.responsible == "municipal_social_services"]
    return render(request, "discharge.html", {
        "form": form_data, "view": view, "person_key": view.person_key, "values": values,
        "errors": errors, "summary": summary, "refused": refused,
        "municipal_units": services.units(conn, "municipality") if conn is not None else [],
        "municipal_titles": stage_titles, "today": _today().isoformat()}, status)


@router.get("/enrolments/{enrolment_id}/discharge", response_class=HTMLResponse)
def discharge_form(request: Request, enrolment_id: str,
                   principal: Principal = Depends(needs_role(*RECORDERS))) -> Response:
    """The discharge form: date, end reason, the data it requires, municipal unit."""
    from utfall.care.phases import phase_form as load

    with request.app.state.engine.begin() as conn:
        _check_id(request, conn, enrolment_id)
        data = load(conn, principal.actor, enrolment_id, None, discharge_form=True)
        values = {"municipal_unit_id": data.municipal_unit_id or ""}
        refused = data.view.end_date is not None
        return _discharge_page(request, conn, data, values=values, errors={},
                               refused=refused or None, status=409 if refused else 200)


@router.post("/enrolments/{enrolment_id}/discharge", response_class=HTMLResponse)
def discharge_post(request: Request, enrolment_id: str,
                   form: dict[str, Any] = Depends(checked_form),
                   principal: Principal = Depends(needs_role(*RECORDERS))) -> Response:
    """Save the discharge; field messages with the input kept."""
    from utfall.care import CareError
    from utfall.care.phases import PhaseRefused, discharge
    from utfall.care.phases import phase_form as load

    locale = locale_of(request)
    engine = request.app.state.engine
    with engine.begin() as conn:
        key = _check_id(request, conn, enrolment_id)
        data = load(conn, principal.actor, enrolment_id, None, discharge_form=True)
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    facts, bad = _facts_from_form(data.fields, form)
    errors = {k: _text(v, locale) for k, v in bad.items()}
    on_date = _date(form.get("date"))
    if on_date is None:
        errors["date"] = _text("overview.form.bad_date", locale)
    end_reason = str(form.get("end_reason", "")).strip()
    if not end_reason:
        errors["end_reason"] = _text("overview.discharge.choose", locale)
    if errors or on_date is None:
        with engine.connect() as conn:
            return _discharge_page(request, conn, data, values=values, errors=errors,
                                   summary=_text("overview.form.fix", locale), status=422)
    try:
        with engine.begin() as conn:
            discharge(conn, principal.actor, enrolment_id, on_date=on_date,
                      end_reason=end_reason, facts=facts,
                      note=str(form.get("note", "")).strip() or None,
                      municipal_unit_id=str(form.get("municipal_unit_id") or "") or None)
    except PhaseRefused:
        with engine.connect() as conn:
            return _discharge_page(request, conn, data, values=values, errors={},
                                   refused=True, status=409)
    except CareError as exc:
        summary, errors = _errors(exc, locale, {})
        if "municipal_unit" in errors:
            errors["municipal_unit_id"] = errors.pop("municipal_unit")
        with engine.connect() as conn:
            return _discharge_page(request, conn, data, values=values, errors=errors,
                                   summary=summary, status=422)
    return _redirect(f"/persons/{key}?saved=discharge#overview")


def with_phase_rows(ctx: dict[str, Any], locale: str) -> dict[str, Any]:
    """The person page's timeline rows plus one row per recorded phase change and
    discharge (newest first), so every change shows on the timeline."""
    tl = ctx.get("timeline")
    if tl is None:
        return ctx
    en = locale == "en"
    rows: list[dict[str, Any]] = []
    for e in tl.enrolments:
        for before, p in zip(e.phases, e.phases[1:], strict=False):
            ended = e.end_date is not None and p is e.phases[-1] and p.on_date == e.end_date
            if ended:
                label = e.end_reason_label
                detail = (label.en if en else label.sv) if label else ""
            else:
                name = before.name.en if en else before.name.sv
                detail = t("overview.timeline.from", locale, phase=name)
            rows.append({"kind": "discharge" if ended else "phase", "date": p.on_date,
                         "title": {"sv": f"{e.title.sv}: {p.name.sv}",
                                   "en": f"{e.title.en}: {p.name.en}"},
                         "detail": detail, "unit_id": e.unit_id, "unit_name": e.unit_name,
                         "organisation": e.organisation})
    if rows:
        merged = [*rows, *ctx.get("entries", [])]
        merged.sort(key=lambda r: r["date"] if isinstance(r, dict) else r.date, reverse=True)
        ctx["entries"] = merged
    return ctx
