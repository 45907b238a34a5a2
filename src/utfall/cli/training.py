"""``utfall training import FILE.csv``: staff training records per unit (structure measures).

Exit codes: 0 ok, 1 errors in the file (nothing loaded), 2 usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from utfall.cli.app import app, console, err_console

training_app = typer.Typer(help="Utbildningar (strukturmått) / training records.",
                           no_args_is_help=True)
app.add_typer(training_app, name="training")


@training_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="CSV: unit_id,staff_ref,course_id,completed_on")],
    database: Annotated[
        str | None,
        typer.Option("--database", envvar="UTFALL_DATABASE_URL", help="Database URL."),
    ] = None,
) -> None:
    """Läs in personalens utbildningar / import staff training (replaces all records)."""
    from utfall.analytics.training import TrainingImportError, import_training
    from utfall.store.db import ensure_schema, get_engine

    engine = get_engine(database)
    ensure_schema(engine)
    try:
        n = import_training(engine, file)
    except TrainingImportError as exc:
        for line in exc.errors:
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)
        err_console.print(f"{len(exc.errors)} fel – inget lästes in / errors – nothing loaded",
                          style="bold red")
        raise typer.Exit(1) from None
    console.print(f"{n} rader inlästa från / rows imported from {file.name}",
                  highlight=False)
