"""Gap to target, data quality and training beside the indicators (analyst, manager).

Everything is read from the latest stored run (protected results, and its protected
data-quality rows ``quality.parquet``) — never computed on a page load. Gaps come from
:func:`utfall.analytics.gaps.published_gaps` over the run's published cells only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.i18n import t
from utfall.web.deps import needs_role
from utfall.web.formats import number, percent
from utfall.web.pages.analytics import ANALYSTS, _units, run_context, stored_run
from utfall.web.render import local, locale_of, render
from utfall.web.security import Principal

router = APIRouter(include_in_schema=False)

QUALITY_AFFECTS = {
    "dq_uncoded_persons": "kva",
    "dq_missing_main_dx": "dx",
    "dq_volume_drop": "*",
    "dq_procedure_unlinked": "kva",
}
_quality_cache: dict[str, pa.Table | None] = {}


def _run_quality(run: Any) -> pa.Table | None:
    """The run's protected data-quality rows (read once per run and process)."""
    from utfall.analytics.quality import stored_quality
    from utfall.analytics.runs import runs_folder

    if run.run_id not in _quality_cache:
        _quality_cache.clear()
        _quality_cache[run.run_id] = stored_quality(Path(runs_folder()) / run.run_id)
    return _quality_cache[run.run_id]


def _affects(check: str, indicator_id: str) -> bool:
    from utfall.analytics.quality import DX_INDICATORS, KVA_INDICATORS

    scope = QUALITY_AFFECTS.get(check)
    if scope == "*":
        return True
    return indicator_id in (KVA_INDICATORS if scope == "kva" else DX_INDICATORS)


def _quality_view(run: Any, indicator_id: str, periods: list[str],
                  names: dict[str, str], locale: str) -> list[dict[str, Any]] | None:
    table = _run_quality(run)
    if table is None:
        return None
    out = []
    rows = [r for r in table.to_pylist() if r["period"] in periods]
    for check in QUALITY_AFFECTS:
        if not _affects(check, indicator_id):
            continue
        mine = [r for r in rows if r["indicator_id"] == check]
        if not mine:
            continue
        index = {(r["level"], r["period"]): r for r in mine}
        grid = []
        levels = {r["level"] for r in mine}
        for unit in sorted(levels, key=lambda u: str(names.get(u) or u).lower()):
            cells = []
            for p in periods:
                r = index.get((unit, p))
                if r is None:
                    cells.append({"text": "–", "flag": False})
                    continue
                if r["value"] is None:
                    text = r["value_display"] or "–"
                elif check == "dq_volume_drop":
                    text = ("+" if r["value"] > 0 else "") + percent(r["value"], locale)
                else:
                    text = percent(r["value"], locale)
                num = _count(r["numerator_display"], locale)
                den = _count(r["denominator_display"], locale)
                # a flag is shown only next to a published value (it derives from counts)
                flag = bool(r.get("flag")) and r["value"] is not None
                cells.append({"text": f"{text} ({num}/{den})", "flag": flag})
            grid.append({"unit": names.get(unit, unit), "cells": cells})
        out.append({"check": check, "title": t(f"quality.{check}", locale), "grid": grid})
    return out


def _count(display: str | None, locale: str) -> str:
    if display and display.isdigit():
        return number(int(display), 0, locale)
    return display or "–"


def _training_view(request: Request, indicator_id: str, values: dict[str, str],
                   names: dict[str, str], locale: str) -> dict[str, Any]:
    from utfall.analytics.training import courses_next_to, training_shares

    courses = courses_next_to(indicator_id)
    if not courses:
        return {"courses": [], "rows": []}
    try:
        with request.app.state.engine.connect() as conn:
            shares = training_shares(conn)
    except Exception:  # the table does not exist before migration 0015
        shares = {}
    rows = []
    for unit in sorted(set(values) | set(shares), key=lambda u: str(names.get(u) or u).lower()):
        cells = []
        for c in courses:
            trained, staff = shares.get(unit, {}).get(c.id, (0, 0))
            cells.append(t("quality.training_of", locale, n=trained, total=staff,
                           share=percent(trained / staff, locale)) if staff else "–")
        rows.append({"unit": names.get(unit, unit), "value": values.get(unit, "–"),
                     "cells": cells})
    return {"courses": [local(c.title, locale) for c in courses], "rows": rows,
            "empty": not shares}


@router.get("/analytics/quality", response_class=HTMLResponse)
def quality_page(request: Request,
                 principal: Principal = Depends(needs_role(*ANALYSTS))) -> Response:
    """Gaps to target per unit and region, data quality and training beside them."""
    from utfall.analytics.gaps import gap_indicators, gap_sentence, percent_text, published_gaps
    from utfall.analytics.semantics.catalogue import load_catalogue

    locale = locale_of(request)
    catalogue = load_catalogue()
    choices = gap_indicators(catalogue)
    indicator_id = request.query_params.get("indicator") or choices[0]
    if indicator_id not in choices:
        indicator_id = choices[0]
    indicator = catalogue.get(indicator_id)
    run = stored_run(request)
    ctx: dict[str, Any] = run_context(request, run)
    ctx.update({"choices": [(i, local(catalogue.get(i).title, locale)) for i in choices],
                "indicator": indicator, "indicator_id": indicator_id, "gaps": None,
                "periods": [], "year": ""})
    if run is None:
        return render(request, "quality.html", ctx)
    units = _units(request)
    names = {u: a.get("name") or u for u, a in units.items()}
    rows = run.rows(indicator_id, "total") + run.rows(indicator_id, "unit_id")
    periods = sorted({str(r["period"]) for r in rows})
    # default: the latest year whose regional row is published (a withheld latest year
    # would show no gap at all); the chosen year is always shown and can be changed
    published = sorted(str(r["period"]) for r in rows if r["breakdown"] == "total"
                       and r["numerator"] is not None and r["denominator"] is not None)
    year = request.query_params.get("year") or (published or periods or [""])[-1]
    if year not in periods and periods:
        year = (published or periods)[-1]
    table = pa.Table.from_pylist(rows) if rows else None
    gaps = [] if table is None else published_gaps(
        table, catalogue=catalogue, indicators=[indicator_id], periods=[year]).to_pylist()
    mask = ".."
    view = []
    summary = ""
    for g in gaps:
        region = g["breakdown"] == "total"
        sentence = gap_sentence(g, locale)
        if region:
            summary = sentence
        view.append({
            "unit": t("quality.region", locale) if region else names.get(g["level"], g["level"]),
            "region": region,
            "value": percent(g["value"], locale) if g["value"] is not None else mask,
            "target": percent_text(g["target"], locale) if g["target"] is not None else "–",
            "gap_pp": number(g["gap_pp"], 1, locale) if g["gap_pp"] is not None else mask,
            "gap_persons": number(g["gap_persons"], 0, locale)
            if g["gap_persons"] is not None else mask,
            "summary": sentence, "withheld": g["withheld"]})
    view.sort(key=lambda r: (not r["region"], str(r["unit"]).lower()))
    previous = [p for p in periods if p < year][-1:]
    values = {str(r["level"]): (percent(r["value"], locale) if r["value"] is not None
                                else str(r["value_display"] or "–"))
              for r in rows if r["breakdown"] == "unit_id" and str(r["period"]) == year}
    ctx.update({"gaps": view, "summary": summary, "periods": periods, "year": year,
                "quality": _quality_view(run, indicator_id, [*previous, year], names, locale),
                "quality_periods": [*previous, year],
                "training": _training_view(request, indicator_id, values, names, locale)})
    return render(request, "quality.html", ctx)
