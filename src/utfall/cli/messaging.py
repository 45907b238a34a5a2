"""Reminder commands: ``utfall reminders send [--dry-run]`` (run it from cron).

Sends the reminders of self-report invitations that are due, stops those whose link
is answered or has closed, and prints counts (recipients only masked).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from utfall.cli.app import app, console
from utfall.cli.care import DatabaseOpt, _fail

reminders_app = typer.Typer(help="Påminnelser / reminders of self-report links.",
                            no_args_is_help=True)
app.add_typer(reminders_app, name="reminders")


@reminders_app.command("send")
def send_command(
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Visa vad som skulle skickas / show what would be sent.")] = False,
    now: Annotated[str | None, typer.Option(
        "--now", help="Tidpunkt (ISO 8601 med tidszon) / instant, for testing.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Skicka påminnelser som är aktuella / send the reminders that are due."""
    from utfall.messaging.invitations import send_due_reminders
    from utfall.store.db import ensure_schema, get_engine

    instant = None
    if now is not None:
        try:
            instant = dt.datetime.fromisoformat(now)
        except ValueError:
            raise _fail("--now: ogiltig tidpunkt / invalid instant (ISO 8601)") from None
        if instant.tzinfo is None:
            raise _fail("--now: ange tidszon / give a time zone (e.g. +01:00)")
    engine = get_engine(database)
    ensure_schema(engine)
    run = send_due_reminders(engine, now=instant, dry_run=dry_run)
    for item in run.due:
        console.print(f"{'skulle skicka' if dry_run else 'påminnelse'} / "
                      f"{'would send' if dry_run else 'reminder'}: {item['channel']} "
                      f"{item['to']} ({item['days_before']} d)", markup=False,
                      highlight=False)
    console.print(f"skickade / sent: {run.sent}, misslyckade / failed: {run.failed}, "
                  f"stoppade (besvarade) / stopped (answered): {run.stopped_answered}, "
                  f"stoppade (stängda) / stopped (closed): {run.stopped_closed}"
                  f"{' (torrkörning / dry run)' if dry_run else ''}", markup=False,
                  highlight=False)
    if run.failed:
        raise typer.Exit(1)
