"""Self-report pages opened by a link (no sign-in): one short section per screen with
progress, back/next, answers kept server-side (save-and-return), skip logic as the
person goes, plain-language errors at the question, then a thank-you page with help
contacts. Nothing on these screens names a programme, diagnosis or identity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.access.policy import AccessDenied
from utfall.store.db import is_unavailable
from utfall.web import health, services
from utfall.web.deps import form_data
from utfall.web.pages._common import _redirect, _text
from utfall.web.pages._selfreport_steps import GOALS, Step, prune, shown_items, step_problems, steps
from utfall.web.render import locale_of, render
from utfall.web.security import LANG_COOKIE

router = APIRouter(include_in_schema=False)
NEW_GOALS = 3


def _closed(request: Request) -> Response:
    from utfall.care.help_contacts import help_contacts

    return render(request, "selfreport_closed.html", {"contacts": help_contacts(None)}, 404)


def _force_locale(request: Request, opened: Any) -> None:
    if opened.locale in ("sv", "en") and not request.query_params.get("lang") and \
            not request.cookies.get(LANG_COOKIE):
        request.state.forced_locale = opened.locale


def _open(request: Request, token: str) -> tuple[Any, dict[str, Any], int, list[Any]]:
    """The form, the draft, the step reached and the goals to review (or raises)."""
    from utfall.care import open_self_report
    from utfall.care.goals import open_goals
    from utfall.care.selfreport import load_draft

    with request.app.state.engine.begin() as conn:
        opened = open_self_report(conn, token)
        draft, reached = load_draft(conn, token)
        review = [] if opened.intake else open_goals(
            conn, _person_of(conn, opened.token_id), opened.unit_id)
    _force_locale(request, opened)
    return opened, draft, reached, review


def _person_of(conn: Any, token_id: int) -> str:
    from sqlalchemy import select

    from utfall.store.models_care import SelfReportToken

    t = SelfReportToken.__table__
    return str(conn.execute(select(t.c.person_key).where(t.c.id == token_id)).scalar_one())


def _message(step: Step, link_id: str, code: str, locale: str) -> str:
    item = next((i for i in step.items if i.linkId == link_id), None)
    if code == "required_missing":
        key = "selfreport.error.required" if item is None or item.type in (
            "choice", "boolean") else "selfreport.error.required_text"
        return _text(key, locale)
    if item is not None and item.type in ("choice", "boolean"):
        return _text("selfreport.error.not_allowed", locale)
    if code in ("out_of_range", "not_integer", "number") and item is not None:
        if item.minValue is not None and item.maxValue is not None:
            return _text("selfreport.error.number", locale).format(
                low=item.minValue, high=item.maxValue)
        return _text("selfreport.error.number_plain", locale)
    if code == "too_long":
        return _text("selfreport.error.too_long", locale)
    return _text("selfreport.error.not_allowed", locale)


def _ctx(request: Request, token: str, opened: Any, draft: dict[str, Any], all_steps: list[Step],
         index: int, review: list[Any], errors: dict[str, str] | None = None,
         summary: str | None = None) -> dict[str, Any]:
    from utfall.care.goals import domains, statuses

    step = all_steps[index]
    answers = draft.get(step.instrument, {})
    items = [] if step.definition is None else [
        (i, True) for i in shown_items(step.definition, step.items, answers)]
    goals = draft.get(GOALS, {})
    new = list(goals.get("new") or [])
    new += [{}] * (NEW_GOALS - len(new))
    return {"token": token, "opened": opened, "step": step, "index": index,
            "total": len(all_steps), "items": items, "answers": answers,
            "errors": errors or {}, "summary": summary, "last": index == len(all_steps) - 1,
            "review": review, "new_goals": new[:NEW_GOALS],
            "reviews": goals.get("reviews") or {}, "domains": domains(),
            "statuses": statuses()}


def _empty(step: Step, draft: dict[str, Any]) -> bool:
    """An instrument step whose every item the answers so far leave unasked."""
    return step.definition is not None and not shown_items(
        step.definition, step.items, draft.get(step.instrument, {}))


def _clamp(index: int, all_steps: list[Step]) -> int:
    return max(0, min(index, len(all_steps) - 1))


@router.get("/r/{token}", response_class=HTMLResponse)
def self_report(request: Request, token: str) -> Response:
    """The step the person has reached (or ``?steg=N``) behind a self-report link."""
    from utfall.care import CareError

    try:
        opened, draft, reached, review = _open(request, token)
    except (CareError, AccessDenied):
        return _closed(request)
    all_steps = steps(opened.instruments, draft)
    wanted = request.query_params.get("steg", "")
    index = _clamp(int(wanted) - 1 if wanted.isdigit() else reached, all_steps)
    while index > 0 and _empty(all_steps[index], draft):  # its deciding answer is missing
        index -= 1
    return render(request, "selfreport.html",
                  _ctx(request, token, opened, draft, all_steps, index, review))


def _read_step(step: Step, form: dict[str, Any], draft: dict[str, Any],
               locale: str) -> dict[str, str]:
    """Merge the posted answers of ``step`` into ``draft``; field errors (linkId → text)
    of values that are not numbers are returned, the typed text kept."""
    if step.definition is None:
        return _read_goals(form, draft, locale)
    given = dict(draft.get(step.instrument, {}))
    prefix = f"{step.instrument}:"
    posted = {k.removeprefix(prefix): v for k, v in form.items() if k.startswith(prefix)}
    parsed, bad = services.parse_answers(step.definition, posted)
    for item in step.items:
        given.pop(item.linkId, None)
        if item.linkId in parsed:
            given[item.linkId] = parsed[item.linkId]
        elif item.linkId in bad:
            raw = posted.get(item.linkId)
            given[item.linkId] = str(raw[-1] if isinstance(raw, list) else raw)[:40]
    draft[step.instrument] = prune(step.definition, given)
    return {k: _message(step, k, "number", locale) for k in bad}


def _read_goals(form: dict[str, Any], draft: dict[str, Any], locale: str) -> dict[str, str]:
    from utfall.care.goals import MAX_TEXT, domains, statuses

    ids = {d["id"] for d in domains()}
    new = []
    errors: dict[str, str] = {}
    for n in range(NEW_GOALS):
        text = str(form.get(f"goal_text_{n}") or "").strip()[:MAX_TEXT]
        domain = str(form.get(f"goal_domain_{n}") or "")
        new.append({"text": text, "domain": domain if domain in ids else ""})
        if text and domain not in ids:
            errors[f"goal_domain_{n}"] = _text("selfreport.error.goal_domain", locale)
    allowed = {s["id"] for s in statuses()}
    reviews = {k.removeprefix("review_"): str(v) for k, v in form.items()
               if k.startswith("review_") and str(v) in allowed}
    draft[GOALS] = {"new": new, "reviews": reviews}
    return errors


def _save(request: Request, token: str, draft: dict[str, Any], index: int) -> None:
    from utfall.care.selfreport import save_draft

    with request.app.state.engine.begin() as conn:
        save_draft(conn, token, draft, index)


@router.post("/r/{token}", response_class=HTMLResponse)
def self_report_post(request: Request, token: str,
                     form: dict[str, Any] = Depends(form_data)) -> Response:
    """One step: keep the answers, then go back, save for later, go on, or send."""
    from utfall.care import CareError

    try:
        opened, draft, _reached, review = _open(request, token)
    except (CareError, AccessDenied):
        return _closed(request)
    locale = locale_of(request)  # after _open: the link's language applies
    all_steps = steps(opened.instruments, draft)
    key = str(form.get("step_key") or "")
    index = next((n for n, s in enumerate(all_steps) if s.key == key), None)
    if index is None:  # an old page: show the step the person has reached
        return _redirect(f"/r/{token}")
    step = all_steps[index]
    action = str(form.get("action") or "next")
    try:
        bad = _read_step(step, form, draft, locale)
        all_steps = steps(opened.instruments, draft)  # skip logic with the new answers
        index = next((n for n, s in enumerate(all_steps) if s.key == key), index)
        if action == "back":
            _save(request, token, draft, _clamp(index - 1, all_steps))
            return _redirect(f"/r/{token}?steg={_clamp(index - 1, all_steps) + 1}")
        if action == "later":
            _save(request, token, draft, index)
            return render(request, "selfreport_saved.html", {"opened": opened, "token": token,
                                                             "index": index})
        problems = {k: _message(step, k, c, locale) for k, c in
                    step_problems(step, draft.get(step.instrument, {})).items()}
        errors = bad | problems
        if errors:
            _save(request, token, draft, index)
            return render(request, "selfreport.html", _ctx(
                request, token, opened, draft, all_steps, index, review, errors,
                _text("selfreport.fix", locale)), 422)
        if index < len(all_steps) - 1:
            _save(request, token, draft, index + 1)
            return _redirect(f"/r/{token}?steg={index + 2}")
        return _send(request, token, opened, draft, all_steps, review, locale)
    except CareError as exc:
        if exc.code.startswith("self_report_"):
            return _closed(request)
        raise
    except AccessDenied:
        return _closed(request)
    except Exception as exc:  # the store is busy or down: keep what was typed
        if not is_unavailable(exc):
            raise
        return health.not_saved(request, exc, render(request, "selfreport.html", _ctx(
            request, token, opened, draft, all_steps, index, review, {},
            _text("web.form.not_saved", locale))))


def _send(request: Request, token: str, opened: Any, draft: dict[str, Any],
          all_steps: list[Step], review: list[Any], locale: str) -> Response:
    """Check every step, then submit answers and goals in one transaction."""
    from utfall.care import CareError, submit_self_report
    from utfall.care.help_contacts import help_contacts
    from utfall.care.selfreport import raised_flags

    for n, step in enumerate(all_steps):
        codes = step_problems(step, draft.get(step.instrument, {}))
        if codes:
            errors = {k: _message(step, k, c, locale) for k, c in codes.items()}
            _save(request, token, draft, n)
            return render(request, "selfreport.html", _ctx(
                request, token, opened, draft, all_steps, n, review, errors,
                _text("selfreport.fix", locale)), 422)
    answers = {d.id: draft.get(d.id, {}) for d in opened.instruments}
    goals = draft.get(GOALS, {})
    payload = {"new": [g for g in goals.get("new") or [] if g.get("text")],
               "reviews": [{"goal_id": k, "status": v}
                           for k, v in (goals.get("reviews") or {}).items()]}
    try:
        with request.app.state.engine.begin() as conn:
            submit_self_report(conn, token, answers, goals=payload)
    except CareError as exc:
        if exc.code.startswith("self_report_"):
            return _closed(request)
        summary = exc.en if locale == "en" else exc.sv
        return render(request, "selfreport.html", _ctx(
            request, token, opened, draft, all_steps, len(all_steps) - 1, review, {},
            summary), 422)
    flagged = bool(raised_flags(answers))
    return render(request, "selfreport_done.html", {
        "opened": opened, "flagged": flagged,
        "contacts": help_contacts(opened.municipality_code)})
