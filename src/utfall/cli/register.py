"""``utfall register``: reporting to national quality registers (export, receipt)."""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from pathlib import Path

import typer

from utfall.cli.app import app, console, err_console

register_app = typer.Typer(help="Kvalitetsregister / quality registers.", no_args_is_help=True)
app.add_typer(register_app, name="register")


class Format(StrEnum):
    json = "json"
    fhir = "fhir"


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: ÅÅÅÅ-MM-DD / YYYY-MM-DD",
                                 param_hint=option) from None


def _engine(database: str | None):
    from utfall.store.db import ensure_schema, get_engine

    engine = get_engine(database)
    ensure_schema(engine)
    return engine


@register_app.command("export")
def export_command(
    register: str = typer.Option(..., "--register", help="Register, t.ex. / e.g. sbr"),
    out: Path = typer.Option(..., "--out", help="Mapp för filerna / output folder"),
    since: str | None = typer.Option(None, "--since", help="Formulär från detta datum / "
                                                           "forms triggered on or after DATE"),
    incremental: bool = typer.Option(False, "--incremental",
                                     help="Bara nya och ändrade / only new and changed forms"),
    fmt: Format = typer.Option(Format.json, "--format", help="json | fhir"),
    as_of: str | None = typer.Option(None, "--as-of", help="Datagräns / data cut-off date "
                                                           "(default: today)"),
    mapping_file: Path | None = typer.Option(None, "--mapping", help="Annan mappningsfil / "
                                                                      "another mapping file"),
    database: str | None = typer.Option(None, "--database", envvar="UTFALL_DATABASE_URL"),
) -> None:
    """Build, validate and write the register's forms; missing required data is listed
    on stderr as ``form: person_key: variable: reason``."""
    from utfall.followup import local_today
    from utfall.interop.register import MappingError, load_mapping
    from utfall.interop.register.export import export_register

    if since is not None and incremental:
        raise typer.BadParameter("--since och --incremental går inte ihop / "
                                 "--since and --incremental exclude each other",
                                 param_hint="--since")
    since_date = _date(since, "--since")
    cut_off = _date(as_of, "--as-of") or local_today()
    try:
        mapping = load_mapping(register, mapping_file)
    except MappingError as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    result = export_register(_engine(database), mapping, out, as_of=cut_off,
                             since=since_date, incremental=incremental, fmt=fmt.value)
    for gap in result.gaps:
        err_console.print(str(gap), markup=False, highlight=False, soft_wrap=True)
    summary = {"export_id": result.export_id, "register": mapping.register_id,
               "mapping_version": mapping.version, "provisional": mapping.provisional,
               **result.counts(), "files": result.files}
    console.print_json(json.dumps(summary))


@register_app.command("receipt")
def receipt_command(
    file: Path = typer.Argument(..., help="Kvittensfil / receipt file (JSON)"),
    database: str | None = typer.Option(None, "--database", envvar="UTFALL_DATABASE_URL"),
) -> None:
    """Record the register's receipt of an export (accepted, rejected or partial)."""
    from utfall.interop.register.export import ReceiptError, record_receipt

    try:
        recorded = record_receipt(_engine(database), file)
    except ReceiptError as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print_json(json.dumps(recorded))


@register_app.command("coverage")
def coverage_command(
    register: str = typer.Option(..., "--register", help="Register, t.ex. / e.g. sbr"),
    as_of: str | None = typer.Option(None, "--as-of", help="Datagräns / data cut-off date"),
    database: str | None = typer.Option(None, "--database", envvar="UTFALL_DATABASE_URL"),
) -> None:
    """Register coverage per unit and year (new registration within 30 days, 12-month
    follow-up), after disclosure control: display columns only. Without ``--as-of`` the
    cells come from the stored run (the catalogue's register indicators, protected with
    every other output of the data state); ``--as-of`` computes another cut-off."""
    from utfall.analytics.semantics.catalogue import load_catalogue
    from utfall.interop.register import MappingError, load_mapping
    from utfall.interop.register.coverage import FOLLOWUP_12M, NEW_WITHIN_30D, disclosed_coverage

    try:
        mapping = load_mapping(register)
    except MappingError as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    cut_off = _date(as_of, "--as-of")
    if cut_off is None and register in {i.mapping for i in load_catalogue().external}:
        import pyarrow as pa
        import pyarrow.compute as pc

        from utfall.analytics.runs import latest_results

        results = latest_results(_engine(database))
        assert results is not None  # computed when missing or stale
        ids = (NEW_WITHIN_30D, FOLLOWUP_12M)
        table = results.filter(pc.is_in(results["indicator_id"], pa.array(ids)))
    else:
        from utfall.followup import local_today

        with _engine(database).connect() as conn:
            table = disclosed_coverage(conn, mapping, cut_off or local_today())
    keep = ("indicator_id", "period", "breakdown", "level", "numerator_display",
            "denominator_display", "value_display", "suppressed")
    console.print_json(json.dumps([{k: r.get(k) for k in keep} for r in table.to_pylist()]))
