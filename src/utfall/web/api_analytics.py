"""JSON API of the dashboard and analytics: the same use cases as the pages, read from
the latest stored run (never computed in a request). Aggregates only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from utfall.analytics.explorer import Query as ExplorerQuery
from utfall.analytics.explorer import funnel_view
from utfall.analytics.runs import FUNNEL_BREAKDOWNS, StoredRun, read_stored_run
from utfall.web.deps import needs_role
from utfall.web.pages._common import CARE
from utfall.web.security import Principal

router = APIRouter(prefix="/api")
UNAUTH: dict[int | str, dict[str, Any]] = {401: {"description": "not authenticated"},
                                           403: {"description": "role not allowed"}}
ANALYSTS = ("analyst", "unit_manager")
KEEP = ("indicator_id", "period", "breakdown", "level", "numerator_display",
        "denominator_display", "value_display", "ci_low_display", "ci_high_display",
        "suppressed", "suppression_reason")


def _run_info(run: StoredRun | None) -> dict[str, Any]:
    if run is None:
        return {"run_id": None, "data_until": None, "computed_at": None}
    return {"run_id": run.run_id, "data_until": run.data_until, "computed_at": run.computed_at}


@router.get("/dashboard", responses=UNAUTH, tags=["unit"])
def dashboard(request: Request, principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """Disclosure-controlled indicators of the caller's unit beside the region (stored run)."""
    from utfall.web.pages.dashboard import _unit_indicators

    run = read_stored_run()
    return {"unit_id": principal.unit_id, **_run_info(run),
            "indicators": _unit_indicators(run, principal.unit_id)}


@router.get("/analytics/regional", responses=UNAUTH, tags=["analytics"])
def regional(request: Request,
             principal: Principal = Depends(needs_role(*ANALYSTS))) -> Any:
    """The regional indicator table after disclosure control (aggregates only)."""
    run = read_stored_run()
    table = run.regional if run is not None else None
    return {**_run_info(run), "rows": table.to_pylist() if table is not None else []}


@router.get("/analytics/indicators", responses=UNAUTH, tags=["analytics"])
def indicators(request: Request, indicator: str | None = Query(default=None, max_length=80),
               breakdown: str | None = Query(default=None, max_length=40),
               principal: Principal = Depends(needs_role(*ANALYSTS))) -> Any:
    """Disclosure-controlled indicator results (display columns only)."""
    run = read_stored_run()
    if run is None:
        return {**_run_info(run), "rows": []}
    if indicator is not None and breakdown is not None:
        rows = run.rows(indicator, breakdown)
    else:
        rows = [r for r in run.results.to_pylist()
                if (indicator is None or r["indicator_id"] == indicator)
                and (breakdown is None or r["breakdown"] == breakdown)]
    return {**_run_info(run), "rows": [{k: r.get(k) for k in KEEP} for r in rows]}


@router.get("/analytics/explore", responses=UNAUTH, tags=["analytics"])
def explore_api(request: Request,
                principal: Principal = Depends(needs_role(*ANALYSTS))) -> Any:
    """The explorer's table for the page's query string (``indicator``, ``breakdown``,
    ``year``…, filters ``unit`` ``organisation`` ``principal`` ``care_level`` ``sex``
    ``age_band`` ``dx_group``): display strings exactly as the page shows them."""
    from utfall.web.pages.analytics import _units, explorer_table
    from utfall.web.render import locale_of

    run = read_stored_run()
    if run is None:
        return {**_run_info(run), "header": [], "rows": []}
    query = ExplorerQuery.from_params(request.query_params)
    from utfall.analytics.semantics.catalogue import load_catalogue

    if query.indicator not in load_catalogue().ids:
        raise HTTPException(404, "unknown indicator")
    view = explorer_table(run, query, _units(request), locale_of(request))
    return {**_run_info(run), "years": view["years"], "header": view["header"],
            "rows": [r["cells"] for r in view["table"]],
            "filters_not_applied": view["not_applied"]}


@router.get("/analytics/funnel", responses=UNAUTH, tags=["analytics"])
def funnel_api(request: Request, indicator: str = Query(max_length=80),
               by: str = Query(default="unit_id", max_length=40),
               year: str | None = Query(default=None, max_length=8),
               principal: Principal = Depends(needs_role(*ANALYSTS))) -> Any:
    """Stored funnel points (published cells) with limits and outlier flags."""
    if by not in FUNNEL_BREAKDOWNS:
        raise HTTPException(422, f"by must be one of {', '.join(FUNNEL_BREAKDOWNS)}")
    run = read_stored_run()
    if run is None:
        return {**_run_info(run), "year": None, "points": []}
    view = funnel_view(run, indicator, by, year)
    return {**_run_info(run), "year": view["year"], "periods": view["periods"],
            "regional_value": view["target"], "points": view["points"]}
