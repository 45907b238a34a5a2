"""``utfall disclosure audit``: the integer/LP attacker over the whole protected release.

Exit codes: 0 no masked cell recoverable, 1 a masked cell is exactly recoverable or a
``<5`` cell is narrowed to one value (or the source cannot be read), 2 usage error.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from utfall.cli.app import app, console, err_console

disclosure_app = typer.Typer(help="Röjandekontroll / disclosure control.", no_args_is_help=True)
app.add_typer(disclosure_app, name="disclosure")


@disclosure_app.command("audit")
def audit(
    data: Annotated[
        str,
        typer.Option("--data", help="'store' (driftdatabasen / the store) or a Parquet folder "
                     "from export-analytics."),
    ] = "store",
    years: Annotated[
        str | None, typer.Option("--years", help="t.ex./e.g. 2017-2024 or 2017,2021.")
    ] = None,
    database: Annotated[
        str | None,
        typer.Option("--database", envvar="UTFALL_DATABASE_URL", help="Database URL (store)."),
    ] = None,
) -> None:
    """Granska röjandekontrollen / audit disclosure control over everything published.

    Computes the protected release (every indicator × breakdown, totals, the regional
    table) and lets an attacker combine all of it: per indicator the published and
    masked cells and the narrowest interval the attacker reaches for a masked cell.
    """
    import time

    from utfall.analytics.disclosure.audit import audit_release, format_interval
    from utfall.analytics.runs import compute_release
    from utfall.cli.indicators import load_source, parse_years

    year_list = parse_years(years)
    try:
        tables = load_source(data, database)
    except Exception as exc:
        err_console.print(f"kan inte läsa underlaget / cannot read the source: {exc}",
                          style="bold red", markup=False, highlight=False)
        raise typer.Exit(1) from None
    began = time.perf_counter()
    external = None
    if data == "store":  # the store also publishes the external (register) indicators
        from utfall.analytics.executor.run import data_span
        from utfall.analytics.external import external_results
        from utfall.analytics.semantics.catalogue import load_catalogue
        from utfall.store.db import get_engine

        external = external_results(get_engine(database), load_catalogue(),
                                    data_span(tables)[1])
    release = compute_release(tables, years=year_list, external=external)
    protected_at = time.perf_counter()
    report = audit_release(release.model)
    audited_at = time.perf_counter()

    table = Table(title="Röjandekontroll: granskning / disclosure audit", title_justify="left")
    for name in ("indicator", "published", "masked", "recoverable", "<5 → 1 value",
                 "narrowest interval", "cell"):
        table.add_column(name, justify="left" if name in ("indicator", "cell") else "right")
    for name in sorted(report.series):
        s = report.series[name]
        key = s.narrowest_key
        where = f"{key[1]} {key[2]} {key[3]}={key[4]}" if key else ""
        table.add_row(name, str(s.published), str(s.masked), str(s.recoverable),
                      str(s.small_narrowed), format_interval(s.narrowest), where)
    table.add_row("all", str(report.published), str(report.masked), str(report.recoverable),
                  str(report.small_narrowed), "", "", style="bold")
    console.print(table)
    hist = ", ".join(f"{k}: {v}" for k, v in report.width_histogram().items())
    console.print(f"Masked cells by number of values left to an attacker: {hist}")
    console.print(f"Protection {protected_at - began:.1f} s (catalogue included), "
                  f"audit {audited_at - protected_at:.1f} s, "
                  f"{release.rounds} rounds of secondary suppression.")
    if not report.ok:
        err_console.print(f"FAIL: {report.recoverable} masked cells exactly recoverable, "
                          f"{report.small_narrowed} '<5' cells narrowed to one value.",
                          style="bold red", markup=False, highlight=False)
        raise typer.Exit(1)
    console.print("OK: no masked cell is exactly recoverable.")
