"""``utfall synth``: write a synthetic region's extract (format v1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from utfall.cli.app import app, console


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the extract into.")],
    persons: Annotated[int, typer.Option("--persons", "-n", min=1,
                                         help="Number of persons.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Random seed.")] = 1,
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help="File format: csv or parquet.")] = "csv",
    first_year: Annotated[int, typer.Option("--first-year", help="First year of contacts.")] = 2017,
    last_year: Annotated[int, typer.Option("--last-year", help="Last year of contacts.")] = 2024,
) -> None:
    """Generera en syntetisk region / generate a synthetic region's extract (clearly marked)."""
    from utfall.synth import generate  # numpy/pyarrow only when the command runs

    if fmt not in ("csv", "parquet"):
        raise typer.BadParameter("use csv or parquet", param_hint="--format")
    with Progress(TextColumn("[bold]{task.description:<20}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("starting", total=1.0)

        def report(step: str, fraction: float) -> None:
            bar.update(task, description=step, completed=fraction)

        summary = generate(out, persons=persons, seed=seed, fmt=fmt, first_year=first_year,
                           last_year=last_year, progress=report)
    table = Table(title=f"Synthetic extract in {out} ({summary['seconds']} s)")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, rows in summary["rows"].items():
        table.add_row(f"{name}.{fmt}", f"{rows:,}")
    console.print(table)
    console.print("Planted findings (see manifest.json): " + ", ".join(
        f"{key} → {value['unit_id']}" for key, value in summary["planted_findings"].items()
        if isinstance(value, dict) and "unit_id" in value))
