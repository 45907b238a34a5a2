"""``utfall indicators``: compute the indicator catalogue, disclosure-controlled.

Raw results never leave this command: every output passes
disclosure control first: the protected release (``utfall.analytics.runs.compute_release``).
Exit codes: 0 ok, 1 bad data or source, 2 usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from utfall.cli.app import app, console, err_console


class OutFormat(StrEnum):
    """Output formats of ``utfall indicators``."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def parse_years(spec: str | None) -> list[int] | None:
    """``"2017-2024"``, ``"2021"`` or ``"2017,2021"`` → years (None = all in the data)."""
    if not spec:
        return None
    years: list[int] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            if hi < lo:
                raise typer.BadParameter(f"bad year range {part}", param_hint="--years")
            years.extend(range(lo, hi + 1))
        else:
            years.append(int(part))
    return sorted(set(years))


def load_source(source: str, database: str | None = None) -> dict[str, Any]:
    """Canonical Ibis tables on DuckDB from ``store`` or a Parquet folder."""
    from utfall.analytics.executor.backends import duckdb_tables

    if source == "store":
        from utfall.store.canonical import canonical_tables
        from utfall.store.db import ensure_schema, get_engine

        engine = get_engine(database)
        ensure_schema(engine)
        return duckdb_tables(canonical_tables(engine))
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"ingen sådan mapp / no such folder: {folder}")
    return duckdb_tables(folder)


