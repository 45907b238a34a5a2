"""Phase changes and discharge from the command line: ``utfall phase`` and
``utfall discharge``.

They act as ``Actor($USER, "system")`` through the same use cases as the web app and
the API (:mod:`utfall.care.phases`), so every change is validated against the
programme's phase model and audited. Exit codes: 0 done, 1 refused (the reason in
Swedish and English on stderr, with the allowed phases), 2 usage.
Imports stay inside the commands: ``utfall --help`` must stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from utfall.cli.app import app

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", "--db", envvar="UTFALL_DATABASE_URL",
                 help="SQLAlchemy URL (standard: inbäddad SQLite / default: embedded SQLite)."),
]
DateOpt = Annotated[str | None, typer.Option(
    "--date", help="Datum ÅÅÅÅ-MM-DD (standard: i dag) / date (default: today).")]
FactsOpt = Annotated[Path | None, typer.Option(
    "--facts", help="JSON-fil med uppgifter som fasen kräver / JSON file of the data "
                    "the phase needs.")]


def _err(text: str) -> None:
    typer.echo(text, err=True)


def _usage(message: str) -> typer.Exit:
    _err(f"Fel i kommandot / usage: {message}")
    return typer.Exit(2)


def _day(value: str | None) -> Any:
    import datetime as dt

    from utfall.followup import local_today

    if value is None:
        return local_today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _usage(f"--date: ogiltigt datum {value!r} (ÅÅÅÅ-MM-DD) / invalid date") from None


def _facts(path: Path | None) -> dict[str, Any]:
    import json

    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise _usage(f"--facts: kan inte läsa filen / cannot read the file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise _usage(f"--facts: ogiltig JSON / invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _usage("--facts: JSON ska vara ett objekt / JSON must be an object")
    return data


def _run(database: str | None, action: Any) -> Any:
    """Run ``action(conn, actor)`` in one audited transaction; refusals exit 1."""
    import os

    from utfall.access.audit import Actor
    from utfall.access.policy import AccessDenied
    from utfall.care import CareError
    from utfall.care.phases import PhaseRefused
    from utfall.store.db import ensure_schema, get_engine

    engine = get_engine(database)
    ensure_schema(engine)
    actor = Actor(os.environ.get("USER", "cli"), "system")
    try:
        with engine.begin() as conn:
            return action(conn, actor)
    except PhaseRefused as exc:
        _err(f"Nekad / refused: {exc.sv}")
        allowed = ", ".join(f"{a.id} ({a.name.sv})" for a in exc.allowed) or "inga / none"
        _err(f"Tillåtna faser nu / allowed phases now: {allowed}")
        raise typer.Exit(1) from None
    except CareError as exc:
        _err(f"Nekad / refused: {exc.sv} / {exc.en}")
        for issue in exc.issues:
            _err(f"  - {issue.where + ': ' if issue.where else ''}{issue.sv}")
        raise typer.Exit(1) from None
    except AccessDenied as exc:
        _err(f"Nekad / refused: {exc.sv} / {exc.en}")
        raise typer.Exit(1) from None


def _print(view: Any) -> None:
    start = view.start_date.isoformat()
    phase = view.phase_name.sv if view.phase_name else "–"
    typer.echo(f"{view.enrolment_id}: {view.programme_title.sv}, start {start}, fas / "
               f"phase: {phase}")
    if view.end_date is not None:
        reason = view.end_reason_label.sv if view.end_reason_label else view.end_reason
        typer.echo(f"  avslutad / ended {view.end_date.isoformat()}: {reason}")
    for stage in view.pending:
        due = stage.due_date.isoformat() if stage.due_date else "–"
        typer.echo(f"  kommande uppföljning / follow-up: {stage.title.sv} {due} "
                   f"({stage.unit_name or 'ingen enhet / no unit'})")


@app.command("phase")
def phase_command(
    enrolment_id: Annotated[str, typer.Argument(help="Inskrivningens id / enrolment id.")],
    phase: Annotated[str, typer.Argument(help="Ny fas / target phase (e.g. treatment-start).")],
    date: DateOpt = None,
    facts: FactsOpt = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Varför / why.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Byt fas i ett program / move an enrolment to another phase (LARO)."""
    from utfall.care.phases import set_phase

    on_date, given = _day(date), _facts(facts)
    view = _run(database, lambda conn, actor: set_phase(
        conn, actor, enrolment_id, phase, on_date=on_date, facts=given, reason=reason))
    _print(view)


@app.command("discharge")
def discharge_command(
    enrolment_id: Annotated[str, typer.Argument(help="Inskrivningens id / enrolment id.")],
    end_reason: Annotated[str, typer.Option(
        "--reason", help="Avslutsorsak / end reason (completed, dropout, "
                         "involuntary_discharge, transferred, deceased, other).")],
    date: DateOpt = None,
    facts: FactsOpt = None,
    municipal_unit: Annotated[str | None, typer.Option(
        "--municipal-unit", help="Kommunal enhet som följer upp efter avslut / municipal "
                                 "unit of the post-discharge follow-up.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Skriv ut ur ett program / discharge: end reason (+ data it requires, e.g.
    medical_ground in --facts); schedules the post-discharge follow-ups."""
    from utfall.care.phases import discharge

    on_date, given = _day(date), _facts(facts)
    view = _run(database, lambda conn, actor: discharge(
        conn, actor, enrolment_id, on_date=on_date, end_reason=end_reason, facts=given,
        municipal_unit_id=municipal_unit))
    _print(view)
