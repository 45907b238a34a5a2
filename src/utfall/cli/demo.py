"""``utfall demo``: synthetic region → import → regional table (→ web app)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from utfall.cli.app import app, console, err_console
from utfall.cli.core import DatabaseOpt, progress_bar, run_import
from utfall.i18n import t

if TYPE_CHECKING:  # heavy imports stay inside the commands (fast `utfall --help`)
    import pyarrow as pa


def get_settings() -> Any:
    """The settings (pydantic-settings imported only when a command runs)."""
    from utfall.config import get_settings as settings

    return settings()


def regional_display(engine) -> pa.Table:
    """The disclosure-controlled regional table computed from the store."""
    from utfall.analytics.regional import regional_table, tables_from_arrow
    from utfall.store.canonical import canonical_tables

    return regional_table(tables_from_arrow(canonical_tables(engine)))


def print_regional(table: pa.Table, locale: str) -> None:
    """Print the regional table in the layout of the hand-made report."""
    from utfall.analytics.regional import group_label

    out = Table(title=t("demo.table_title"), title_justify="left")
    for name in (t("demo.group"), t("demo.year"), "AU119", "AU124", "DU119",
                 t("demo.persons")):
        out.add_column(name, justify="left" if name == t("demo.group") else "right")
    last = None
    for row in table.to_pylist():
        group = row["dx_group"]
        label = group_label(group, locale) if group != last else ""
        out.add_row(label, str(row["year"]), row["AU119"], row["AU124"], row["DU119"],
                    row["persons"])
        last = group
    console.print(out)
    console.print(t("demo.note"))


@app.command("demo")
def demo(
    persons: Annotated[int, typer.Option(min=100, help="Number of synthetic persons.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 2026,
    database: DatabaseOpt = None,
    serve: Annotated[bool | None, typer.Option(
        "--serve/--no-serve",
        help="Start the web app on the demo data afterwards (Ctrl+C stops it); "
             "default: only when run in a terminal.")] = None,
    port: Annotated[int, typer.Option(help="Port for the web app.")] = 8000,
) -> None:
    """Demo: syntetisk region, import och regional tabell / synthetic region end to end."""
    from utfall.analytics.regional import render_regional_html
    from utfall.store.db import get_engine
    from utfall.synth import generate

    settings = get_settings()
    locale = settings.locale
    folder = settings.data_dir / "demo" / f"extract-{persons}-{seed}"
    began = time.perf_counter()
    console.rule(t("demo.step_synth", persons=f"{persons:,}".replace(",", " "), seed=seed))
    if not (folder / "manifest.json").exists():
        with progress_bar() as bar:
            task = bar.add_task(t("demo.generating"), total=1000)

            def report(label: str, fraction: float) -> None:
                bar.update(task, completed=int(fraction * 1000), description=label)

            generate(folder, persons, seed, "csv", progress=report)
    console.print(t("demo.extract_at", folder=folder))
    console.rule(t("demo.step_import"))
    if run_import(folder, database) != 0:
        err_console.print(t("demo.import_failed"))
        raise typer.Exit(1)
    console.rule(t("demo.step_table"))
    engine = get_engine(database)
    table = regional_display(engine)
    print_regional(table, locale)
    html_path = (settings.data_dir / "demo" / "regional.html").resolve()
    html_path.write_text(render_regional_html(table, locale), encoding="utf-8")
    console.rule(t("demo.step_indicators"))
    from utfall.analytics.runs import latest_results, runs_folder

    with progress_bar() as bar:
        bar.add_task(t("demo.computing"), total=None)
        results = latest_results(engine)
    console.print(t("demo.indicators_stored", n=results.num_rows if results else 0,
                    folder=runs_folder().resolve()))
    seconds = time.perf_counter() - began
    console.print(t("demo.written", path=html_path))
    console.print(t("demo.took", seconds=f"{seconds:.0f}"))
    console.print(t("demo.next"))
    if serve is None:  # interactive: end in the web app; scripts and CI: return
        serve = sys.stdin.isatty() and sys.stdout.isatty()
    if serve:
        _serve(engine, port, database)
    else:
        console.print(t("demo.serve_hint", port=port))


def _serve(engine, port: int, database: str | None) -> None:
    """Start the web app with demo accounts, if the web package is installed."""
    try:
        from utfall.web.demo import create_demo_accounts
    except ImportError:
        return
    import uvicorn

    from utfall.web.app import create_app

    persons_file = get_settings().data_dir / "demo" / "demo-persons.txt"
    accounts = create_demo_accounts(engine, persons_file=persons_file)
    table = Table(title=t("demo.accounts"))
    for name in ("user", "password", "role", "unit"):
        table.add_column(name)
    for row in accounts:
        table.add_row(*(str(v) for v in row))
    console.print(table)
    console.print(t("demo.persons_file", path=persons_file.resolve()))
    console.print(t("demo.serving", url=f"http://127.0.0.1:{port}/"))
    settings = get_settings()
    if database:  # serve the store the demo wrote to
        settings = settings.model_copy(update={"database_url": database})
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


def demo_folder(persons: int, seed: int) -> Path:
    """Where ``utfall demo`` keeps its synthetic extract."""
    return get_settings().data_dir / "demo" / f"extract-{persons}-{seed}"
