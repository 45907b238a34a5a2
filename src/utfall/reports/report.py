"""The full report: regional table, indicators by unit and year, funnels, data quality.

Build once (:func:`build_report`), render many ways: self-contained HTML (Jinja2,
charts as inline SVG), PDF (WeasyPrint from the same HTML) and XLSX (one sheet per
table). Every number in a :class:`Report` has passed
:func:`utfall.analytics.disclosure.apply_disclosure` (or the regional table's
protection); the renderers refuse tables that have not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa
from jinja2 import Environment, PackageLoader, select_autoescape

from utfall.analytics.disclosure import (
    DisclosureRules,
    apply_disclosure,
    describe_applied,
    is_protected,
    load_rules,
)
from utfall.analytics.regional import (
    COUNT_COLUMNS,
    KVA_COLUMNS,
    group_label,
    kva_label,
    regional_table,
    workbook_bytes,
)
from utfall.reports.charts import funnel_chart, trend_chart
from utfall.reports.quality import QUALITY_TITLES, quality_results, silent_units

LOCALES = ("sv", "en")
PROPORTION_KINDS = {"proportion", "retention"}

TEXT: dict[str, dict[str, str]] = {
    "sv": {
        "title": "Utfall – uppföljning av beroendevården",
        "generated": "Skapad",
        "source": "Underlag",
        "rules": "Röjandekontroll",
        "catalogue": "Indikatorkatalog, version",
        "toc": "Innehåll",
        "regional": "Personer med huvuddiagnos F10–F19 och KVÅ-åtgärder per substansgrupp och år",
        "regional_intro": (
            "Antal personer med kontakt där diagnosen var huvuddiagnos, per substansgrupp och "
            "år, och antal personer med respektive KVÅ-åtgärd registrerad samma år vid en "
            "sådan kontakt."
        ),
        "regional_note": (
            "Samma person kan förekomma i flera celler (flera grupper och åtgärder), så "
            "värdena kan inte summeras."
        ),
        "group": "Grupp",
        "year": "År",
        "all_persons": "Alla personer",
        "indicators": "Indikatorer per enhet och år",
        "no_indicators": (
            "Indikatorkatalogen har inte beräknats för den här rapporten; rapporten "
            "innehåller regiontabellen och datakvalitet."
        ),
        "period": "År",
        "numerator": "Täljare",
        "denominator": "Nämnare",
        "value": "Värde",
        "ci": "95 % KI",
        "unit": "Enhet",
        "region": "Hela regionen",
        "trend": "Utveckling per enhet",
        "funnel": "Trattdiagram (funnel plot) – enheter jämförda med regionen",
        "funnel_note": (
            "Linjerna visar 95 % och 99,8 % kontrollgränser runt regionens värde. Enheter "
            "vars värden döljs av röjandekontrollen visas inte."
        ),
        "by_unit": "Värde per enhet och år (antal i nämnaren inom parentes)",
        "target": "Målnivå",
        "quality": "Datakvalitet",
        "quality_intro": (
            "Enheter registrerar olika och stigma leder till underregistrering; läs varje "
            "indikator tillsammans med datakvaliteten för enheten."
        ),
        "flag_note": "⚠ = kontrollen signalerar ett möjligt kvalitetsproblem.",
        "silent": "Enheter utan någon kontakt under året",
        "disclosure": "Röjandekontroll",
        "suppressed_cells": "Antal dolda celler",
        "legend": "Teckenförklaring",
        "legend_primary": "litet antal (1–4)",
        "legend_secondary": "dold för att skydda en annan cell (sekundär undertryckning)",
        "legend_value": "andel/medelvärde visas inte (för liten nämnare eller dolt antal)",
        "percent_suffix": " %",
        "direction_higher": "Högre är bättre",
        "direction_lower": "Lägre är bättre",
        "direction_none": "",
    },
    "en": {
        "title": "Utfall – outcome follow-up in addiction care",
        "generated": "Generated",
        "source": "Data source",
        "rules": "Disclosure control",
        "catalogue": "Indicator catalogue, version",
        "toc": "Contents",
        "regional": "Persons with main diagnosis F10–F19 and KVÅ interventions by group and year",
        "regional_intro": (
            "Number of persons with a contact where the diagnosis was the main diagnosis, "
            "by substance group and year, and number of persons with each KVÅ intervention "
            "registered the same year on such a contact."
        ),
        "regional_note": (
            "The same person may appear in several cells (several groups and "
            "interventions), so values do not add up."
        ),
        "group": "Group",
        "year": "Year",
        "all_persons": "All persons",
        "indicators": "Indicators by unit and year",
        "no_indicators": (
            "The indicator catalogue was not computed for this report; it contains the "
            "regional table and data quality."
        ),
        "period": "Year",
        "numerator": "Numerator",
        "denominator": "Denominator",
        "value": "Value",
        "ci": "95% CI",
        "unit": "Unit",
        "region": "Whole region",
        "trend": "Trend by unit",
        "funnel": "Funnel plot – units compared with the region",
        "funnel_note": (
            "Lines show 95% and 99.8% control limits around the regional value. Units whose "
            "values are masked by disclosure control are not shown."
        ),
        "by_unit": "Value by unit and year (denominator in brackets)",
        "target": "Target",
        "quality": "Data quality",
        "quality_intro": (
            "Units code differently and stigma leads to under-coding; read every indicator "
            "together with the unit's data quality."
        ),
        "flag_note": "⚠ = the check signals a possible data-quality problem.",
        "silent": "Units without any contact in the year",
        "disclosure": "Disclosure control",
        "suppressed_cells": "Masked cells",
        "legend": "Legend",
        "legend_primary": "small count (1–4)",
        "legend_secondary": "masked to protect another cell (secondary suppression)",
        "legend_value": "percentage/mean not shown (small denominator or masked count)",
        "percent_suffix": "%",
        "direction_higher": "Higher is better",
        "direction_lower": "Lower is better",
        "direction_none": "",
    },
}


@dataclass
class Report:
    """Everything a report shows, already disclosure-controlled."""

    regional: pa.Table
    results: pa.Table | None
    quality: pa.Table
    rules: DisclosureRules
    source: str = ""
    generated_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    )
    catalogue_version: str | None = None
    unit_names: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    silent_units: dict[str, list[str]] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse to render anything that has not passed disclosure control."""
        for name in ("regional", "results", "quality"):
            table = getattr(self, name)
            if table is not None and not is_protected(table):
                raise ValueError(f"report table {name!r} has not passed disclosure control")


