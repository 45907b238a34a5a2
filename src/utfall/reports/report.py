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
    protection_metadata,
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
        "gaps": "Gap till målet",
        "gaps_intro": (
            "Hur långt enheterna och regionen har kvar till målet det senaste året med "
            "publicerade värden, i procentenheter och i personer. Gap visas bara där alla "
            "antal bakom dem är publicerade."
        ),
        "gap_pp": "Gap (procentenheter)",
        "gap_persons": "Gap (personer)",
        "outliers": "Utanför kontrollgränserna",
        "above_998": "över 99,8 %-gränsen",
        "below_998": "under 99,8 %-gränsen",
        "above_95": "över 95 %-gränsen",
        "below_95": "under 95 %-gränsen",
        "no_outliers": "Ingen enhet ligger utanför 95 %-gränserna.",
        "continued": "forts.",
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
        "gaps": "Gap to target",
        "gaps_intro": (
            "How far the units and the region are from the target in the latest year with "
            "published values, in percentage points and in persons. A gap is shown only "
            "where every count behind it is published."
        ),
        "gap_pp": "Gap (percentage points)",
        "gap_persons": "Gap (persons)",
        "outliers": "Outside the control limits",
        "above_998": "above the 99.8% limit",
        "below_998": "below the 99.8% limit",
        "above_95": "above the 95% limit",
        "below_95": "below the 95% limit",
        "no_outliers": "No unit lies outside the 95% limits.",
        "continued": "cont.",
    },
}

PERIODS_PER_TABLE = 8  # unit × year tables wider than this are split into column blocks


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


