"""Unit pages: the access review (worklist: ``pages.worklist``; dashboard: ``pages.dashboard``)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.access.extracts import review_overview
from utfall.access.review import OUTCOMES, record_review
from utfall.web import services
from utfall.web.deps import as_list, checked_form, needs_role
from utfall.web.pages._common import (
    _date,
    _redirect,
)
from utfall.web.render import render
from utfall.web.security import (
    Principal,
)

router = APIRouter(include_in_schema=False)


# /worklist (paged, filtered, CSV, assignment): utfall.web.pages.worklist


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
