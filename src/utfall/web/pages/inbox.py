"""Pages of clinical flags, the unit inbox and assessment corrections.

* ``/inbox`` (care roles): open flags and new self-reports of the own unit;
* ``POST /inbox/flags/{flag_id}/acknowledge`` (clinician, social worker; from the inbox
  or the person page, ``next`` says where to go back);
* ``POST /inbox/self-reports/{assessment_id}/seen`` (care roles);
* ``/persons/{key}/assessments/{id}`` (care roles): versions, void, flags, and for
  clinicians and social workers the correction and void forms (``…/correct``,
  ``…/void``).

The use cases (:mod:`utfall.care.flags`, :mod:`utfall.care.inbox`,
:mod:`utfall.care.corrections`) check access and write the audit. Two template
globals are registered here: ``inbox_count()`` (header link) and ``person_flags(key)``
(the ``_flags.html`` partial; no audit of its own: the person page is the audited read).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import pass_context

from utfall.web import services
from utfall.web.deps import checked_form, needs_role
from utfall.web.pages._common import CARE, _check_key, _redirect, _safe_next, _text
from utfall.web.render import TEMPLATES, locale_of, render
from utfall.web.security import Principal

router = APIRouter(include_in_schema=False)
RECORDERS = ("clinician", "social_worker")


# ------------------------------------------------------------------ template globals


def _principal_of(context: Any) -> Any:
    return context.get("principal")


@pass_context
def inbox_count(context: Any) -> int:
    """Open flags + unseen self-reports of the user's unit (0 when not applicable)."""
    principal = _principal_of(context)
    request = context.get("request")
    if principal is None or request is None or principal.role not in CARE:
        return 0
    cached = getattr(request.state, "inbox_count", None)
    if cached is not None:
        return int(cached)
    from utfall.care.inbox import inbox_count as count

    try:
        with request.app.state.engine.connect() as conn:
            value = count(conn, principal.actor)
    except Exception:  # the header must never break a page (e.g. store unavailable)
        value = 0
    request.state.inbox_count = value
    return value


@pass_context
def person_flags(context: Any, person_key: str) -> list[dict[str, Any]]:
    """The person's open flags the user may see (for ``_flags.html``)."""
    principal = _principal_of(context)
    request = context.get("request")
    if principal is None or request is None or principal.role not in CARE:
        return []
    cache = getattr(request.state, "person_flags", None)
    if cache is None:
        cache = request.state.person_flags = {}
    if person_key not in cache:
        from utfall.access.policy import unit_organisation, unit_organisations
        from utfall.care.flags import open_flags

        try:
            with request.app.state.engine.connect() as conn:
                found = open_flags(conn, person_key, actor=principal.actor)
                mine = unit_organisation(conn, principal.unit_id)
                orgs = unit_organisations(conn)
            for f in found:  # only the raising organisation acknowledges
                f["own"] = mine is not None and orgs.get(f["unit_id"]) == mine[0]
            cache[person_key] = found
        except Exception:
            cache[person_key] = []
    return list(cache[person_key])


@pass_context
def assessment_flags(context: Any, person_key: str, assessment_id: str
                     ) -> list[dict[str, Any]]:
    """Open flags of one assessment (timeline rows)."""
    return [f for f in person_flags(context, person_key)
            if f["assessment_id"] == assessment_id]


TEMPLATES.env.globals["inbox_count"] = inbox_count
TEMPLATES.env.globals["person_flags"] = person_flags
TEMPLATES.env.globals["assessment_flags"] = assessment_flags


def score_text(value: Any, locale: str = "sv") -> str:
    """A score with a decimal comma in Swedish (whole numbers without decimals)."""
    if value is None:
        return "–"
    number = float(value)
    if number.is_integer():
        return str(int(number))
    text = f"{number:.1f}"
    return text.replace(".", ",") if locale == "sv" else text


def stage_text(stage: str | None, locale: str) -> str:
    """A stage id in words (``review-2`` → "Uppföljning 2" style)."""
    from utfall.domain import labels

    if not stage:
        return _text("flags.history.unscheduled", locale)
    found = labels.lookup("stage", stage)
    if found:
        return str(found.get(locale))
    base, _, number = stage.rpartition("-")
    found = labels.lookup("stage", base) if number.isdigit() else None
    return f"{found.get(locale)} {number}" if found else stage


