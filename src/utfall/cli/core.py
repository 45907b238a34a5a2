"""Core commands: ``import``, ``export-analytics``, ``db upgrade``/``db current``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
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


def run_import(folder: Path, database: str | None, *, dry_run: bool = False,
               source: str | None = None) -> int:
    """Import ``folder`` (or, with ``dry_run``, show what an import would change and
    write nothing); print the outcome; return the exit code (0 ok, 1 rejected)."""
    from utfall.interop.extract_load import import_extract
    from utfall.interop.extract_validate import ExtractRejected
    from utfall.store.db import get_engine

    engine = None if dry_run and _missing_sqlite_file(database) else get_engine(database)
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def report(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(t("import.loading", table=table), total=total)
            bar.update(tasks[table], completed=done)

        try:
            result = import_extract(folder, engine, progress=report, source=source,
                                    dry_run=dry_run)
        except ExtractRejected as rejected:
            bar.stop()
            for problem in rejected.errors:
                err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
            err_console.print(t("import.rejected", n=len(rejected.errors)), style="bold red")
            return 1
    for warning in result.warnings:
        err_console.print(f"{warning} ({t('warning')})", markup=False, highlight=False,
                          soft_wrap=True)
    title = t("import.dry_run" if dry_run else "import.done", folder=folder.name)
    table = Table(title=title)
    for heading in ("table", "rows", "import.new", "import.changed", "import.unchanged"):
        table.add_column(t(heading), justify="left" if heading == "table" else "right")
    table.add_column(t("import.changed_columns"))
    for name, count in result.row_counts.items():
        change = result.changes.get(name)
        cells = [change.new, change.changed, change.unchanged] if change else [0, 0, 0]
        columns = ", ".join(f"{c} {_n(n)}" for c, n in change.columns.items()) if change else ""
        table.add_row(name, _n(count), *(_n(c) for c in cells), columns)
    console.print(table)
    if result.source:
        console.print(t("import.source", source=result.source), markup=False)
    if dry_run:
        console.print(t("import.dry_run_written"))
        return 0
    contacts = result.row_counts.get("contacts", 0)
    console.print(t("import.speed", seconds=f"{result.seconds:.1f}",
                    rate=f"{contacts / max(result.seconds, 1e-9):,.0f}".replace(",", " ")))
    return 0


def _n(count: int) -> str:
    """A count with a space as thousands separator (Swedish style)."""
    return f"{count:,}".replace(",", " ")


def _missing_sqlite_file(database: str | None) -> bool:
    """True when the store is an SQLite file that does not exist (a dry run must not
    create it)."""
    from utfall.config import get_settings

    url = database or get_settings().effective_database_url
    if not url.startswith("sqlite"):
        return False
    path = url.split("///", 1)[-1]
    return bool(path) and path != ":memory:" and not Path(path).exists()


@app.command("import")
def import_command(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, dir_okay=True,
                                           help="Extract folder (format v1).")],
    database: DatabaseOpt = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Visa vad som skulle ändras, skriv inget / show what would "
                          "change (new, changed, unchanged per table) and write nothing.")
    ] = False,
    source: Annotated[str | None, typer.Option(
        "--source", help="Källsystem / the source system, when manifest.json names none "
                         "(scopes contact_id).")] = None,
) -> None:
    """Importera ett uttag (format v1) / import an extract folder, all or nothing."""
    raise typer.Exit(run_import(folder, database, dry_run=dry_run, source=source))


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


def _counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title)
    table.add_column(t("table"))
    table.add_column(t("rows"), justify="right")
    for name, count in counts.items():
        table.add_row(name, _n(count))
    return table


@db_app.command("backup")
def db_backup(
    out: Annotated[Path, typer.Argument(dir_okay=False, help="New backup file.")],
    database: DatabaseOpt = None,
) -> None:
    """Säkerhetskopiera databasen / write a consistent backup of the store to OUT
    (SQLite online backup, or pg_dump for PostgreSQL); exit 1 if it cannot be made."""
    from utfall.store.backup import BackupError, backup

    try:
        result = backup(out, database)
    except BackupError as exc:
        err_console.print(t("db.backup.failed", reason=str(exc)), style="bold red",
                          markup=False, highlight=False)
        raise typer.Exit(1) from None
    console.print(_counts_table(t("db.backup.done", path=str(result.path), kind=result.kind),
                                result.row_counts))
    for note in result.notes:
        err_console.print(f"{note} ({t('warning')})", markup=False, highlight=False)


@db_app.command("restore")
def db_restore(
    source: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                           help="Backup file (from utfall db backup).")],
    force: Annotated[bool, typer.Option("--force", help="Replace a store that holds data.")]
    = False,
    database: DatabaseOpt = None,
) -> None:
    """Återställ en säkerhetskopia / restore a backup into the store, migrate it and verify
    the audit chain; exit 1 if the store is not empty (without --force) or the chain
    is broken."""
    from utfall.store.backup import BackupError, StoreNotEmpty, restore

    try:
        result = restore(source, database, force=force)
    except StoreNotEmpty:
        err_console.print(t("db.restore.not_empty"), style="bold red")
        raise typer.Exit(1) from None
    except BackupError as exc:
        err_console.print(t("db.restore.failed", reason=str(exc)), style="bold red",
                          markup=False, highlight=False)
        raise typer.Exit(1) from None
    console.print(_counts_table(t("db.restore.done", path=source.name), result.row_counts))
    for note in result.notes:
        err_console.print(f"{note} ({t('warning')})", markup=False, highlight=False)
    if result.audit_problems:
        for problem in result.audit_problems:
            err_console.print(problem, markup=False)
        err_console.print(t("cli.audit.broken", n=len(result.audit_problems)),
                          style="bold red")
        raise typer.Exit(1)
    console.print(t("db.restore.chain_ok", n=_n(result.row_counts.get("audit_event", 0))))