def _restamp(table: pa.Table, rules: DisclosureRules) -> pa.Table:
    """The protection stamp of a stored (protected) run's table, put back if missing."""
    if is_protected(table):
        return table
    n = sum(1 for v in table["suppressed"].to_pylist() if v) if "suppressed" in \
        table.column_names else 0
    meta = dict(table.schema.metadata or {})
    meta.update(protection_metadata(rules, n))
    return table.replace_schema_metadata(meta)


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
    stored: tuple[pa.Table, pa.Table] | None = None,
    stored_quality: tuple[pa.Table, dict[str, list[str]]] | None = None,
    unit_names: dict[str, str] | None = None,
) -> Report:
    """Compute and protect everything the report shows.

    ``stored``: the protected ``(results, regional table)`` of a stored run
    (``utfall.analytics.runs.latest_release``) — nothing is recomputed. Otherwise
    ``results`` are indicator results (computed as one protected release when None and
    ``compute``); raw ones are passed through :func:`apply_disclosure` here.
    ``stored_quality``: the run's protected data-quality rows and silent units
    (``utfall.analytics.quality.stored_quality``), so ``tables`` need not be read.
    """
    rules = rules or load_rules()
    notes: list[str] = []
    catalogue_version = None
    protected = regional = None
    if stored is not None:
        # a stored run is one protected release (utfall.analytics.runs); the run file's
        # metadata replaces the protection stamp, so it is put back here
        protected, regional = (_restamp(t, rules) for t in stored)
        if indicators is not None:
            known = set(protected["indicator_id"].to_pylist())
            unknown = [i for i in indicators if i not in known]
            if unknown:
                raise KeyError(", ".join(unknown))
            keep = pa.array([i in set(indicators) for i in protected["indicator_id"].to_pylist()])
            protected = protected.filter(keep).replace_schema_metadata(protected.schema.metadata)
    elif results is None and compute:
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
        protected = results if is_protected(results) else apply_disclosure(results, rules)
    if protected is None:
        notes.append("no_indicators")
    if stored_quality is not None:
        quality, silent = _restamp(stored_quality[0], rules), stored_quality[1]
    else:
        quality = apply_disclosure(quality_results(tables), rules)
        silent = silent_units(tables)
    return Report(
        regional=regional if regional is not None else regional_table(tables, rules),
        results=protected,
        quality=quality,
        rules=rules,
        source=source,
        catalogue_version=catalogue_version,
        unit_names=unit_names if unit_names is not None else _unit_names(tables),
        notes=notes,
        silent_units=silent,
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


def _chunks(periods: Sequence[str], size: int = PERIODS_PER_TABLE) -> list[list[str]]:
    """Periods split into blocks of at most ``size`` columns (each block its own table, so
    no year is cut off the page)."""
    periods = list(periods)
    if len(periods) <= size:
        return [periods]
    n = -(-len(periods) // size)
    per = -(-len(periods) // n)
    return [periods[i : i + per] for i in range(0, len(periods), per)]


def _outliers(points: Sequence[dict[str, Any]], p0: float, t: dict[str, str]) -> list[str]:
    """Units outside the funnel limits, named in words (99,8 % before 95 %)."""
    from utfall.reports.charts import binomial_limit

    found = []
    for u in sorted(points, key=lambda u: str(u["series"])):
        n, v = int(u["denominator"]), float(u["value"])
        for q, key in ((0.999, "above_998"), (0.001, "below_998"), (0.975, "above_95"),
                       (0.025, "below_95")):
            lim = binomial_limit(p0, n, q)
            if (q > 0.5 and v > lim) or (q < 0.5 and v < lim):
                found.append(f"{u['series']}: {t[key]}")
                break
    return found


def _all_gaps(report: Report) -> dict[str, list[dict[str, Any]]]:
    """Published gaps of every indicator with a target, by indicator (computed once)."""
    from utfall.analytics.gaps import published_gaps

    out: dict[str, list[dict[str, Any]]] = {}
    if report.results is None:
        return out
    for g in published_gaps(report.results).to_pylist():
        out.setdefault(g["indicator_id"], []).append(g)
    return out


def _gap_rows(report: Report, locale: str,
              gaps: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]], str]:
    """(period, rows, region sentence) of one indicator's gaps in the latest year with a
    published gap; empty when the indicator has no target."""
    from utfall.analytics.gaps import gap_sentence, percent_text

    periods = sorted({g["period"] for g in gaps}, reverse=True)
    chosen = next((p for p in periods
                   if any(g["period"] == p and not g["withheld"] for g in gaps)), None)
    if chosen is None:
        return "", [], ""
    rows, sentence = [], ""
    for g in (g for g in gaps if g["period"] == chosen):
        region = g["breakdown"] == "total"
        if region:
            sentence = gap_sentence(g, locale)
        mask = report.rules.value_display
        rows.append({
            "unit": TEXT[locale]["region"] if region else report.unit_names.get(
                g["level"], g["level"]),
            "region": region,
            "value": format_value(g["value"], mask, "proportion", locale),
            "target": percent_text(g["target"], locale) if g["target"] is not None else "",
            "gap_pp": _number(g["gap_pp"], 1, locale) if g["gap_pp"] is not None else mask,
            "gap_persons": _number(g["gap_persons"], 0, locale)
            if g["gap_persons"] is not None else mask,
            "summary": gap_sentence(g, locale),
        })
    rows.sort(key=lambda r: (not r["region"], str(r["unit"]).lower()))
    return chosen, rows, sentence


def _indicator_sections(report: Report, locale: str, charts: bool) -> list[dict[str, Any]]:
    if report.results is None or report.results.num_rows == 0:
        return []
    meta = _indicator_meta()
    t = TEXT[locale]
    rows = report.results.to_pylist()
    all_gaps = _all_gaps(report)
    by_indicator: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_indicator.setdefault(r["indicator_id"], []).append(r)
    sections = []
    for ind_id, mine in by_indicator.items():
        ind = meta.get(ind_id)
        kind = _kind(ind)
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
                "numerator": _shown(r["numerator_display"], locale),
                "denominator": _shown(r["denominator_display"], locale),
                "value": fmt(r),
                "ci": ci(r),
            }
            for r in totals
        ]
        index = {(r["level"], r["period"]): r for r in units}
        unit_ids = sorted({r["level"] for r in units},
                          key=lambda u: str(report.unit_names.get(u) or u).lower())
        blocks = []
        for block in _chunks(periods) if unit_ids else []:
            grid = []
            for u in unit_ids:
                cells = []
                for p in block:
                    hit = index.get((u, p))
                    if hit is None:
                        cells.append("")
                    else:
                        den = _shown(hit["denominator_display"], locale)
                        cells.append(f"{fmt(hit)} ({den})" if den else fmt(hit))
                grid.append({"unit": report.unit_names.get(u, u), "cells": cells})
            blocks.append({"periods": block, "grid": grid})
        title = (ind.title.sv if locale == "sv" else ind.title.en) if ind else ind_id
        trend_svg = funnel_svg = None
        funnel_year = ""
        outliers: list[str] = []
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
                    funnel_year = last
                    outliers = _outliers(pts, p0, t)
                    if charts:
                        funnel_svg = funnel_chart(
                            pts, p0, title=f"{title} – {last}", locale=locale
                        )
                    break
        gap_period, gap_rows, gap_summary = _gap_rows(report, locale,
                                                      all_gaps.get(ind_id, []))
        sections.append(
            {
                "id": ind_id,
                "title": title,
                "definition": (ind.definition.sv if locale == "sv" else ind.definition.en)
                if ind
                else "",
                "direction": t.get(f"direction_{ind.direction}", "") if ind else "",
                "target": format_value(ind.target, "", kind, locale)
                if ind is not None and ind.target is not None
                else "",
                "totals": total_rows,
                "periods": periods,
                "blocks": blocks,
                "trend_svg": trend_svg,
                "funnel_svg": funnel_svg,
                "funnel_year": funnel_year,
                "outliers": outliers,
                "gap_period": gap_period,
                "gaps": gap_rows,
                "gap_summary": gap_summary,
            }
        )
    return sections


