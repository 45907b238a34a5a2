"""Account administration commands: ``utfall users edit|deactivate|activate|unlock|
reset-password|prune`` (``users add|list`` are in ``cli/web.py``). Each change is
written to the audit log as actor ``cli`` with role ``system``."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from utfall.cli.app import console, err_console
from utfall.cli.web import DatabaseOpt, users_app


def _engine(database: str | None):
    from utfall.store.db import ensure_schema, get_engine

    engine = get_engine(database)
    ensure_schema(engine)
    return engine


def _run(database: str | None, action, done: str) -> None:
    """Run ``action(conn, actor)`` in one transaction; exit 2 with the reason on error."""
    from utfall.access.accounts import AccountError
    from utfall.access.audit import Actor

    actor = Actor(os.environ.get("USER") or "cli", "system")
    try:
        with _engine(database).begin() as conn:
            action(conn, actor)
    except AccountError as exc:
        err_console.print(str(exc), style="bold red", markup=False)
        raise typer.Exit(2) from None
    console.print(done, markup=False)


@users_app.command("edit")
def users_edit(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str | None, typer.Option("--role", help="New role.")] = None,
    unit: Annotated[list[str] | None, typer.Option(
        "--unit", help="Unit id (repeatable); replaces the user's units.")] = None,
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Ändra roll och enheter / change role and units (the role must fit every unit's
    principal); the user's sessions end when role or units change."""
    from utfall.access.admin import edit_user

    _run(database, lambda conn, actor: edit_user(conn, actor, name, role=role, units=unit,
                                                 display_name=display_name),
         f"{name}: sparad / saved")


@users_app.command("deactivate")
def users_deactivate(name: Annotated[str, typer.Argument(help="User name.")],
                     database: DatabaseOpt = None) -> None:
    """Stäng av ett konto / deactivate an account (its sessions end at once)."""
    from utfall.access.admin import set_active

    _run(database, lambda conn, actor: set_active(conn, actor, name, False),
         f"{name}: avstängt / deactivated")


@users_app.command("activate")
def users_activate(name: Annotated[str, typer.Argument(help="User name.")],
                   database: DatabaseOpt = None) -> None:
    """Aktivera ett konto igen / reactivate an account."""
    from utfall.access.admin import set_active

    _run(database, lambda conn, actor: set_active(conn, actor, name, True),
         f"{name}: aktivt / active")


@users_app.command("unlock")
def users_unlock(name: Annotated[str, typer.Argument(help="User name.")],
                 database: DatabaseOpt = None) -> None:
    """Nollställ väntetiden efter misslyckade inloggningar / clear the login back-off."""
    from utfall.access.admin import unlock

    _run(database, lambda conn, actor: unlock(conn, actor, name), f"{name}: upplåst / unlocked")


@users_app.command("reset-password")
def users_reset_password(name: Annotated[str, typer.Argument(help="User name.")],
                         database: DatabaseOpt = None) -> None:
    """Sätt nytt lösenord / set a new password, read from ``UTFALL_NEW_PASSWORD`` or a
    hidden prompt (never an argument); the policy applies and the user's sessions end."""
    from utfall.access.admin import reset_password

    password = os.environ.get("UTFALL_NEW_PASSWORD") or typer.prompt(
        "Nytt lösenord / new password", hide_input=True, confirmation_prompt=True)
    _run(database, lambda conn, actor: reset_password(conn, actor, name, password),
         f"{name}: nytt lösenord / password reset")


@users_app.command("prune")
def users_prune(
    days: Annotated[int | None, typer.Option(
        "--days", help="Keep login attempts this many days (default "
                       "UTFALL_LOGIN_ATTEMPT_DAYS or 90).")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Rensa avslutade sessioner och gamla inloggningsförsök / delete ended sessions and
    old login attempts (also done at login, at most hourly)."""
    from utfall.access.accounts import prune

    with _engine(database).begin() as conn:
        sessions, attempts = prune(conn, days)
    console.print(f"sessioner / sessions: {sessions}, inloggningsförsök / login attempts: "
                  f"{attempts}", markup=False)
