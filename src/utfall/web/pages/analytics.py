"""Analytics pages: the indicator explorer (table, trend, downloads), funnel plots that
name every unit, and the regional table — all read from the latest stored run
(:func:`utfall.analytics.runs.read_stored_run`), never computed on a page load."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from utfall.analytics.explorer import (
    BREAKDOWNS,
    FILTERS,
    Query,
    explore,
    funnel_view,
    group_of,
    outlier_words,
    unit_attributes,
)
from utfall.analytics.runs import FUNNEL_BREAKDOWNS, StoredRun, read_stored_run
from utfall.i18n import t
from utfall.web import services
from utfall.web.deps import needs_role
from utfall.web.formats import long_date, number, percent, shown
from utfall.web.render import local, locale_of, render
from utfall.web.security import Principal

router = APIRouter(include_in_schema=False)
ANALYSTS = ("analyst", "unit_manager")


# ------------------------------------------------------------------ shared helpers


def stored_run(request: Request) -> StoredRun | None:
    """The latest stored run (None: none yet; the page says so)."""
    return read_stored_run()


def run_context(request: Request, run: StoredRun | None) -> dict[str, Any]:
    """What every analytics page says about the run: data up to, computed when, a run
    under way (admins may start one on /admin/runs)."""
    job = getattr(request.app.state, "runs", None)
    locale = locale_of(request)
    return {"run": run, "run_busy": bool(job and job.running),
            "data_until": long_date(run.data_until, locale) if run and run.data_until else "",
            "computed_at": long_date(run.computed_at, locale, with_time=True)
            if run and run.computed_at else ""}


def catalogue_menu(locale: str) -> list[dict[str, Any]]:
    """Indicators grouped for the picker, with their definitions."""
    from utfall.analytics.semantics.catalogue import load_catalogue

    groups: dict[str, list[Any]] = {}
    for ind in load_catalogue().indicators:
        groups.setdefault(group_of(ind.id), []).append(ind)
    order = ["kva", "medication", "laro", "outcomes", "care", "rates", "other"]
    return [{"key": g, "label": t(f"analytics.group.{g}", locale), "indicators": groups[g]}
            for g in order if g in groups]


def level_labeller(breakdown: str, units: dict[str, dict[str, str]], locale: str
                   ) -> Callable[[str | None], str]:
    """Human label of a level of ``breakdown`` (unit names, never raw codes)."""
    from utfall.analytics.regional import group_label

    def label(level: str | None) -> str:
        if level is None or breakdown == "total":
            return t("analytics.level.region", locale)
        if level == "unknown":
            return t("analytics.level.unknown", locale)
        if breakdown == "unit_id":
            return units.get(level, {}).get("name") or level
        if breakdown == "principal_type":
            return t(f"web.principal.{level}", locale)
        if breakdown == "care_level":
            return t(f"analytics.care_level.{level}", locale)
        if breakdown == "sex":
            return t(f"web.person.sex.{level}", locale)
        if breakdown == "dx_group":
            return group_label(level, locale)
        if breakdown == "municipality":
            key = f"analytics.municipality.{level}"
            name = t(key, locale)
            return name if name != key else t("analytics.municipality.other", locale, code=level)
        if breakdown == "age_band":
            return t("analytics.age_band", locale, band=level.replace("-", "–"))
        return level

    return label


def _units(request: Request) -> dict[str, dict[str, str]]:
    with request.app.state.engine.connect() as conn:
        return unit_attributes(services.units(conn))


def value_text(kind: str, value: Any, display: Any, locale: str) -> str:
    """A published value as shown (per cent for proportions), else its mask."""
    if value is None:
        return str(display or "–")
    if kind in ("proportion", "retention", "time_to_share"):
        return percent(value, locale)
    if kind == "count":
        return number(value, 0, locale)
    return number(value, 1, locale)


def ci_text(kind: str, row: dict[str, Any], locale: str) -> str:
    """``4,1–7,9 %`` (or empty when not published)."""
    lo, hi = row.get("ci_low"), row.get("ci_high")
    if lo is None or hi is None or row.get("value") is None:
        return ""
    if kind in ("proportion", "retention", "time_to_share"):
        return f"{number(lo * 100, 1, locale)}–{percent(hi, locale)}"
    return f"{number(lo, 1, locale)}–{number(hi, 1, locale)}"


def _kind(indicator_id: str) -> str:
    from utfall.analytics.semantics.catalogue import load_catalogue

    try:
        ind = load_catalogue().get(indicator_id)
    except KeyError:
        return ""
    if ind.kind == "time_to" and ind.statistic == "share":
        return "time_to_share"
    if ind.kind == "change" and ind.change and ind.change.statistic == "share_improved":
        return "proportion"
    return ind.kind


def explorer_table(run: StoredRun, query: Query, units: dict[str, dict[str, str]],
                   locale: str) -> dict[str, Any]:
    """The explorer's table as display strings (page and downloads use this one
    function, so a download holds exactly what the page shows) plus the trend data."""
    view = explore(run, query, units)
    kind = _kind(query.indicator)
    label = level_labeller(query.breakdown, units, locale)
    header = [t(f"analytics.breakdown.{query.breakdown}", locale), t("web.col.period", locale),
              t("web.col.numerator", locale), t("web.col.denominator", locale),
              t("web.col.value", locale), t("analytics.col.ci", locale)]
    rows = []
    for r in view["rows"]:
        rows.append({"cells": [label(str(r["level"])), str(r["period"]),
                               shown(r["numerator_display"], locale),
                               shown(r["denominator_display"], locale),
                               value_text(kind, r["value"], r["value_display"], locale),
                               ci_text(kind, r, locale)],
                     "raw": r, "masked": bool(r["suppressed"])})
    return {**view, "header": header, "table": rows, "kind": kind, "label": label}


# ------------------------------------------------------------------ explorer


@router.get("/analytics", response_class=HTMLResponse)
def analytics(request: Request,
              principal: Principal = Depends(needs_role(*ANALYSTS))) -> Response:
    """The indicator explorer (state in the query string) and the regional table."""
    from utfall.analytics.regional import regional_html_fragment
    from utfall.analytics.semantics.catalogue import load_catalogue
    from utfall.web.analytics_charts import trend_svg

    locale = locale_of(request)
    run = stored_run(request)
    ctx = run_context(request, run)
    query = Query.from_params(request.query_params)
    catalogue = load_catalogue()
    if query.indicator not in catalogue.ids:
        query.indicator = catalogue.ids[0]
    indicator = catalogue.get(query.indicator)
    if query.breakdown not in indicator.allowed_breakdowns:
        query.breakdown = "total"
    units = _units(request)
    ctx.update({"query": query, "indicator": indicator, "menu": catalogue_menu(locale),
                "breakdowns": [b for b in BREAKDOWNS if b in indicator.allowed_breakdowns],
                "filters": FILTERS, "units": sorted(units.values(), key=lambda u: u["name"]),
                "options": _filter_options(units, locale), "regional": None, "view": None,
                "trend": ""})
    if run is not None:
        view = explorer_table(run, query, units, locale)
        ctx["view"] = view
        title = t("analytics.trend.title", locale, indicator=local(indicator.title, locale))
        ctx["trend"] = trend_svg(view["series"], view["periods"], title, locale,
                                 view["label"], share=view["kind"] != "count"
                                 and view["kind"] not in ("rate", "change"))
        ctx["trend_rows"] = [(view["label"](s["level"]), p["period"],
                              value_text(view["kind"], p["value"], p["value_display"], locale),
                              ci_text(view["kind"], p, locale))
                             for s in view["series"] for p in s["points"]]
        ctx["download"] = urlencode(query.params())
        if run.regional is not None:
            ctx["regional"] = regional_html_fragment(run.regional, locale)
    return render(request, "explorer.html", ctx)


def _filter_options(units: dict[str, dict[str, str]], locale: str) -> dict[str, list[tuple]]:
    from utfall.analytics.regional import DX_GROUPS, group_label

    orgs = sorted({u["organisation"] for u in units.values()})
    principals = sorted({u["principal_type"] for u in units.values()})
    levels = sorted({u["care_level"] for u in units.values() if u["care_level"]})
    return {
        "unit": [(u["unit_id"], u["name"]) for u in sorted(units.values(),
                                                           key=lambda u: u["name"])],
        "organisation": [(o, o) for o in orgs],
        "principal": [(p, t(f"web.principal.{p}", locale)) for p in principals],
        "care_level": [(c, t(f"analytics.care_level.{c}", locale)) for c in levels],
        "sex": [("F", t("web.person.sex.F", locale)), ("M", t("web.person.sex.M", locale))],
        "age_band": [(b, t("analytics.age_band", locale, band=b.replace("-", "–")))
                     for b in ("0-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")],
        "dx_group": [(g, group_label(g, locale)) for g in DX_GROUPS],
    }


@router.get("/analytics/download.{fmt}")
def download(request: Request, fmt: str,
             principal: Principal = Depends(needs_role(*ANALYSTS))) -> Response:
    """The explorer's table exactly as shown, as CSV (semicolons, UTF-8 with BOM, for
    Swedish spreadsheets) or XLSX (numbers as numbers, masks as text)."""
    from utfall.analytics.semantics.catalogue import load_catalogue

    if fmt not in ("csv", "xlsx"):
        raise HTTPException(404)
    run = stored_run(request)
    if run is None:
        raise HTTPException(404)
    locale = locale_of(request)
    query = Query.from_params(request.query_params)
    catalogue = load_catalogue()
    if query.indicator not in catalogue.ids:
        raise HTTPException(404)
    indicator = catalogue.get(query.indicator)
    if query.breakdown not in indicator.allowed_breakdowns:
        query.breakdown = "total"
    units = _units(request)
    view = explorer_table(run, query, units, locale)
    title = local(indicator.title, locale)
    name = f"utfall-{query.indicator}-{query.breakdown}"
    notes = [title, t("analytics.download.run", locale, run=run.run_id,
                      until=long_date(run.data_until, locale) if run.data_until else "–"),
             _rules_line(run, locale)]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        from utfall.reports.safe_cells import neutralise_row

        writer.writerow(view["header"])
        for row in view["table"]:
            writer.writerow(neutralise_row(row["cells"]))
        return Response("\ufeff" + buffer.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    data = _xlsx(view, notes, locale)
    return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                                     "spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})


def _rules_line(run: StoredRun, locale: str) -> str:
    from utfall.analytics.disclosure import describe_applied

    return f"{t('analytics.disclosure', locale)}: {describe_applied(run.results, locale)}"


def _xlsx(view: dict[str, Any], notes: list[str], locale: str) -> bytes:
    """The shown table in a workbook: published numbers as numbers (shares with a
    one-decimal per-cent format), masks as the same text as on the page."""
    from openpyxl import Workbook

    from utfall.analytics.regional import workbook_bytes

    wb = Workbook()
    ws = wb.active
    ws.title = t("analytics.download.sheet", locale)
    ws.append(view["header"])
    share = view["kind"] in ("proportion", "retention", "time_to_share")
    for row in view["table"]:
        r, cells = row["raw"], row["cells"]
        out: list[Any] = [cells[0], int(r["period"]) if str(r["period"]).isdigit()
                          else cells[1]]
        for col in ("numerator", "denominator"):
            out.append(r[col] if r[col] is not None else cells[len(out)])
        out.append(r["value"] if r["value"] is not None else cells[4])
        out.append(cells[5])
        ws.append(out)
        if share and r["value"] is not None:
            ws.cell(row=ws.max_row, column=5).number_format = "0.0%"
    for col, width in zip("ABCDEF", (34, 8, 12, 12, 12, 18), strict=True):
        ws.column_dimensions[col].width = width
    info = wb.create_sheet(t("analytics.download.notes", locale))
    for line in notes:
        info.append([line])
    return workbook_bytes(wb)


# ------------------------------------------------------------------ funnel plots


@router.get("/analytics/funnel", response_class=HTMLResponse)
def funnel_page(request: Request, indicator: str = "", by: str = "unit_id", year: str = "",
                care_level: str = "",
                principal: Principal = Depends(needs_role(*ANALYSTS))) -> Response:
    """Funnel plot of one indicator for units, organisations or principal types, for an
    explicitly chosen (and shown) year; every point named, outliers in words."""
    from utfall.analytics.semantics.catalogue import load_catalogue
    from utfall.web.analytics_charts import funnel_svg

    locale = locale_of(request)
    run = stored_run(request)
    ctx = run_context(request, run)
    catalogue = load_catalogue()
    proportions = [i for i in catalogue.indicators if i.kind == "proportion"]
    chosen = next((i for i in proportions if i.id == indicator), proportions[0])
    by = by if by in FUNNEL_BREAKDOWNS else "unit_id"
    units = _units(request)
    label = level_labeller(by, units, locale)
    levels = sorted({u["care_level"] for u in units.values() if u["care_level"]})
    care_level = care_level if by == "unit_id" and care_level in levels else ""
    ctx.update({"proportions": proportions, "chosen": chosen, "by": by,
                "bys": FUNNEL_BREAKDOWNS, "view": None, "funnel_svg": "", "rows": [],
                "care_levels": [(c, t(f"analytics.care_level.{c}", locale)) for c in levels],
                "care_level": care_level})
    if run is not None:
        view = funnel_view(run, chosen.id, by, year or None)
        if care_level:  # like with like: only units of one care level (same limits)
            view["points"] = [p for p in view["points"]
                              if units.get(str(p["level"]), {}).get("care_level") == care_level]
        ctx["view"] = view
        if view["year"] is not None:
            def verdict(flag: str) -> str:
                return t(outlier_words(flag), locale)

            title = t("analytics.funnel.title", locale, indicator=local(chosen.title, locale),
                      year=view["year"])
            ctx["funnel_svg"] = funnel_svg(view["points"], view["curves"], view["target"], title,
                                    locale, lambda lv: label(lv), verdict)
            ctx["rows"] = sorted(
                ({"name": label(str(p["level"])), "n": number(p["denominator"], 0, locale),
                  "k": number(p["numerator"], 0, locale),
                  "value": percent(p["value"], locale), "flag": p["flag"] or "",
                  "words": verdict(p["flag"] or ""),
                  "limits": f"{number(p['low_998'] * 100, 1, locale)}–"
                            f"{percent(p['high_998'], locale)}"}
                 for p in view["points"]), key=lambda r: (r["flag"] == "", r["name"]))
            ctx["region_value"] = percent(view["target"], locale)
    return render(request, "analytics.html", ctx)
