"""``utfall gaps``: how far each unit and the region are from each indicator's target.

Read from the protected release (the stored run of the store's data state, or the
release of a Parquet folder): a gap is derived only from published cells and is
withheld where a count behind it is masked (``utfall.analytics.gaps.published_gaps``).
Exit codes: 0 ok, 1 bad data or source, 2 usage error.
"""

from __future__ import annotations

import io
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from utfall.cli.app import app, console, err_console

GAP_BREAKDOWNS = ("unit_id", "organisation", "principal_type", "care_level")


class GapFormat(StrEnum):
    """Output formats of ``utfall gaps``."""

    table = "table"
    csv = "csv"
    json = "json"


def _fail(message: str) -> typer.Exit:
    err_console.print(message, style="bold red", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(1)


def protected_results(data: str, database: str | None, catalogue: Any,
                      locale: str = "sv") -> tuple[Any, dict[str, str]]:
    """The protected release results of ``data`` and unit names.

    ``store``: the stored run of the store's current state (computed and stored once
    if missing, like every other output); a Parquet folder: its release.
    """
    from utfall.cli.indicators import indicator_progress

    if data == "store":
        from utfall.analytics.runs import latest_results
        from utfall.store.db import ensure_schema, get_engine

        engine = get_engine(database)
        ensure_schema(engine)
        results = latest_results(engine, compute=False)
        if results is None:
            from utfall.analytics.regional import tables_from_arrow
            from utfall.store.canonical import canonical_tables

            tables = tables_from_arrow(canonical_tables(engine))
            names = _unit_names(tables)
            err_console.print("Ingen sparad körning: beräknar / no stored run: computing",
                              style="dim")
            with err_console.status("Beräknar och sparar en körning / computing a run"):
                results = latest_results(engine, compute=True)
            return results, names
        from utfall.analytics.regional import tables_from_arrow
        from utfall.store.canonical import canonical_tables

        return results, _unit_names(tables_from_arrow(canonical_tables(engine)))
    from utfall.analytics.runs import compute_release
    from utfall.cli.report import DataError, load_tables

    try:
        tables, _label = load_tables(data, database)
    except DataError as exc:
        raise _fail(str(exc)) from None
    with indicator_progress(catalogue, locale) as advance:
        release = compute_release(tables, catalogue=catalogue, progress=advance)
    return release.results, _unit_names(tables)


def _unit_names(tables: Any) -> dict[str, str]:
    rows = tables["unit"].select("unit_id", "name").to_pyarrow().to_pylist()
    return {r["unit_id"]: r["name"] or r["unit_id"] for r in rows if r["unit_id"]}


@app.command("gaps")
def gaps(
    indicator: Annotated[
        str | None, typer.Option("--indicator", "-i", help="Indikator-id / indicator id.")
    ] = None,
    year: Annotated[
        int | None, typer.Option("--year", "-y", help="År (standard: senaste) / year (latest).")
    ] = None,
    by: Annotated[
        str, typer.Option("--by", help="Uppdelning / breakdown: " + ", ".join(GAP_BREAKDOWNS))
    ] = "unit_id",
    fmt: Annotated[GapFormat, typer.Option("--format", "-f")] = GapFormat.table,
    data: Annotated[
        str, typer.Option("--data", help="'store' or a Parquet folder from export-analytics.")
    ] = "store",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", dir_okay=False, help="Output file.")
    ] = None,
    locale: Annotated[str, typer.Option("--locale", help="sv or en.")] = "sv",
    database: Annotated[
        str | None,
        typer.Option("--database", envvar="UTFALL_DATABASE_URL", help="Database URL (store)."),
    ] = None,
) -> None:
    """Målgap per enhet och region / gap to target per unit and region (disclosed)."""
    from utfall.analytics.gaps import gap_indicators, gap_sentence, published_gaps
    from utfall.analytics.semantics.catalogue import load_catalogue

    catalogue = load_catalogue()
    known = gap_indicators(catalogue)
    if indicator is not None and indicator not in known:
        why = ("okänd indikator / unknown indicator" if indicator not in catalogue.ids
               else "indikatorn har inget mål / the indicator has no target")
        raise typer.BadParameter(f"{why}: {indicator} (med mål / with a target: "
                                 f"{', '.join(known)})", param_hint="--indicator")
    if by not in GAP_BREAKDOWNS:
        raise typer.BadParameter(f"okänd uppdelning / unknown breakdown: {by}",
                                 param_hint="--by")
    if locale not in ("sv", "en"):
        raise typer.BadParameter("sv or en", param_hint="--locale")
    try:
        results, names = protected_results(data, database, catalogue, locale)
    except typer.Exit:
        raise
    except Exception as exc:
        raise _fail(f"fel i underlaget / bad data: {exc}") from None
    periods = sorted({p for p in results["period"].to_pylist() if p})
    if year is None:
        chosen = periods[-1:] if periods else []
    elif str(year) in periods:
        chosen = [str(year)]
    else:
        raise _fail(f"inga resultat för år / no results for year {year} "
                    f"(finns / available: {', '.join(periods)})")
    table = published_gaps(results, catalogue=catalogue, breakdowns=("total", by),
                           indicators=[indicator] if indicator else None, periods=chosen)
    titles = {i.id: getattr(i.title, locale) for i in catalogue.indicators}
    rows = []
    for r in table.to_pylist():
        label = names.get(r["level"], r["level"]) if by == "unit_id" else r["level"]
        rows.append({**r, "unit_name": "" if r["breakdown"] == "total" else label,
                     "title": titles.get(r["indicator_id"], r["indicator_id"]),
                     "summary": gap_sentence(r, locale)})
    if fmt is not GapFormat.table:
        for r in rows:  # raw numbers in CSV/JSON (like `utfall indicators`)
            r["summary"] = r["summary"].replace("\u202f", "").replace("\u00a0", " ")
    if fmt is GapFormat.table:
        _print_table(rows, locale, out)
        return
    columns = ["indicator_id", "title", "period", "breakdown", "level", "unit_name",
               "numerator", "denominator", "value", "target", "target_source", "gap_pp",
               "gap_persons", "withheld", "summary"]
    if fmt is GapFormat.json:
        text = json.dumps([{c: r[c] for c in columns} for r in rows], ensure_ascii=False,
                          indent=1)
    else:
        import csv

        from utfall.reports.safe_cells import neutralise_row

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow(neutralise_row("" if r[c] is None else r[c] for c in columns))
        text = buf.getvalue()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(f"{out}", markup=False, highlight=False)