@contextmanager
def indicator_progress(catalogue: Any, locale: str = "sv") -> Iterator[Callable[[str], None]]:
    """A Rich progress bar on stderr, "indikator 12 av 28: <name>"; yields the callback
    that ``compute_release``/``compute_catalogue`` call once per finished indicator.
    After the last indicator it says that disclosure control is running."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from utfall.i18n import t

    names = {i.id: getattr(i.title, locale, i.title.sv) for i in catalogue.indicators}
    total = len(names)
    done: list[str] = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
        console=err_console, transient=True,
    ) as progress:
        first = "Indikatorer" if locale == "sv" else "Indicators"
        task = progress.add_task(first, total=total)

        def advance(indicator_id: str) -> None:
            done.append(indicator_id)
            text = t("quality.progress", locale, i=len(done), n=total,
                     name=names.get(indicator_id, indicator_id))
            if len(done) >= total:
                text = ("Röjandekontroll av hela utdata …" if locale == "sv"
                        else "Disclosure control of the whole release …")
            progress.update(task, advance=1, description=text)

        yield advance


def _fail(message: str) -> typer.Exit:
    err_console.print(message, style="bold red", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(1)


@app.command("indicators")
def indicators(
    data: Annotated[
        str,
        typer.Option("--data", help="'store' (driftdatabasen / the store) or a Parquet folder "
                     "from export-analytics."),
    ] = "store",
    indicator: Annotated[
        list[str] | None,
        typer.Option("--indicator", "-i", help="Indikator-id (upprepa) / indicator id (repeat)."),
    ] = None,
    by: Annotated[
        list[str] | None,
        typer.Option("--by", help="Uppdelning (upprepa) / breakdown (repeat): unit_id, "
                     "organisation, principal_type, care_level, dx_group, sex, age_band, "
                     "municipality. 'total' is always included."),
    ] = None,
    years: Annotated[
        str | None, typer.Option("--years", help="t.ex./e.g. 2017-2024 or 2017,2021.")
    ] = None,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = OutFormat.table,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", dir_okay=False, help="Output file.")
    ] = None,
    population: Annotated[
        Path | None,
        typer.Option("--population", exists=True, dir_okay=False,
                     help="Befolkning (CSV: municipality,year,sex,population) for rates."),
    ] = None,
    age_bands: Annotated[
        str | None, typer.Option("--age-bands", help="t.ex./e.g. 13-17,18-24,25-44,45-64,65+")
    ] = None,
    store_results: Annotated[
        Path | None,
        typer.Option("--store-results", file_okay=False,
                     help="Spara körningen (röjandekontrollerad) / store the run (disclosed)."),
    ] = None,
    catalogue_dir: Annotated[
        Path | None,
        typer.Option("--catalogue-dir", exists=True, file_okay=False,
                     help="Regionens egna indikatorer (*.yaml) / a region's own indicators."),
    ] = None,
    locale: Annotated[str, typer.Option("--locale", help="sv or en (titles).")] = "sv",
    database: Annotated[
        str | None,
        typer.Option("--database", envvar="UTFALL_DATABASE_URL", help="Database URL (store)."),
    ] = None,
) -> None:
    """Beräkna indikatorkatalogen / compute the indicator catalogue (disclosure-controlled)."""
    from utfall.analytics.executor.run import read_population
    from utfall.analytics.executor.run import store_results as st
    from utfall.analytics.runs import compute_release
    from utfall.analytics.semantics.catalogue import ALL_BREAKDOWNS, load_catalogue
    from utfall.analytics.semantics.compiler import DEFAULT_AGE_BANDS, parse_age_bands

    try:
        catalogue = load_catalogue(str(catalogue_dir) if catalogue_dir else None)
    except Exception as exc:
        raise _fail(f"ogiltig katalog / invalid catalogue: {exc}") from None
    ids = list(indicator or catalogue.ids)
    unknown = [i for i in ids if i not in catalogue.ids]
    if unknown:
        raise typer.BadParameter(f"okänd indikator / unknown indicator: {', '.join(unknown)}",
                                 param_hint="--indicator")
    breakdowns = ["total", *[b for b in (by or []) if b != "total"]]
    bad = [b for b in breakdowns if b not in ALL_BREAKDOWNS]
    if bad:
        raise typer.BadParameter(f"okänd uppdelning / unknown breakdown: {', '.join(bad)}",
                                 param_hint="--by")
    if fmt is OutFormat.parquet and out is None:
        raise typer.BadParameter("parquet needs --out", param_hint="--out")
    year_list = parse_years(years)
    bands = parse_age_bands(age_bands) if age_bands else DEFAULT_AGE_BANDS

    try:
        tables = load_source(data, database)
        pop = read_population(population) if population else None
    except Exception as exc:
        raise _fail(f"kan inte läsa underlaget / cannot read the source: {exc}") from None

    try:
        with indicator_progress(catalogue, locale) as advance:
            # the whole release is protected once (every indicator × breakdown, the
            # regional table) and the requested subset served from it, so the masks do
            # not depend on what was asked for
            release = compute_release(
                tables, years=year_list, age_bands=bands, population=pop,
                catalogue=catalogue, progress=advance,
            )
    except Exception as exc:
        raise _fail(f"fel i underlaget / bad data: {exc}") from None

    results = release.subset(indicators=ids, breakdowns=breakdowns)
    if store_results:
        run = st(results, store_results, catalogue_version=catalogue.version)
        err_console.print(f"{run}")
    _emit(results, fmt, out, catalogue, locale)


def _emit(results: Any, fmt: OutFormat, out: Path | None, catalogue: Any, locale: str) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt is OutFormat.parquet:
        assert out is not None
        pq.write_table(results, out)
        return
    if fmt is OutFormat.csv:
        import io

        from utfall.reports.safe_cells import neutralise_table

        buf = io.BytesIO()
        pacsv.write_csv(neutralise_table(results), buf)
        text = buf.getvalue().decode()
    elif fmt is OutFormat.json:
        text = json.dumps(results.to_pylist(), ensure_ascii=False, indent=1, default=str)
    else:
        _rich_table(results, catalogue, locale, out)
        return
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def _rich_table(results: Any, catalogue: Any, locale: str, out: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    titles = {i.id: getattr(i.title, locale) for i in catalogue.indicators}
    sv = locale == "sv"
    table = Table(show_lines=False, header_style="bold")
    right = {"Täljare", "Nämnare", "Värde", "Numerator", "Denominator", "Value"}
    for name in (
        "Indikator" if sv else "Indicator", "År" if sv else "Period",
        "Uppdelning" if sv else "Breakdown", "Nivå" if sv else "Level",
        "Täljare" if sv else "Numerator", "Nämnare" if sv else "Denominator",
        "Värde" if sv else "Value", "95 % KI" if sv else "95 % CI",
    ):
        table.add_column(name, overflow="fold", justify="right" if name in right else "left")
    cols = set(results.column_names)

    def disp(row: dict, key: str) -> str:
        shown = row.get(f"{key}_display") if f"{key}_display" in cols else row.get(key)
        return "" if shown is None else str(shown)

    share = {i.id for i in catalogue.indicators if _is_share(i)}
    seen: set[str] = set()
    for row in results.to_pylist():
        is_share = row["indicator_id"] in share
        low = _fmt_stat(row.get("ci_low"), disp(row, "ci_low"), is_share, locale)
        high = _fmt_stat(row.get("ci_high"), disp(row, "ci_high"), is_share, locale)
        ci = f"{low} – {high}" if any(ch.isdigit() for ch in low + high) else low
        seen.add(row["indicator_id"])
        table.add_row(
            row["indicator_id"], row["period"],
            row["breakdown"], row["level"], _fmt_count(disp(row, "numerator"), locale),
            _fmt_count(disp(row, "denominator"), locale),
            _fmt_stat(row.get("value"), disp(row, "value"), is_share, locale), ci,
        )
    legend = "\n".join(f"{i}: {titles[i]}" for i in titles if i in seen)
    if out is None:
        console.print(table)
        console.print(legend, highlight=False)
    else:
        with out.open("w", encoding="utf-8") as fh:
            Console(file=fh, width=160).print(table)
            fh.write(legend + "\n")


def _is_share(ind: Any) -> bool:
    """Indicators whose value is a proportion (shown as a percentage)."""
    if ind.kind in ("proportion", "retention"):
        return True
    if ind.kind == "change" and ind.change is not None:
        return bool(ind.change.statistic == "share_improved")
    return bool(ind.kind == "time_to" and ind.statistic == "share")


def _fmt_count(shown: str, locale: str) -> str:
    """A published count with thousands grouped (masks such as ``<5`` unchanged)."""
    from utfall.web.formats import shown as fmt_shown

    return fmt_shown(shown, locale) if shown else ""


def _fmt_stat(value: Any, shown: str, is_share: bool, locale: str) -> str:
    """A published value for the table: ``8,9 %`` for shares, ``12,3`` otherwise; a
    withheld value keeps its mask (``..``)."""
    from utfall.web.formats import number, percent

    if value is None:
        return shown
    if is_share:
        return percent(value, locale)
    return number(value, 1, locale)