TEMPLATES.env.globals["score_text"] = score_text
TEMPLATES.env.globals["stage_text"] = stage_text


# ------------------------------------------------------------------ inbox


def _inbox(request: Request, principal: Principal, **extra: Any) -> Response:
    from utfall.care.inbox import unit_inbox

    with request.app.state.engine.begin() as conn:
        box = unit_inbox(conn, principal.actor)
    request.state.inbox_count = box["total"]
    status = extra.pop("status", 200)
    return render(request, "inbox.html", {"box": box, "errors": {}, **extra}, status)


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page(request: Request, principal: Principal = Depends(needs_role(*CARE))
               ) -> Response:
    """Open flags and new self-reports of the user's unit."""
    return _inbox(request, principal, done=request.query_params.get("done"))


@router.post("/inbox/flags/{flag_id}/acknowledge", response_class=HTMLResponse)
def acknowledge_post(request: Request, flag_id: int,
                     form: dict[str, Any] = Depends(checked_form),
                     principal: Principal = Depends(needs_role(*RECORDERS))) -> Response:
    """Acknowledge a flag with a note; the form again with the message when it fails."""
    from sqlalchemy import select

    from utfall.care import CareError
    from utfall.care.flags import acknowledge_flag
    from utfall.store.models_flags import CareFlag

    locale = locale_of(request)
    target = _safe_next(str(form.get("next") or "/inbox"))
    note = str(form.get("note") or "")
    try:
        with request.app.state.engine.begin() as conn:
            request.state.person_key = conn.execute(select(CareFlag.person_key).where(
                CareFlag.id == flag_id)).scalar()
            acknowledge_flag(conn, principal.actor, flag_id, note)
    except CareError as exc:
        if type(exc).__name__ == "NotFound":
            raise HTTPException(404) from None
        message = (_text("flags.error.note", locale) if exc.code == "note_required"
                   else (exc.en if locale == "en" else exc.sv))
        if not target.startswith("/inbox"):
            return _flag_again(request, flag_id, note, message, target)
        return _inbox(request, principal, errors={flag_id: message}, notes={flag_id: note},
                      summary=_text("flags.error.fix", locale), status=422)
    sep = "&" if "?" in target else "?"
    anchor = "#flags" if target.startswith("/persons/") else ""
    return _redirect(f"{target}{sep}done=flag{anchor}")


def _flag_again(request: Request, flag_id: int, note: str, message: str, target: str
                ) -> Response:
    """The one flag's form again with the message and the typed note (422)."""
    from sqlalchemy import select

    from utfall.care.flags import flag_dict
    from utfall.store.models_flags import CareFlag

    with request.app.state.engine.connect() as conn:
        row = conn.execute(select(CareFlag.__table__).where(CareFlag.id == flag_id)).one()
    return render(request, "flag_ack.html", {"flag": flag_dict(row), "note": note,
                                             "error": message, "next": target}, 422)