def _print_table(rows: list[dict], locale: str, out: Path | None) -> None:
    """One Rich table per indicator (titled with its name), the region's sentence under it."""
    from rich.console import Console
    from rich.table import Table

    from utfall.analytics.gaps import percent_text
    from utfall.i18n import t
    from utfall.web.formats import number, percent

    target_console = console if out is None else Console(
        file=out.open("w", encoding="utf-8"), width=160)
    masked = ".."
    by_indicator: dict[str, list[dict]] = {}
    for r in rows:
        by_indicator.setdefault(r["indicator_id"], []).append(r)
    if not rows:
        target_console.print("Inga indikatorer med mål / no indicators with a target.")
    for mine in by_indicator.values():
        table = Table(title=mine[0]["title"], title_justify="left", title_style="bold",
                      header_style="bold")
        for key, right in (("col_year", False), ("col_unit", False), ("col_value", True),
                           ("col_target", True), ("col_gap_pp", True),
                           ("col_gap_persons", True)):
            table.add_column(t(f"quality.{key}", locale), justify="right" if right else "left")
        for r in mine:
            region = r["breakdown"] == "total"
            table.add_row(
                r["period"], t("quality.region", locale) if region else r["unit_name"],
                percent(r["value"], locale) if r["value"] is not None else masked,
                percent_text(r["target"], locale) if r["target"] is not None else "",
                number(r["gap_pp"], 1, locale) if r["gap_pp"] is not None else masked,
                number(r["gap_persons"], 0, locale) if r["gap_persons"] is not None else masked,
                style="bold" if region else None,
            )
        target_console.print(table)
        for r in mine:
            if r["breakdown"] == "total":
                target_console.print(f"{t('quality.region', locale)}: {r['summary']}",
                                     highlight=False)
        target_console.print()
    if out is not None:
        target_console.file.close()
