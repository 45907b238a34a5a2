"""``utfall report``: disclosure-controlled reports (regional table, full report).

Exit codes: 0 ok, 1 bad data or source, 2 usage error.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from utfall.cli.app import app, console, err_console

report_app = typer.Typer(
    help="Rapporter med röjandekontroll / disclosure-controlled reports.",
    no_args_is_help=True,
)
app.add_typer(report_app, name="report")


class RegionalFormat(StrEnum):
    """Output formats of ``report regional``."""

    csv = "csv"
    html = "html"
    xlsx = "xlsx"


class FullFormat(StrEnum):
    """Output formats of ``report full``."""

    html = "html"
    pdf = "pdf"
    xlsx = "xlsx"


class Locale(StrEnum):
    """Report languages."""

    sv = "sv"
    en = "en"


DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        help="Underlag: 'store' (driftdatabasen) eller en Parquet-mapp / "
        "source: 'store' (the operational database) or a Parquet folder.",
    ),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", envvar="UTFALL_DATABASE_URL", help="Database URL (store)."),
]


class DataError(Exception):
    """The data source is missing or unreadable (exit code 1)."""


def load_tables(source: str, database: str | None = None) -> tuple[dict[str, Any], str]:
    """Canonical Ibis tables (DuckDB) from ``store`` or a Parquet folder, plus a label."""
    from utfall.analytics.regional import tables_from_arrow, tables_from_parquet

    if source == "store":
        try:
            from utfall.store.canonical import canonical_tables
            from utfall.store.db import ensure_schema, get_engine

            engine = get_engine(database)
            ensure_schema(engine)
            return tables_from_arrow(canonical_tables(engine)), "store"
        except Exception as exc:
            raise DataError(f"kan inte läsa driftdatabasen / cannot read the store: {exc}") from exc
    folder = Path(source)
    if not folder.is_dir():
        raise DataError(
            f"ingen sådan mapp / no such folder: {folder} (use --data store or a Parquet folder)"
        )
    try:
        tables = tables_from_parquet(folder)
        for table in tables.values():  # touch every file now: fail early on bad Parquet
            table.limit(0).to_pyarrow()
    except Exception as exc:
        raise DataError(
            f"kan inte läsa Parquet-mappen / cannot read Parquet folder: {exc}"
        ) from exc
    return tables, folder.name


def _fail(message: str) -> typer.Exit:
    err_console.print(message, style="bold red", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(1)


@report_app.command("regional")
def regional(
    data: DataOpt = "store",
    fmt: Annotated[
        RegionalFormat, typer.Option("--format", "-f", help="csv, html eller/or xlsx.")
    ] = RegionalFormat.csv,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", dir_okay=False,
                     help="Output file. Default: CSV to stdout; XLSX (and HTML in a "
                     "terminal) to utfall-regional-<date>.<ext> here, named in the output."),
    ] = None,
    locale: Annotated[Locale, typer.Option("--locale", help="sv eller/or en.")] = Locale.sv,
    database: DatabaseOpt = None,
) -> None:
    """Regiontabellen (personer och KVÅ per substansgrupp och år) / the regional table."""
    from utfall.analytics.regional import (
        regional_table,
        render_regional_csv,
        render_regional_html,
        render_regional_xlsx,
    )

    # every option is checked before anything is computed
    if out is None and (fmt is RegionalFormat.xlsx
                        or (fmt is RegionalFormat.html and sys.stdout.isatty())):
        out = default_output("regional", fmt.value)
    if out is not None:
        check_output(out)
    try:
        tables, _label = load_tables(data, database)
        table = regional_table(tables)
    except DataError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:
        raise _fail(f"fel i underlaget / bad data: {exc}") from None

    if fmt is RegionalFormat.xlsx:
        assert out is not None
        render_regional_xlsx(table, out, locale=locale.value)
    else:
        text = (
            render_regional_csv(table)
            if fmt is RegionalFormat.csv
            else render_regional_html(table, locale=locale.value)
        )
        if out is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        out.write_text(text, encoding="utf-8")
    err_console.print(f"Skrev / wrote {out}  ({table.num_rows} rader / rows)", markup=False,
                      highlight=False, soft_wrap=True)


def default_output(kind: str, suffix: str, folder: Path | None = None) -> Path:
    """``utfall-<kind>-<date>.<suffix>`` in the current folder, never an existing file
    (``…-2.xlsx``, ``…-3.xlsx`` …)."""
    import datetime as dt

    folder = folder or Path.cwd()
    stem = f"utfall-{kind}-{dt.date.today().isoformat()}"
    path = folder / f"{stem}.{suffix}"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}.{suffix}"
        n += 1
    return path


def check_output(out: Path) -> None:
    """An output file must be writable: its folder exists and it is not a folder."""
    if out.is_dir():
        raise typer.BadParameter(f"{out} är en mapp / is a folder", param_hint="--out")
    if not out.parent.exists():
        raise typer.BadParameter(f"mappen finns inte / no such folder: {out.parent}",
                                 param_hint="--out")


def _stored_run(database: str | None) -> tuple[Any, dict[str, Any]]:
    """The stored run of the store's current state: ``(protected results, regional
    table)`` or None when there is none yet (then the report computes the release), and
    the run's stored data quality and the unit names when the run has them."""
    from sqlalchemy import text

    from utfall.analytics.quality import stored_quality, stored_silent_units
    from utfall.analytics.runs import latest_release, latest_run_id, runs_folder
    from utfall.store.db import get_engine

    try:
        engine = get_engine(database)
        stored = latest_release(engine, compute=False)
        if stored is None:
            return None, {}
        run_dir = runs_folder() / str(latest_run_id())
        quality, silent = stored_quality(run_dir), stored_silent_units(run_dir)
        if quality is None or silent is None:
            return stored, {}
        with engine.connect() as conn:
            names = {str(u): str(n or u) for u, n in
                     conn.execute(text("SELECT unit_id, name FROM unit")).tuples()}
        return stored, {"stored_quality": (quality, silent), "unit_names": names}
    except Exception:
        return None, {}


