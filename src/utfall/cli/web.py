"""Web commands: ``serve``, ``users …``, ``audit verify|checkpoint|prune|person-log``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
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
    # X-Forwarded-For/-Proto only from the configured proxies (none by default), so the
    # scheme (Secure cookies, HSTS) and client address cannot be claimed by anyone else
    proxies = [p.strip() for p in os.environ.get("UTFALL_TRUSTED_PROXIES", "")
               .replace(";", ",").split(",") if p.strip()]
    uvicorn.run("utfall.web.app:create_app", factory=True, host=host, port=port,
                workers=workers, proxy_headers=bool(proxies), forwarded_allow_ips=proxies,
                server_header=False, log_level="info")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option("--role", help="clinician, social_worker, unit_manager, "
                                                     "analyst or admin.")],
    unit: Annotated[list[str] | None, typer.Option("--unit", help="Unit id (repeatable).")]
    = None,
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    provider: Annotated[str | None, typer.Option(
        "--provider", help="OIDC issuer of an external account (no password).")] = None,
    subject: Annotated[str | None, typer.Option(
        "--subject", help="The external subject (claim value) of --provider.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Skapa en användare / add a user. A local user's password is read from
    ``UTFALL_NEW_PASSWORD`` or prompted for (never given as an argument); an external
    (OIDC) user is given ``--provider ISSUER --subject SUB`` instead."""
    from utfall.access.accounts import AccountError, create_user
    from utfall.store.db import ensure_schema, get_engine

    password = None
    if provider is None:
        password = os.environ.get("UTFALL_NEW_PASSWORD") or typer.prompt(
            "Lösenord / password", hide_input=True, confirmation_prompt=True)
    engine = get_engine(database)
    ensure_schema(engine)
    try:
        with engine.begin() as conn:
            create_user(conn, name, role, unit or [], password=password,
                        display_name=display_name, provider=provider or "local",
                        subject=subject)
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
    for col in ("user", "role", "units", "login", "active", "failed"):
        table.add_column(col)
    with engine.connect() as conn:
        units: dict[int, list[str]] = {}
        for uid, unit_id in conn.execute(select(UserUnit.user_id, UserUnit.unit_id)):
            units.setdefault(uid, []).append(unit_id)
        for u in conn.execute(select(UserAccount).order_by(UserAccount.username)):
            table.add_row(u.username, u.role, ", ".join(units.get(u.id, [])),
                          u.identity_provider, "yes" if u.active else "no",
                          str(u.failed_logins))
    console.print(table)


@audit_app.command("verify")
def audit_verify(database: DatabaseOpt = None) -> None:
    """Kontrollera loggkedjan mot signerade kontrollpunkter / verify the hash chain
    against the signed checkpoints; exit 1 naming tampered or missing events."""
    from utfall.access.checkpoint import verify_store
    from utfall.store.db import ensure_schema, get_engine

    engine = get_engine(database)
    ensure_schema(engine)
    result = verify_store(engine)
    if result.problems:
        for problem in result.problems:
            err_console.print(problem, markup=False, highlight=False, soft_wrap=True)
        err_console.print(t("cli.audit.broken", n=len(result.problems)), style="bold red")
        raise typer.Exit(1)
    console.print(t("cli.audit.ok", n=result.events))
    if result.checkpoint:
        console.print(t("cli.audit.checkpoint", at=result.checkpoint["at"],
                        n=result.checkpoint["count"]), markup=False)


@audit_app.command("checkpoint")
def audit_checkpoint(
    reanchor: Annotated[str | None, typer.Option(
        "--reanchor", help="Start over from the log as it stands (e.g. after restoring a "
                           "backup); give the reason.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Skriv en signerad kontrollpunkt / write a signed checkpoint (count + head hash)."""
    from utfall.access.checkpoint import CheckpointRefused, write_checkpoint
    from utfall.store.db import ensure_schema, get_engine

    engine = get_engine(database)
    ensure_schema(engine)
    try:
        record = write_checkpoint(engine, "manual", reanchor=reanchor)
    except CheckpointRefused as exc:
        err_console.print(str(exc), style="bold red", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    assert record is not None
    console.print(t("cli.audit.checkpoint", at=record["at"], n=record["count"]), markup=False)


@audit_app.command("prune")
def audit_prune(
    before: Annotated[str, typer.Option("--before", help="Delete events before this date "
                                                         "(YYYY-MM-DD).")],
    database: DatabaseOpt = None,
) -> None:
    """Gallra gamla händelser / delete events older than the retention period, bridged
    by a signed checkpoint."""
    import datetime as dt

    from utfall.access.checkpoint import CheckpointRefused, prune_before
    from utfall.store.db import ensure_schema, get_engine

    try:
        day = dt.date.fromisoformat(before)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--before") from None
    engine = get_engine(database)
    ensure_schema(engine)
    try:
        removed = prune_before(engine, day)
    except CheckpointRefused as exc:
        err_console.print(str(exc), style="bold red", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(t("cli.audit.pruned", n=removed, before=day.isoformat()))


@audit_app.command("person-log")
def audit_person_log(
    person_key: Annotated[str, typer.Argument(help="The person's pseudonymous key.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", "-o", dir_okay=False)] = None,
    database: DatabaseOpt = None,
) -> None:
    """En persons åtkomstlogg / a person's access log, to hand over to them (logged)."""
    from sqlalchemy import select

    from utfall.access.audit import Actor, log_event
    from utfall.access.person_log import FORMATS, render_person_log
    from utfall.access.review import person_access_extract
    from utfall.store.db import ensure_schema, get_engine
    from utfall.store.models import Person

    if fmt not in FORMATS:
        raise typer.BadParameter("use csv or json", param_hint="--format")
    engine = get_engine(database)
    ensure_schema(engine)
    with engine.begin() as conn:
        if conn.execute(select(Person.person_key).where(Person.person_key == person_key)
                        ).first() is None:
            err_console.print(t("cli.audit.no_person", key=person_key), markup=False)
            raise typer.Exit(1)
        rows = person_access_extract(conn, person_key)
        log_event(conn, Actor(os.environ.get("USER", "cli"), "system"), "print", person_key,
                  {"what": "access_log_extract", "format": fmt})
    text = render_person_log(rows, fmt)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