def _unit_names(tables: Mapping[str, ir.Table]) -> dict[str, str]:
    try:
        unit = tables["unit"].select("unit_id", "name").to_pyarrow().to_pylist()
    except Exception:
        return {}
    return {r["unit_id"]: r["name"] or r["unit_id"] for r in unit if r["unit_id"]}


def build_report(
    tables: Mapping[str, ir.Table],
    *,
    results: pa.Table | None = None,
    compute: bool = True,
    indicators: Sequence[str] | None = None,
    rules: DisclosureRules | None = None,
    source: str = "",
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Compute and protect everything the report shows.

    ``results`` are raw indicator results (computed with
    ``utfall.analytics.executor.run.compute_catalogue`` when None and ``compute``); they are
    passed through :func:`apply_disclosure` here.
    """
    rules = rules or load_rules()
    notes: list[str] = []
    catalogue_version = None
    protected = regional = None
    if results is None and compute:
        # one protected release: the report shows a subset of the same masks as
        # every other output of this data state (regional table included)
        from utfall.analytics.regional import regional_display
        from utfall.analytics.runs import compute_release
        from utfall.analytics.semantics.catalogue import load_catalogue

        catalogue = load_catalogue()
        if indicators is not None:
            known = {i.id for i in catalogue.indicators}
            unknown = [i for i in indicators if i not in known]
            if unknown:  # the CLI maps KeyError to exit 1 ("unknown indicator")
                raise KeyError(", ".join(unknown))
        release = compute_release(tables, rules, catalogue=catalogue, progress=progress)
        protected = release.subset(indicators=indicators)
        regional = regional_display(release, rules)
        catalogue_version = catalogue.version
    elif results is not None and indicators:
        keep = set(indicators)
        results = results.filter(pa.array([i in keep for i in results["indicator_id"].to_pylist()]))
    if protected is None and results is not None:
        protected = apply_disclosure(results, rules)
    if protected is None:
        notes.append("no_indicators")
    return Report(
        regional=regional if regional is not None else regional_table(tables, rules),
        results=protected,
        quality=apply_disclosure(quality_results(tables), rules),
        rules=rules,
        source=source,
        catalogue_version=catalogue_version,
        unit_names=_unit_names(tables),
        notes=notes,
        silent_units=silent_units(tables),
    )


# --------------------------------------------------------------------------- formatting


def _number(v: float, decimals: int, locale: str) -> str:
    text = f"{v:,.{decimals}f}"
    if locale == "sv":
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text


def format_value(
    value: float | None, display: str, kind: str, locale: str, *, per: int | None = None
) -> str:
    """A published value for people: percent for proportions, grouped numbers otherwise."""
    if value is None:
        return display or ""
    if kind in PROPORTION_KINDS or kind == "proportion_like":
        return _number(value * 100, 1, locale) + TEXT[locale]["percent_suffix"]
    if kind == "count":
        return _number(value, 0, locale)
    return _number(value, 1, locale)


def _indicator_meta() -> dict[str, Any]:
    try:
        from utfall.analytics.semantics.catalogue import load_catalogue

        return {i.id: i for i in load_catalogue().indicators}
    except Exception:
        return {}


def _kind(ind: Any) -> str:
    if ind is None:
        return "proportion_like"
    kind = ind.kind
    if kind == "change" and ind.change is not None and ind.change.statistic == "share_improved":
        return "proportion"
    if kind == "time_to" and ind.statistic == "share":
        return "proportion"
    return kind


def _indicator_sections(report: Report, locale: str, charts: bool) -> list[dict[str, Any]]:
    if report.results is None or report.results.num_rows == 0:
        return []
    meta = _indicator_meta()
    t = TEXT[locale]
    rows = report.results.to_pylist()
    order: list[str] = []
    for r in rows:
        if r["indicator_id"] not in order:
            order.append(r["indicator_id"])
    sections = []
    for ind_id in order:
        ind = meta.get(ind_id)
        kind = _kind(ind)
        mine = [r for r in rows if r["indicator_id"] == ind_id]
        totals = sorted((r for r in mine if r["breakdown"] == "total"), key=lambda r: r["period"])
        units = [r for r in mine if r["breakdown"] == "unit_id"]
        periods = sorted({r["period"] for r in mine})

        def fmt(r: dict[str, Any], kind: str = kind) -> str:
            return format_value(r["value"], r["value_display"], kind, locale)

        def ci(r: dict[str, Any], kind: str = kind) -> str:
            if r["ci_low"] is None or r["ci_high"] is None:
                return r["ci_low_display"] if r["ci_low_display"] else ""
            return f"{format_value(r['ci_low'], '', kind, locale)}–" + format_value(
                r["ci_high"], "", kind, locale
            )

        total_rows = [
            {
                "period": r["period"],
                "numerator": r["numerator_display"],
                "denominator": r["denominator_display"],
                "value": fmt(r),
                "ci": ci(r),
            }
            for r in totals
        ]
        unit_ids = sorted({r["level"] for r in units})
        grid = []
        for u in unit_ids:
            cells = []
            for p in periods:
                hit = next((r for r in units if r["level"] == u and r["period"] == p), None)
                if hit is None:
                    cells.append("")
                else:
                    den = hit["denominator_display"]
                    cells.append(f"{fmt(hit)} ({den})" if den else fmt(hit))
            grid.append({"unit": report.unit_names.get(u, u), "cells": cells})
        trend_svg = funnel_svg = None
        if charts:
            points = [
                {"period": r["period"], "series": t["region"], "value": r["value"]} for r in totals
            ] + [
                {
                    "period": r["period"],
                    "series": report.unit_names.get(r["level"], r["level"]),
                    "value": r["value"],
                }
                for r in units
            ]
            title = ind.title.sv if ind and locale == "sv" else (ind.title.en if ind else ind_id)
            trend_svg = trend_chart(
                points,
                title=title,
                y_title=t["value"],
                percent=kind in PROPORTION_KINDS,
                locale=locale,
                target=ind.target if ind is not None else None,
            )
            if kind in PROPORTION_KINDS and totals and units:
                # the latest period whose regional value and at least two unit points
                # are published (masked rows are null: a withheld latest year must not
                # drop the plot, nor be drawn from unpublished numbers)
                for last in reversed(periods):
                    tot = next((r for r in totals if r["period"] == last), None)
                    p0 = tot["value"] if tot else None
                    pts = [
                        {
                            "series": report.unit_names.get(r["level"], r["level"]),
                            "denominator": r["denominator"],
                            "value": r["value"],
                        }
                        for r in units
                        if r["period"] == last
                        and r["value"] is not None
                        and r["denominator"] is not None
                    ]
                    if p0 is not None and len(pts) >= 2:
                        funnel_svg = funnel_chart(
                            pts, p0, title=f"{title} – {last}", locale=locale
                        )
                        break
        sections.append(
            {
                "id": ind_id,
                "title": (ind.title.sv if locale == "sv" else ind.title.en) if ind else ind_id,
                "definition": (ind.definition.sv if locale == "sv" else ind.definition.en)
                if ind
                else "",
                "direction": t.get(f"direction_{ind.direction}", "") if ind else "",
                "target": format_value(ind.target, "", kind, locale)
                if ind is not None and ind.target is not None
                else "",
                "totals": total_rows,
                "periods": periods,
                "grid": grid,
                "trend_svg": trend_svg,
                "funnel_svg": funnel_svg,
            }
        )
    return sections


def _regional_rows(report: Report, locale: str) -> list[dict[str, Any]]:
    out = []
    previous = None
    for r in report.regional.to_pylist():
        label = group_label(r["dx_group"], locale) if r["dx_group"] != previous else ""
        previous = r["dx_group"]
        out.append({"label": label, "year": r["year"], "cells": [r[c] for c in COUNT_COLUMNS]})
    return out


def _quality_sections(report: Report, locale: str) -> list[dict[str, Any]]:
    rows = report.quality.to_pylist()
    out = []
    for ind_id, titles in QUALITY_TITLES.items():
        mine = [r for r in rows if r["indicator_id"] == ind_id]
        if not mine:
            continue
        periods = sorted({r["period"] for r in mine})
        levels = sorted({r["level"] for r in mine})
        index = {(r["level"], r["period"]): r for r in mine}
        grid = []
        for lev in levels:
            cells = []
            for p in periods:
                hit = index.get((lev, p))
                if hit is None:
                    cells.append("")
                    continue
                if ind_id == "dq_volume_drop" and hit["value"] is not None:
                    val = ("+" if hit["value"] > 0 else "") + format_value(
                        hit["value"], "", "proportion", locale
                    )
                else:
                    val = format_value(hit["value"], hit["value_display"], "proportion", locale)
                # a flag is shown only next to a published value (it derives from the counts)
                mark = " ⚠" if hit.get("flag") and hit["value"] is not None else ""
                cells.append(
                    f"{val}{mark} ({hit['numerator_display']}/{hit['denominator_display']})"
                )
            grid.append({"unit": report.unit_names.get(lev, lev), "cells": cells})
        out.append({"id": ind_id, "title": titles[locale], "periods": periods, "grid": grid})
    return out


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("utfall.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report_html(report: Report, locale: str = "sv", *, charts: bool = True) -> str:
    """The whole report as one self-contained HTML page in ``locale`` (``sv``/``en``)."""
    if locale not in LOCALES:
        raise ValueError(f"locale must be one of {LOCALES}")
    report.check()
    t = TEXT[locale]
    n_masked = sum(
        int((tab.schema.metadata or {}).get(b"suppressed_cells", b"0"))
        for tab in (report.regional, report.results, report.quality)
        if tab is not None
    )
    template = _environment().get_template("report.html.j2")
    return template.render(
        t=t,
        locale=locale,
        report=report,
        rules_text=describe_applied(report.regional, locale) or report.rules.describe(locale),
        kva=[{"code": c, "name": kva_label(c, locale)} for c in KVA_COLUMNS],
        regional_rows=_regional_rows(report, locale),
        indicators=_indicator_sections(report, locale, charts),
        quality=_quality_sections(report, locale),
        show_no_indicators="no_indicators" in report.notes,
        n_masked=n_masked,
        primary=report.rules.primary_display,
        secondary=report.rules.secondary_display,
        value_mask=report.rules.value_display,
    )


def render_report_pdf(html: str, path: str | Path | None = None) -> bytes:
    """PDF of a rendered report (WeasyPrint, same HTML); returns the bytes."""
    from weasyprint import HTML

    data = HTML(string=html, base_url=".").write_pdf()
    assert data is not None
    if path is not None:
        Path(path).write_bytes(data)
    return data


def _sheet_value(display: str | None) -> Any:
    if display is None:
        return None
    return int(display) if display.isdigit() else display


def render_report_xlsx(report: Report, locale: str = "sv", path: str | Path | None = None) -> bytes:
    """XLSX workbook, one sheet per table (regional, indicators, data quality, rules)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    report.check()
    t = TEXT[locale]
    sv = locale == "sv"
    wb = Workbook()
    ws = wb.active
    ws.title = "Regionalt" if sv else "Regional"
    ws.append([t["group"], "dx_group", t["year"], *KVA_COLUMNS, t["all_persons"]])
    for r in report.regional.to_pylist():
        ws.append(
            [
                group_label(r["dx_group"], locale),
                r["dx_group"],
                r["year"],
                *[_sheet_value(r[c]) for c in COUNT_COLUMNS],
            ]
        )
    ws.append([])
    ws.append([t["regional_note"]])

    meta = _indicator_meta()
    columns = [
        "indicator_id",
        "title",
        "period",
        "breakdown",
        "level",
        "numerator",
        "denominator",
        "value",
        "ci_low",
        "ci_high",
        "suppression_reason",
        "flag",
    ]
    for name, table, titles in (
        ("Indikatorer" if sv else "Indicators", report.results, None),
        ("Datakvalitet" if sv else "Data quality", report.quality, QUALITY_TITLES),
    ):
        if table is None:
            continue
        sheet = wb.create_sheet(name)
        sheet.append(columns)
        for r in table.to_pylist():
            ind = meta.get(r["indicator_id"])
            if titles is not None:
                title = titles.get(r["indicator_id"], {}).get(locale, "")
            else:
                title = (ind.title.sv if sv else ind.title.en) if ind else ""
            level = r["level"]
            if r["breakdown"] == "unit_id":
                level = report.unit_names.get(level, level)
            sheet.append(
                [
                    r["indicator_id"],
                    title,
                    r["period"],
                    r["breakdown"],
                    level,
                    _sheet_value(r["numerator_display"]),
                    _sheet_value(r["denominator_display"]),
                    r["value"] if r["value"] is not None else (r["value_display"] or None),
                    r["ci_low"],
                    r["ci_high"],
                    r["suppression_reason"],
                    bool(r["flag"])
                    if r.get("flag") is not None and r["value"] is not None
                    else None,
                ]
            )
    rules = wb.create_sheet("Röjandekontroll" if sv else "Disclosure")
    rules.append([t["disclosure"]])
    rules["A1"].font = Font(bold=True)
    rules.append([report.rules.describe(locale)])
    rules.append([f"{t['legend']}: {report.rules.primary_display} = {t['legend_primary']}"])
    rules.append([f"{report.rules.secondary_display} = {t['legend_secondary']}"])
    rules.append([f"{report.rules.value_display} = {t['legend_value']}"])
    rules.append([f"{t['generated']}: {report.generated_at}"])
    if report.source:
        rules.append([f"{t['source']}: {report.source}"])
    if "no_indicators" in report.notes:
        rules.append([t["no_indicators"]])
    return workbook_bytes(wb, path)
