"""Analytics pages: the regional table and the funnel plot."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.web import services
from utfall.web.deps import needs_role
from utfall.web.render import locale_of, render
from utfall.web.security import (
    Principal,
)

router = APIRouter(include_in_schema=False)


@router.get("/analytics", response_class=HTMLResponse)
def analytics(request: Request, indicator: str = "",
              principal: Principal = Depends(needs_role("analyst", "unit_manager"))
              ) -> Response:
    """Regional report and funnel plot (aggregates only)."""
    from utfall.analytics.regional import regional_html_fragment

    locale = locale_of(request)
    aggregates = request.app.state.results.get(request.app.state.engine)
    regional = aggregates.get("regional")
    fragment = regional_html_fragment(regional, locale) if regional is not None else None
    results = aggregates.get("results")
    titles = services.indicator_titles()
    kinds = services.indicator_kinds()
    proportion_ids = sorted({r["indicator_id"] for r in results.to_pylist()
                             if r["breakdown"] == "unit_id"
                             and kinds.get(r["indicator_id"]) == "proportion"}
                            ) if results is not None else []
    chosen = indicator if indicator in proportion_ids else (proportion_ids[0] if proportion_ids
                                                            else "")
    funnel_svg = _funnel(results, chosen, locale, titles) if chosen else None
    return render(request, "analytics.html", {
        "regional": fragment, "indicators": proportion_ids, "chosen": chosen,
        "funnel": funnel_svg, "titles": titles, "errors": aggregates.get("errors", [])})


def _funnel(results: Any, indicator_id: str, locale: str, titles: dict[str, Any]) -> str | None:
    """Funnel plot of the latest period from disclosure-controlled values only."""
    from utfall.reports.charts import funnel_chart
    from utfall.web.render import local

    rows = [r for r in results.to_pylist() if r["indicator_id"] == indicator_id]
    published: dict[str, int] = {}
    for r in rows:
        if r["breakdown"] == "unit_id" and not r["suppressed"] and r["value"] is not None:
            published[str(r["period"])] = published.get(str(r["period"]), 0) + 1
    if not published:
        return None
    # the latest period among those with the most published units
    period = max(published, key=lambda p: (published[p], p))
    total = next((r for r in rows if r["breakdown"] == "total" and str(r["period"]) == period),
                 None)
    units = [{"series": r["level"], "denominator": r["denominator"], "value": r["value"]}
             for r in rows if r["breakdown"] == "unit_id" and str(r["period"]) == period
             and not r["suppressed"] and r["value"] is not None and r["denominator"]]
    if total is None or total["value"] is None or not 0 <= float(total["value"]) <= 1:
        return None
    p0 = float(total["value"])
    title = f"{local(titles.get(indicator_id), locale)} {period}"
    key = json.dumps([units, p0, title, locale], sort_keys=True, default=str)
    return services.cached_svg(key, lambda: funnel_chart(units, p0, title=title,
                                                         locale=locale))