@report_app.command("full")
def full(
    out: Annotated[Path, typer.Option("--out", "-o", dir_okay=False, help="Output file.")],
    data: DataOpt = "store",
    fmt: Annotated[
        FullFormat | None,
        typer.Option("--format", "-f", help="html, pdf eller/or xlsx (default: from --out)."),
    ] = None,
    locale: Annotated[Locale, typer.Option("--locale", help="sv eller/or en.")] = Locale.sv,
    indicators: Annotated[
        str | None,
        typer.Option("--indicators", help="Kommaseparerade indikator-id / comma-separated ids."),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option(
            "--results",
            file_okay=False,
            help="Sparade indikatorresultat (mapp) i stället för att räkna om / "
            "stored indicator results folder instead of recomputing.",
        ),
    ] = None,
    no_indicators: Annotated[
        bool,
        typer.Option("--no-indicators", help="Bara regiontabell och datakvalitet / skip."),
    ] = False,
    charts: Annotated[bool, typer.Option(help="Diagram / charts (SVG).")] = True,
    database: DatabaseOpt = None,
) -> None:
    """Hela rapporten (HTML, PDF eller XLSX) / the whole report."""
    from utfall.reports import (
        build_report,
        render_report_html,
        render_report_pdf,
        render_report_xlsx,
    )

    if fmt is None:
        suffix = out.suffix.lower().lstrip(".")
        fmt = FullFormat(suffix) if suffix in FullFormat.__members__ else FullFormat.html
    ids = [i.strip() for i in indicators.split(",") if i.strip()] if indicators else None
    check_output(out)
    from utfall.analytics.semantics.catalogue import load_catalogue
    from utfall.cli.indicators import indicator_progress

    catalogue = load_catalogue()
    unknown = [i for i in ids or [] if i not in catalogue.ids]
    if unknown:  # before anything is computed
        raise _fail(f"okänd indikator / unknown indicator: {', '.join(unknown)}")
    try:
        raw = stored = None
        extra: dict[str, Any] = {}
        if results is None and data == "store" and not no_indicators:
            stored, extra = _stored_run(database)
        tables: dict[str, Any]
        if extra:  # the stored run has everything: only the unit names are read
            tables, label = {}, "store"
        else:
            tables, label = load_tables(data, database)
        if results is not None:
            from utfall.analytics.executor.run import load_results

            raw, _meta = load_results(results)
        with indicator_progress(catalogue, locale.value) as advance:
            report = build_report(
                tables,
                results=raw,
                stored=stored,
                compute=not no_indicators,
                indicators=ids,
                source=label,
                progress=advance,
                **extra,
            )
    except DataError as exc:
        raise _fail(str(exc)) from None
    except KeyError as exc:
        raise _fail(f"okänd indikator / unknown indicator: {exc}") from None
    except Exception as exc:
        raise _fail(f"fel i underlaget / bad data: {exc}") from None

    if fmt is FullFormat.xlsx:
        render_report_xlsx(report, locale.value, out)
    else:
        html = render_report_html(report, locale.value, charts=charts)
        if fmt is FullFormat.pdf:
            render_report_pdf(html, out)
        else:
            out.write_text(html, encoding="utf-8")
    console.print(f"{out}", markup=False, highlight=False)
