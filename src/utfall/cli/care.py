"""Follow-up commands: ``enrol``, ``record``, ``due``, ``timeline``.

They act as ``Actor($USER, "system")`` through the service layer (``utfall.care``), so
every read and write is audited. Identity numbers are shown only masked.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from utfall.cli.app import app, console, err_console

if TYPE_CHECKING:  # heavy imports stay inside the commands (fast `utfall --help`)
    from sqlalchemy import Connection

    from utfall.access.audit import Actor

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", envvar="UTFALL_DATABASE_URL",
                 help="SQLAlchemy URL (default: embedded SQLite in the data folder)."),
]


class Format(StrEnum):
    """Output format."""

    table = "table"
    json = "json"


class Principal(StrEnum):
    """Principal type of a work list."""

    region = "region"
    municipality = "municipality"


def _actor() -> Actor:
    from utfall.access.audit import Actor

    return Actor(os.environ.get("USER", "cli"), "system")


def _fail(message: str, details: list[str] | None = None) -> typer.Exit:
    err_console.print(message, style="bold red", markup=False, highlight=False, soft_wrap=True)
    for line in details or []:
        err_console.print(f"  - {line}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(1)


@contextmanager
def _transaction(database: str | None) -> Iterator[Connection]:
    """One audited transaction; service errors end the command with exit code 1."""
    from utfall.access.policy import AccessDenied
    from utfall.care import CareError
    from utfall.store.db import ensure_schema, get_engine

    engine = get_engine(database)
    ensure_schema(engine)
    try:
        with engine.begin() as conn:
            yield conn
    except CareError as exc:
        raise _fail(f"{exc.sv} / {exc.en}", [str(i) for i in exc.issues]) from None
    except AccessDenied as exc:
        raise _fail(f"{exc.sv} / {exc.en}") from None


def _date(value: str | None, option: str) -> dt.date:
    from utfall.followup import local_today

    if value is None:
        return local_today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option}: ogiltigt datum / invalid date: {value!r} (ÅÅÅÅ-MM-DD / "
                    "YYYY-MM-DD)") from None


def _masked(identity_number: str) -> str:
    from utfall.domain.identity import parse_identity_number

    return parse_identity_number(identity_number).masked()


def _person(conn: Connection, identity_number: str) -> str:
    from utfall.care import find_person

    key = find_person(conn, _actor(), identity_number)
    if key is None:
        raise _fail(f"{_masked(identity_number)}: personen är inte registrerad / "
                    "the person is not registered (utfall enrol)")
    return key


def _value(text: str) -> Any:
    text = text.strip()
    if text == "" or text.upper() in ("NA", "-"):
        return None
    return int(text) if text.lstrip("+-").isdigit() else text


def read_answers(path: Path) -> dict[str, Any]:
    """Answers from JSON (object of linkId → value, or a list in item order) or CSV
    (``item,value`` rows, or a header of linkIds with one row of values)."""
    from utfall.instruments import answers_from_list

    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise _fail(f"--answers: kan inte läsa filen / cannot read the file: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _fail(f"--answers: ogiltig JSON / invalid JSON: {exc}") from None
        if isinstance(data, list):
            return answers_from_list(data)
        if isinstance(data, dict):
            return data
        raise _fail("--answers: JSON ska vara ett objekt eller en lista / "
                    "JSON must be an object or a list")
    if path.suffix.lower() != ".csv":
        raise _fail("--answers: filen ska vara .json eller .csv / the file must be .json or .csv")
    rows = [r for r in csv.reader(text.splitlines()) if any(c.strip() for c in r)]
    if not rows:
        raise _fail("--answers: filen är tom / the file is empty")
    header = [c.strip() for c in rows[0]]
    if [h.lower() for h in header[:2]] in (["item", "value"], ["linkid", "value"]):
        return {r[0].strip(): _value(r[1]) for r in rows[1:] if len(r) >= 2}
    if len(rows) != 2:
        raise _fail("--answers: CSV ska ha en rubrikrad med frågor och en rad med svar / CSV "
                    "must have a header of items and one row of answers (or item,value rows)")
    return {h: _value(v) for h, v in zip(header, rows[1], strict=False) if h}


@app.command("enrol")
def enrol_command(
    person_id: Annotated[str, typer.Argument(help="Personnummer / identity number.")],
    programme: Annotated[str, typer.Option("--programme", help="laro, vip-beroende, rop …")],
    unit: Annotated[str, typer.Option("--unit", help="Enhet / unit id.")],
    start: Annotated[str | None, typer.Option("--start", help="Startdatum / start date.")] = None,
    worker: Annotated[str | None, typer.Option("--worker", help="Ansvarig / worker.")] = None,
    municipal_unit: Annotated[str | None, typer.Option(
        "--municipal-unit", help="Kommunal enhet för socialtjänstens steg / municipal unit.")
    ] = None,
    facts: Annotated[Path | None, typer.Option(
        "--facts", help="JSON med inskrivningsuppgifter / JSON file of enrolment data.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Skriv in en person i ett program / enrol a person in a follow-up programme."""
    from utfall.care import CareError, enrol, register_person

    start_date = _date(start, "--start")
    data: dict[str, Any] = {}
    if facts is not None:
        try:
            data = json.loads(facts.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise _fail(f"--facts: {exc}") from None
    with _transaction(database) as conn:
        try:
            key = register_person(conn, _actor(), person_id)
        except CareError as exc:
            raise _fail(f"PERSON_ID: {exc.sv} / {exc.en}",
                        [f"{i.sv} / {i.en}" for i in exc.issues]) from None
        enrolment_id = enrol(conn, _actor(), key, programme, unit, start_date,
                             responsible_worker=worker, municipal_unit_id=municipal_unit,
                             facts=data)
    console.print(f"{_masked(person_id)}: inskriven / enrolled {programme} @ {unit} "
                  f"{start_date} ({enrolment_id})", markup=False, highlight=False)


@app.command("record")
def record_command(
    person_id: Annotated[str, typer.Argument(help="Personnummer / identity number.")],
    instrument: Annotated[str, typer.Option("--instrument", help="audit, dudit, who-5 …")],
    answers: Annotated[Path, typer.Option("--answers", help="FILE.json | FILE.csv")],
    stage: Annotated[str | None, typer.Option("--stage", help="intake, month-6 …")] = None,
    unit: Annotated[str | None, typer.Option(
        "--unit", help="Enhet / unit (default: the person's latest open enrolment).")] = None,
    on_date: Annotated[str | None, typer.Option("--date", help="Datum / date.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Registrera ett formulär / record an administered instrument (validated, scored)."""
    from sqlalchemy import select

    from utfall.care import record_assessment
    from utfall.store.models import Enrolment

    values = read_answers(answers)
    day = _date(on_date, "--date")
    with _transaction(database) as conn:
        key = _person(conn, person_id)
        if unit is None:
            e = Enrolment.__table__
            unit = conn.execute(select(e.c.unit_id).where(
                e.c.person_key == key, e.c.end_date.is_(None))
                .order_by(e.c.start_date.desc())).scalar()
            if unit is None:
                raise _fail("--unit: ange enhet (ingen öppen inskrivning) / give the unit "
                            "(no open enrolment)")
        assessment_id = record_assessment(conn, _actor(), key, instrument, values, stage=stage,
                                          unit_id=unit, on_date=day)
        from utfall.store.models import Assessment

        row = conn.execute(select(Assessment.score, Assessment.band, Assessment.stage)
                           .where(Assessment.row_key == assessment_id)).one()
    score = "–" if row.score is None else f"{row.score:g}"
    console.print(f"{_masked(person_id)}: {instrument} {day} stage={row.stage or '–'} "
                  f"poäng/score={score} nivå/band={row.band or '–'} ({assessment_id})",
                  markup=False, highlight=False)


STATUS_TEXT = {
    "upcoming": "kommande / upcoming", "due": "aktuell / due", "overdue": "försenad / overdue",
    "missed": "missad / missed", "done_in_window": "gjord / done in window",
    "done_late": "gjord sent / done late", "done_early": "gjord tidigt / done early",
}
STATUS_STYLE = {"overdue": "bold red", "due": "bold yellow", "missed": "red",
                "done_in_window": "green", "done_late": "yellow"}


@app.command("due")
def due_command(
    unit: Annotated[str, typer.Option("--unit", help="Enhet / unit id.")],
    principal: Annotated[Principal | None, typer.Option(
        "--principal", help="region | municipality")] = None,
    worker: Annotated[str | None, typer.Option("--worker", help="Ansvarig / worker.")] = None,
    today: Annotated[str | None, typer.Option("--today", help="Dag / as of date.")] = None,
    output: Annotated[Format, typer.Option("--format", help="table | json")] = Format.table,
    database: DatabaseOpt = None,
) -> None:
    """Uppföljningar att göra / the unit's follow-up work list (Europe/Stockholm)."""
    from utfall.care import due_list

    day = _date(today, "--today")
    with _transaction(database) as conn:
        items = due_list(conn, _actor(), unit_id=unit,
                         principal=principal.value if principal else None, worker=worker,
                         today=day)
    if output is Format.json:
        console.print_json(json.dumps([i.model_dump(mode="json") for i in items]))
        return
    table = Table(title=f"Uppföljningar / follow-ups {unit} {day}")
    for column in ("Person", "Program", "Steg / stage", "Status", "Förfallodag / due",
                   "Fönster / window", "Ansvarig / worker", "Formulär / instruments"):
        table.add_column(column)
    for i in items:
        window = f"{i.window_start} – {i.window_end}" if i.window_start else "–"
        table.add_row(i.person, i.programme, i.stage_id,
                      f"[{STATUS_STYLE.get(i.status, '')}]{STATUS_TEXT.get(i.status, i.status)}"
                      if i.status in STATUS_STYLE else STATUS_TEXT.get(i.status, i.status),
                      str(i.due_date or "–"), window, i.worker or "–", ", ".join(i.instruments))
    console.print(table)
    if not items:
        console.print("Inget att göra / nothing due.")


@app.command("timeline")
def timeline_command(
    person_id: Annotated[str, typer.Argument(help="Personnummer / identity number.")],
    output: Annotated[Format, typer.Option("--format", help="table | json")] = Format.table,
    svg: Annotated[Path | None, typer.Option("--svg", help="Skriv profildiagram / write the "
                                                          "domain profile chart (SVG).")] = None,
    locale: Annotated[str, typer.Option("--locale", help="sv | en")] = "sv",
    database: DatabaseOpt = None,
) -> None:
    """Personens tidslinje / a person's timeline across principals."""
    from utfall.care import timeline, timeline_chart_svg
    from utfall.care.timeline import (
        AssessmentEntry,
        ContactEntry,
        EnrolmentEntry,
        InterventionEntry,
        MedicationEntry,
    )

    with _transaction(database) as conn:
        key = _person(conn, person_id)
        tl = timeline(conn, _actor(), key)
    if svg is not None:
        svg.write_text(timeline_chart_svg(tl, "en" if locale == "en" else "sv"),
                       encoding="utf-8")
    if output is Format.json:
        data = tl.model_dump(mode="json")
        data["person"] = _masked(person_id)
        console.print_json(json.dumps(data))
        return
    en = locale == "en"
    table = Table(title=f"{_masked(person_id)} – tidslinje / timeline")
    for column in ("Datum / date", "Typ / kind", "Vad / what", "Värde / value", "Enhet / unit",
                   "Huvudman / principal"):
        table.add_column(column)
    def text(value: Any, fallback: str = "") -> str:
        """A label's text in the chosen language (the code only when none is known)."""
        if value is None:
            return fallback
        return str(value.en if en else value.sv)

    for entry in tl.entries():
        title = text(entry.title)
        value = ""
        if isinstance(entry, AssessmentEntry):  # kind "assessment"
            band = text(entry.band_label, entry.band or "")
            total = "" if entry.score is None else f"{entry.score:g}".replace(
                ".", "." if en else ",")
            stage = text(entry.stage_label, entry.stage or "")
            value = f"{total} {band}".strip() + (f" ({stage})" if stage else "")
        elif isinstance(entry, EnrolmentEntry):  # kind "enrolment"
            phases = " → ".join(text(p.name, p.phase) for p in entry.phases)
            end = f" – {entry.end_date} {text(entry.end_reason_label, entry.end_reason or '')}" \
                if entry.end_date else ""
            value = f"{phases}{end}".strip()
        elif isinstance(entry, InterventionEntry):  # kind "procedure"
            value = f"({entry.kva_code})"
        elif isinstance(entry, MedicationEntry):  # kind "medication"
            value = f"({entry.atc})"
        elif isinstance(entry, ContactEntry):  # kind "contact"
            value = text(entry.setting_label, entry.contact_type)
            if entry.dx_label is not None and text(entry.dx_label) != title:
                value += f" · {text(entry.dx_label)}"
            if entry.dx_code:
                value += f" ({entry.dx_code})"
        table.add_row(str(entry.date), text(entry.kind_label, entry.kind), title, value,
                      entry.unit_name or "–", text(entry.principal_label,
                                                   entry.principal_type or "–"))
    console.print(table)
    for goal in tl.goals:
        console.print(f"Mål / goal {goal.date}: {goal.text or '–'} "
                      f"({goal.attainment if goal.attainment is not None else '–'}/10)",
                      markup=False, highlight=False)
    if svg is not None:
        console.print(f"{svg}", markup=False, highlight=False)