def _shown(display: str | None, locale: str) -> str:
    """A published count display string with thousands grouped (masks unchanged)."""
    if display and display.isdigit():
        return _number(int(display), 0, locale)
    return display or ""


def _regional_rows(report: Report, locale: str) -> list[dict[str, Any]]:
    out = []
    previous = None
    for r in report.regional.to_pylist():
        label = group_label(r["dx_group"], locale) if r["dx_group"] != previous else ""
        previous = r["dx_group"]
        out.append({"label": label, "year": r["year"], "cells": [r[c] for c in COUNT_COLUMNS]})
    return out


def _quality_cell(hit: dict[str, Any] | None, ind_id: str, locale: str) -> str:
    if hit is None:
        return ""
    if ind_id == "dq_volume_drop" and hit["value"] is not None:
        val = ("+" if hit["value"] > 0 else "") + format_value(
            hit["value"], "", "proportion", locale
        )
    else:
        val = format_value(hit["value"], hit["value_display"], "proportion", locale)
    # a flag is shown only next to a published value (it derives from the counts)
    mark = " ⚠" if hit.get("flag") and hit["value"] is not None else ""
    num = _shown(hit["numerator_display"], locale)
    den = _shown(hit["denominator_display"], locale)
    return f"{val}{mark} ({num}/{den})"


def _quality_sections(report: Report, locale: str) -> list[dict[str, Any]]:
    rows = report.quality.to_pylist()
    out = []
    for ind_id, titles in QUALITY_TITLES.items():
        mine = [r for r in rows if r["indicator_id"] == ind_id]
        if not mine:
            continue
        periods = sorted({r["period"] for r in mine})
        levels = sorted({r["level"] for r in mine},
                        key=lambda u: str(report.unit_names.get(u) or u).lower())
        index = {(r["level"], r["period"]): r for r in mine}
        blocks = [
            {
                "periods": block,
                "grid": [
                    {
                        "unit": report.unit_names.get(lev, lev),
                        "cells": [_quality_cell(index.get((lev, p)), ind_id, locale)
                                  for p in block],
                    }
                    for lev in levels
                ],
            }
            for block in _chunks(periods)
        ]
        out.append({"id": ind_id, "title": titles[locale], "periods": periods,
                    "blocks": blocks})
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
    gaps = _all_gaps(report)
    if gaps:
        from utfall.analytics.gaps import gap_sentence

        sheet = wb.create_sheet("Målgap" if sv else "Gaps")
        sheet.append(["indicator_id", "title", "period", "breakdown", "level", "value",
                      "target", "target_source", "gap_pp", "gap_persons", "withheld",
                      "summary"])
        for rows in gaps.values():
            for g in rows:
                ind = meta.get(g["indicator_id"])
                level = g["level"]
                if g["breakdown"] == "unit_id":
                    level = report.unit_names.get(level, level)
                sheet.append([g["indicator_id"],
                              (ind.title.sv if sv else ind.title.en) if ind else "",
                              g["period"], g["breakdown"], level or t["region"], g["value"],
                              g["target"], g["target_source"], g["gap_pp"], g["gap_persons"],
                              g["withheld"], gap_sentence(g, locale)])
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
