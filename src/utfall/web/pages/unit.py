"""Unit pages: worklist, dashboard and the access review."""

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
    CARE,
    _date,
    _redirect,
)
from utfall.web.render import render
from utfall.web.security import (
    Principal,
)

router = APIRouter(include_in_schema=False)


# /worklist (paged, filtered, CSV, assignment): utfall.web.pages.worklist


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
