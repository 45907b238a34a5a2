"""The unit dashboard: the own unit first (follow-up coverage of its worklist), then
its indicators beside the region's, all indicator figures from the latest stored run.

Where disclosure control applies (``docs/disclosure-control.md``, "Operational data
of the own unit"): the follow-up coverage counts the unit's own worklist, which staff
of the unit already see item by item; it is operational data for the unit's follow-up
work, shown exactly. Indicator values (the unit's and the region's) are published
aggregates and come only from the run's protected release.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.analytics.explorer import outlier_words, unit_overview
from utfall.analytics.runs import StoredRun
from utfall.i18n import t
from utfall.web import services
from utfall.web.deps import needs_role
from utfall.web.formats import long_date, number, percent
from utfall.web.pages._common import CARE
from utfall.web.pages.analytics import _kind, ci_text, run_context, stored_run, value_text
from utfall.web.render import locale_of, render
from utfall.web.security import Principal

router = APIRouter(include_in_schema=False)
COVERAGE_STATUSES = ("overdue", "due", "missed", "done_in_window", "done_late", "done_early")


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Own unit first: worklist coverage, then indicators beside the region."""
    locale = locale_of(request)
    engine = request.app.state.engine
    counts, as_of = coverage_cache(request.app).get(principal)
    with engine.connect() as conn:
        names = services.unit_names(conn)
    run = stored_run(request)
    ctx = run_context(request, run)
    ctx.update({"coverage": _coverage_of(counts, locale),
                "coverage_as_of": long_date(as_of, locale, with_time=True),
                "unit_name": names.get(principal.unit_id or "", principal.unit_id or ""),
                "indicators": _unit_indicators(run, principal.unit_id, locale),
                "titles": services.indicator_titles()})
    return render(request, "dashboard.html", ctx)


def _own_worklist(conn: Any, actor: Any, unit_id: str | None) -> list[Any]:
    """The unit's worklist stages with a coverage status: the worklist service's bulk
    path (unit scope and care relations checked, a few queries), else ``due_list``."""
    try:
        from utfall.care.worklist import _visible
    except ImportError:  # pragma: no cover - older care service
        from utfall.care import due_list

        return due_list(conn, actor, unit_id=unit_id, statuses=COVERAGE_STATUSES)
    rows = _visible(conn, actor, unit_id, services.today())
    return [r for r in rows if r.status in COVERAGE_STATUSES]


class CoverageCache:
    """Coverage counts per unit, at most ``max_age`` seconds old.

    Counting a large unit's worklist runs the scheduling engine over every enrolment
    (about a second for a LARO unit of the demo), so the counts are kept per unit: a
    page shows the kept counts with their time and, when they are older than
    ``max_age``, refreshes them in a background thread. Only a unit never counted
    since start-up is counted inside the request. The counts hold no person data; the
    caller's unit scope is checked by the worklist service when counting.
    """

    def __init__(self, engine: Any, max_age: float = 60.0) -> None:
        self.engine = engine
        self.max_age = max_age
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[float, dict[str, int], dt.datetime]] = {}
        self._busy: set[str] = set()

    def count(self, actor: Any, unit_id: str | None) -> tuple[dict[str, int], dt.datetime]:
        """Count now (and keep the result)."""
        with self.engine.connect() as conn:
            items = _own_worklist(conn, actor, unit_id)
        counts: dict[str, int] = {}
        for item in items:
            counts[item.status] = counts.get(item.status, 0) + 1
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            self._kept[str(unit_id)] = (time.monotonic(), counts, now)
        return counts, now

    def get(self, principal: Principal) -> tuple[dict[str, int], dt.datetime]:
        """The unit's counts: kept ones (refreshed in the background when old)."""
        from utfall.access.policy import require_unit_scope

        unit = str(principal.unit_id)
        with self._lock:
            kept = self._kept.get(unit)
        if kept is None:
            return self.count(principal.actor, principal.unit_id)
        with self.engine.connect() as conn:  # the caller may see this unit's list
            require_unit_scope(conn, principal.actor, principal.unit_id)
        if time.monotonic() - kept[0] > self.max_age:
            self.refresh(principal.actor, principal.unit_id)
        return kept[1], kept[2]

    def refresh(self, actor: Any, unit_id: str | None) -> None:
        """Count again in a background thread (one at a time per unit)."""
        unit = str(unit_id)
        with self._lock:
            if unit in self._busy:
                return
            self._busy.add(unit)

        def work() -> None:
            try:
                self.count(actor, unit_id)
            except Exception:  # the kept counts stay; the next page tries again
                logging.getLogger("utfall.web").warning("coverage refresh failed",
                                                        exc_info=True)
            finally:
                with self._lock:
                    self._busy.discard(unit)

        threading.Thread(target=work, daemon=True, name="utfall-coverage").start()


def coverage_cache(app: Any) -> CoverageCache:
    """The app's coverage cache (made on first use)."""
    cache = getattr(app.state, "coverage", None)
    if cache is None:
        cache = app.state.coverage = CoverageCache(app.state.engine)
    return cache


def _coverage_of(counts: dict[str, int], locale: str = "sv") -> dict[str, Any]:
    """Follow-up coverage of the unit's own worklist: exact counts (operational data of
    the own unit, not a published aggregate) and the share done of those due."""
    done = sum(v for k, v in counts.items() if k.startswith("done"))
    expected = done + counts.get("missed", 0) + counts.get("overdue", 0)
    share = done / expected if expected else None
    return {"counts": {k: number(v, 0, locale) for k, v in counts.items()},
            "done": number(done, 0, locale), "expected": number(expected, 0, locale),
            "share": share, "share_text": percent(share, locale) if share is not None else "–"}


def _unit_indicators(run: StoredRun | None, unit_id: str | None, locale: str = "sv"
                     ) -> list[dict[str, Any]]:
    """The unit's latest published year per indicator beside the region, with the
    funnel verdict of that year in words (all from the run's protected release)."""
    if run is None:
        return []
    from utfall.analytics.semantics.catalogue import load_catalogue

    ids = [i.id for i in load_catalogue().indicators]
    kinds = {i: _kind(i) for i in ids}
    out = []
    for item in unit_overview(run, unit_id, kinds, ids):
        kind, mine, region = item["kind"], item["unit"], item["region"]
        verdict = ""
        if kind == "proportion" and mine["value"] is not None:
            points, _ = run.funnel_rows(item["indicator_id"], "unit_id", str(item["period"]))
            point = next((p for p in points if p["level"] == unit_id), None)
            if point is not None:
                verdict = t(outlier_words(point["flag"] or ""), locale)
        out.append({"indicator_id": item["indicator_id"], "period": item["period"],
                    "numerator": _count(mine["numerator_display"], locale),
                    "denominator": _count(mine["denominator_display"], locale),
                    "value": value_text(kind, mine["value"], mine["value_display"], locale),
                    "ci": ci_text(kind, mine, locale),
                    "region": value_text(kind, region["value"], region["value_display"],
                                         locale) if region else "–",
                    "verdict": verdict, "suppressed": mine["suppressed"],
                    "reason": mine["suppression_reason"]})
    return out


def _count(display: Any, locale: str) -> str:
    from utfall.web.formats import shown

    return shown(display, locale)