@router.post("/inbox/self-reports/{assessment_id}/seen", response_class=HTMLResponse)
def seen_post(request: Request, assessment_id: str,
              form: dict[str, Any] = Depends(checked_form),
              principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Take a self-report off the inbox."""
    from utfall.care import CareError
    from utfall.care.inbox import mark_self_report_seen

    try:
        with request.app.state.engine.begin() as conn:
            mark_self_report_seen(conn, principal.actor, assessment_id)
    except CareError:
        raise HTTPException(404) from None
    return _redirect("/inbox?done=seen")


# ------------------------------------------------------------------ history + correction


def _history_ctx(request: Request, principal: Principal, person_key: str, assessment_id: str,
                 **extra: Any) -> dict[str, Any]:
    from utfall.access.policy import unit_organisation
    from utfall.care import CareError
    from utfall.care.corrections import assessment_history
    from utfall.instruments import UnknownInstrumentError, get_instrument

    try:
        with request.app.state.engine.begin() as conn:
            view = assessment_history(conn, principal.actor, assessment_id)
            mine = unit_organisation(conn, principal.unit_id)
            theirs = unit_organisation(conn, view["unit_id"])
    except CareError:
        raise HTTPException(404) from None
    if view["person_key"] != person_key:
        raise HTTPException(404)
    try:
        definition = get_instrument(view["instrument"])
    except UnknownInstrumentError:
        definition = None
    answers = extra.pop("answers", None)
    if answers is None:
        answers = dict(view["current"]["answers"])
    items = services.form_items(definition, answers) if definition else []
    return {"person_key": person_key, "view": view, "definition": definition,
            "items": items, "answers": answers, "errors": extra.pop("errors", {}),
            # only the organisation that recorded it corrects it (the use case checks too)
            "can_change": (principal.role in RECORDERS and view["status"] != "voided"
                           and mine is not None and theirs is not None
                           and mine[0] == theirs[0]),
            "prefix": "", **extra}


@router.get("/persons/{person_key}/assessments/{assessment_id}", response_class=HTMLResponse)
def history_page(request: Request, person_key: str, assessment_id: str,
                 principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """An assessment's versions, void and flags; correction and void forms."""
    _check_key(request, person_key)
    return render(request, "assessment_history.html", _history_ctx(
        request, principal, person_key, assessment_id, done=request.query_params.get("done")))


@router.post("/persons/{person_key}/assessments/{assessment_id}/correct",
             response_class=HTMLResponse)
def correct_post(request: Request, person_key: str, assessment_id: str,
                 form: dict[str, Any] = Depends(checked_form),
                 principal: Principal = Depends(needs_role(*RECORDERS))) -> Response:
    """Save corrected answers with a reason; the form again with field messages."""
    from utfall.care import CareError
    from utfall.care.corrections import correct_assessment
    from utfall.web.pages._common import _care_error_fields

    _check_key(request, person_key)
    locale = locale_of(request)
    base = _history_ctx(request, principal, person_key, assessment_id)
    definition = base["definition"]
    if definition is None or not base["can_change"]:
        raise HTTPException(404)
    answers, bad = services.parse_answers(definition, form)
    reason = str(form.get("reason") or "").strip()
    errors = {k: _text("web.form.number", locale) for k in bad}
    if not reason:
        errors["reason"] = _text("flags.error.reason", locale)
    summary = _text("flags.error.fix", locale)
    if not errors:
        try:
            with request.app.state.engine.begin() as conn:
                correct_assessment(conn, principal.actor, assessment_id, answers, reason)
            return _redirect(f"/persons/{person_key}/assessments/{assessment_id}?done=corrected")
        except CareError as exc:
            summary, errors = _care_error_fields(exc, locale)
    return render(request, "assessment_history.html", _history_ctx(
        request, principal, person_key, assessment_id, answers=answers, errors=errors,
        reason=reason, summary=summary), 422)


@router.post("/persons/{person_key}/assessments/{assessment_id}/void",
             response_class=HTMLResponse)
def void_post(request: Request, person_key: str, assessment_id: str,
              form: dict[str, Any] = Depends(checked_form),
              principal: Principal = Depends(needs_role(*RECORDERS))) -> Response:
    """Void the assessment with a reason."""
    from utfall.care import CareError
    from utfall.care.corrections import void_assessment
    from utfall.web.pages._common import _care_error_fields

    _check_key(request, person_key)
    locale = locale_of(request)
    base = _history_ctx(request, principal, person_key, assessment_id)
    if not base["can_change"]:
        raise HTTPException(404)
    reason = str(form.get("void_reason") or "").strip()
    errors: dict[str, str] = {}
    summary = _text("flags.error.fix", locale)
    if not reason:
        errors["void_reason"] = _text("flags.error.reason", locale)
    else:
        try:
            with request.app.state.engine.begin() as conn:
                void_assessment(conn, principal.actor, assessment_id, reason)
            return _redirect(f"/persons/{person_key}/assessments/{assessment_id}?done=voided")
        except CareError as exc:
            summary, fields = _care_error_fields(exc, locale)
            errors = {"void_reason": fields.get("reason", summary)}
    return render(request, "assessment_history.html", _history_ctx(
        request, principal, person_key, assessment_id, errors=errors, void_reason=reason,
        summary=summary), 422)
