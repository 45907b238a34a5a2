"""The Typer application object and shared CLI helpers.

Commands live in sibling modules (``core``, ``followup``, ``analytics``, ``web``…);
each registers itself on :data:`app` and is imported by ``utfall.cli``.
"""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="utfall",
    help="Utfall – systematisk uppföljning av utfall i beroendevården / outcome follow-up.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Databasen / the operational store.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)
