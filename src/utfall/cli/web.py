"""Web commands: ``serve``, ``users add|list``, ``audit verify``."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from utfall.cli.app import app, console, err_console
from utfall.i18n import t

users_app = typer.Typer(help="Användare / user accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="Åtkomstloggen / the access log.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", envvar="UTFALL_DATABASE_URL",
                 help="SQLAlchemy URL (default: embedded SQLite in the data folder)."),
]


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    database: DatabaseOpt = None,
) -> None:
    """Starta webbappen / run the web application (uvicorn)."""
    import uvicorn

    if database:
        os.environ["UTFALL_DATABASE_URL"] = database
        from utfall.config import get_settings

        get_settings.cache_clear()
    console.print(t("cli.serve.start", host=host, port=port))
    uvicorn.run("utfall.web.app:create_app", factory=True, host=host, port=port,
                workers=workers, proxy_headers=True, server_header=False, log_level="info")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option("--role", help="clinician, social_worker, unit_manager, "
                                                     "analyst or admin.")],
    unit: Annotated[list[str] | None, typer.Option("--unit", help="Unit id (repeatable).")]
    = None,
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Skapa en användare / add a local user. The password is read from
    ``UTFALL_NEW_PASSWORD`` or prompted for (never given as an argument)."""
    from utfall.access.accounts import AccountError, create_user
    from utfall.store.db import ensure_schema, get_engine

    password = os.environ.get("UTFALL_NEW_PASSWORD") or typer.prompt(
        "Lösenord / password", hide_input=True, confirmation_prompt=True)
    engine = get_engine(database)
    ensure_schema(engine)
    try:
        with engine.begin() as conn:
            create_user(conn, name, role, unit or [], password=password,
                        display_name=display_name)
    except AccountError as exc:
        err_console.print(str(exc), style="bold red", markup=False)
        raise typer.Exit(2) from None
    console.print(t("cli.users.added", user=name, role=role))


@users_app.command("list")
def users_list(database: DatabaseOpt = None) -> None:
    """Lista användare / list users and their units."""
    from sqlalchemy import select

    from utfall.store.db import ensure_schema, get_engine
    from utfall.store.models_access import UserAccount, UserUnit

    engine = get_engine(database)
    ensure_schema(engine)
    table = Table()
    for col in ("user", "role", "units", "login", "active"):
        table.add_column(col)
    with engine.connect() as conn:
        units: dict[int, list[str]] = {}
        for uid, unit_id in conn.execute(select(UserUnit.user_id, UserUnit.unit_id)):
            units.setdefault(uid, []).append(unit_id)
        for u in conn.execute(select(UserAccount).order_by(UserAccount.username)):
            table.add_row(u.username, u.role, ", ".join(units.get(u.id, [])),
                          u.identity_provider, "yes" if u.active else "no")
    console.print(table)


@audit_app.command("verify")
def audit_verify(database: DatabaseOpt = None) -> None:
    """Kontrollera loggkedjan / verify the hash chain; exit 1 naming tampered events."""
    from sqlalchemy import func, select

    from utfall.access.review import verify_all
    from utfall.store.db import ensure_schema, get_engine
    from utfall.store.models import AuditEvent

    engine = get_engine(database)
    ensure_schema(engine)
    with engine.connect() as conn:
        problems = verify_all(conn)
        count = conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    if problems:
        for p in problems:
            err_console.print(f"event {p.event_id}: {p.reason}", markup=False)
        err_console.print(t("cli.audit.broken", n=len(problems)), style="bold red")
        raise typer.Exit(1)
    console.print(t("cli.audit.ok", n=count))
