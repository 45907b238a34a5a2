"""Self-report pages opened by a link (no sign-in)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.access.policy import AccessDenied
from utfall.store.db import is_unavailable
from utfall.web import health, services
from utfall.web.deps import form_data
from utfall.web.pages._common import (
    _care_error_fields,
    _text,
)
from utfall.web.render import locale_of, render
from utfall.web.security import (
    LANG_COOKIE,
)

router = APIRouter(include_in_schema=False)


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
