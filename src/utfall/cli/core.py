"""Core commands: ``import``, ``export-analytics``, ``db upgrade``/``db current``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from utfall.cli.app import app, console, db_app, err_console
from utfall.i18n import t

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", envvar="UTFALL_DATABASE_URL",
                 help="SQLAlchemy URL (default: embedded SQLite in the data folder)."),
]


def progress_bar() -> Progress:
    """The Rich progress bar used by long-running commands."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True)


def run_import(folder: Path, database: str | None) -> int:
    """Import ``folder``; print the outcome; return the exit code (0 ok, 1 rejected)."""
    from utfall.interop.extract_load import import_extract
    from utfall.interop.extract_validate import ExtractRejected
    from utfall.store.db import get_engine

    engine = get_engine(database)
    with progress_bar() as bar:
        tasks: dict[str, int] = {}

        def report(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(t("import.loading", table=table), total=total)
            bar.update(tasks[table], completed=done)

        try:
            result = import_extract(folder, engine, progress=report)
        except ExtractRejected as rejected:
            bar.stop()
            for problem in rejected.errors:
                err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
            err_console.print(t("import.rejected", n=len(rejected.errors)), style="bold red")
            return 1
    for warning in result.warnings:
        err_console.print(f"{warning} ({t('warning')})", markup=False, highlight=False,
                          soft_wrap=True)
    table = Table(title=t("import.done", folder=folder.name))
    table.add_column(t("table"))
    table.add_column(t("rows"), justify="right")
    for name, count in result.row_counts.items():
        table.add_row(name, f"{count:,}".replace(",", " "))
    console.print(table)
    contacts = result.row_counts.get("contacts", 0)
    console.print(t("import.speed", seconds=f"{result.seconds:.1f}",
                    rate=f"{contacts / max(result.seconds, 1e-9):,.0f}".replace(",", " ")))
    return 0


@app.command("import")
def import_command(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, dir_okay=True,
                                           help="Extract folder (format v1).")],
    database: DatabaseOpt = None,
) -> None:
    """Importera ett uttag (format v1) / import an extract folder, all or nothing."""
    raise typer.Exit(run_import(folder, database))


@app.command("export-analytics")
def export_analytics(
    out: Annotated[Path, typer.Argument(file_okay=False, help="Output folder.")],
    database: DatabaseOpt = None,
) -> None:
    """Skriv analysschemat som Parquet / write the canonical analytics tables as Parquet."""
    from utfall.access.audit import Actor, log_event
    from utfall.store.canonical import canonical_tables, write_parquet
    from utfall.store.db import ensure_schema, get_engine

    engine = get_engine(database)
    ensure_schema(engine)
    tables = canonical_tables(engine)
    paths = write_parquet(tables, out)
    with engine.begin() as conn:
        log_event(conn, Actor("cli", "analyst"), "export", None,
                  {"what": "canonical analytics tables (pseudonymised)", "folder": out.name,
                   "rows": {k: v.num_rows for k, v in tables.items()}})
    from utfall.access.checkpoint import checkpoint_after_batch

    checkpoint_after_batch(engine, "export")
    for path in paths:
        console.print(f"{path}  ({tables[path.stem].num_rows} {t('rows')})")


@db_app.command("upgrade")
def db_upgrade(database: DatabaseOpt = None) -> None:
    """Migrera databasen till senaste version / migrate the store to the newest revision."""
    from utfall.store.db import get_engine, upgrade

    upgrade(get_engine(database))
    console.print(t("db.upgraded"))


@db_app.command("current")
def db_current(database: DatabaseOpt = None) -> None:
    """Visa databasens version / show the store's migration revision."""
    from alembic.runtime.migration import MigrationContext

    from utfall.store.db import get_engine

    with get_engine(database).connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    console.print(", ".join(heads) or "-")
