"""The unit's work list page: filters (a GET form, shareable URLs), server-side paging
and sorting, search by identity number (POST, never in the URL), assignment of the
responsible worker per stage, and the CSV download."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.web.deps import checked_form, needs_role
from utfall.web.pages._common import CARE, _redirect, _safe_next
from utfall.web.render import locale_of, render
from utfall.web.security import Principal
from utfall.web.worklist_view import (
    PAGE_SIZES,
    SORT_CHOICES,
    STATUS_CHOICES,
    make_filter,
    query_of,
    sex_text,
)

router = APIRouter(include_in_schema=False)
RECORDERS = ("clinician", "social_worker")


def _params(request: Request) -> dict[str, str]:
    q = request.query_params
    return {k: q.get(k, "") for k in ("status", "programme", "stage", "worker", "mine",
                                      "person", "sort", "page", "size")}


def _int(value: str, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value), low), high)
    except ValueError:
        return default


def _page(request: Request, principal: Principal, params: dict[str, str],
          errors: dict[str, str] | None = None, status_code: int = 200,
          notice: str | None = None) -> Response:
    from fastapi import HTTPException

    from utfall.care import CareError
    from utfall.care.worklist import worklist_page

    locale = locale_of(request)
    status = params["status"] if params["status"] in STATUS_CHOICES else "open"
    sort = params["sort"] if params["sort"].removeprefix("-") in (*SORT_CHOICES, "person") \
        else "status"
    person = params["person"] if len(params["person"]) == 64 else ""
    flt = make_filter(status, params["programme"], params["stage"], params["worker"],
                      params["mine"] in ("1", "on", "true"), person, sort)
    size = _int(params["size"], 50, 1, 200)
    page = _int(params["page"], 1, 1, 100_000)
    try:
        with request.app.state.engine.begin() as conn:
            result = worklist_page(conn, principal.actor, flt, page=page, page_size=size,
                                   unit_id=principal.unit_id, locale=locale)
            if page > result.pages:  # past the end (the list got shorter): the last page
                page = result.pages
                result = worklist_page(conn, principal.actor, flt, page=page,
                                       page_size=size, unit_id=principal.unit_id,
                                       locale=locale)
            from utfall.web import services

            unit_name = services.unit_names(conn).get(str(principal.unit_id), "")
    except CareError:  # an unknown programme in a hand-edited URL
        raise HTTPException(400) from None

    def link(**changes: Any) -> str:
        return "/worklist?" + urlencode(query_of(flt, size=size, **changes))

    first = (page - 1) * size + 1 if result.total else 0
    return render(request, "worklist.html", {
        "result": result, "flt": flt, "page": page, "size": size, "sizes": PAGE_SIZES,
        "statuses": STATUS_CHOICES, "sorts": SORT_CHOICES, "link": link,
        "first": first, "last": min(page * size, result.total), "unit_name": unit_name,
        "sex_text": lambda s: sex_text(s, locale), "errors": errors or {},
        "short": lambda text: re.split(r" – | \(", str(text))[0],
        "notice": notice or ("saved" if request.query_params.get("saved") else None),
        "back": link(page=page), "export": "/worklist/export.csv?" + urlencode(
            query_of(flt)), "can_assign": principal.role in RECORDERS,
        "flags": any(i.open_flags is not None for i in result.items)}, status_code)


@router.get("/worklist", response_class=HTMLResponse)
def worklist(request: Request, principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """A page of the unit's follow-ups, filtered and sorted on the server."""
    return _page(request, principal, _params(request))


@router.post("/worklist/search", response_class=HTMLResponse)
def worklist_search(request: Request, form: dict[str, Any] = Depends(checked_form),
                    principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Filter the list to one person by identity number (validated; only the
    pseudonymous key goes into the URL; the number is never logged)."""
    from utfall.care.persons import key_of
    from utfall.domain.identity import IdentityNumberError, parse_identity_number

    raw = str(form.get("identity_number", "")).strip()
    params = {k: str(form.get(k) or "") for k in ("status", "programme", "stage", "worker",
                                                  "mine", "sort", "size")}
    params.update(person="", page="1")
    try:
        parse_identity_number(raw)
    except IdentityNumberError:
        return _page(request, principal, params, {
            "identity_number": _text("worklist.search_invalid", request)}, 422)
    params["person"] = key_of(raw)
    return _redirect("/worklist?" + urlencode({k: v for k, v in params.items() if v}))


def _text(key: str, request: Request) -> str:
    from utfall.i18n import t

    return t(key, locale_of(request))


@router.get("/worklist/export.csv")
def worklist_export(request: Request, principal: Principal = Depends(needs_role(*CARE))
                    ) -> Response:
    """The filtered list as CSV for Excel (every row, masked persons; logged)."""
    from utfall.web.api_worklist import export_response

    params = _params(request)
    status = params["status"] if params["status"] in STATUS_CHOICES else "open"
    sort = params["sort"] if params["sort"].removeprefix("-") in (*SORT_CHOICES, "person") \
        else "status"
    person = params["person"] if len(params["person"]) == 64 else ""
    return export_response(request, principal, make_filter(
        status, params["programme"], params["stage"], params["worker"],
        params["mine"] in ("1", "on", "true"), person, sort))


@router.post("/worklist/assign", response_class=HTMLResponse)
def worklist_assign(request: Request, form: dict[str, Any] = Depends(checked_form),
                    principal: Principal = Depends(needs_role(*RECORDERS))) -> Response:
    """Set the responsible worker of a stage, then back to the same list page."""
    from utfall.care import CareError
    from utfall.care.worklist import assign_worker

    back = _safe_next(str(form.get("back") or "/worklist"))
    if not back.startswith("/worklist"):
        back = "/worklist"
    try:
        with request.app.state.engine.begin() as conn:
            assign_worker(conn, principal.actor, str(form.get("enrolment_id", ""))[:40],
                          str(form.get("stage", ""))[:40], str(form.get("worker") or "")[:100])
    except CareError as exc:
        locale = locale_of(request)
        text = "; ".join((i.en if locale == "en" else i.sv) for i in exc.issues) or (
            exc.en if locale == "en" else exc.sv)
        params = _params(request)
        return _page(request, principal, params, {"assign": text}, 422)
    joiner = "&" if "?" in back else "?"
    return _redirect(f"{back}{joiner}saved=1#list")
