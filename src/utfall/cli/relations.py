"""Care-relation commands: ``utfall relations add|list|from-contacts``.

They act as ``Actor($USER, "system")`` through ``utfall.access.relations`` (checked
and audited); identity numbers are shown only masked.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from utfall.cli.app import app, console
from utfall.cli.care import DatabaseOpt, _actor, _fail, _masked, _person, _transaction

relations_app = typer.Typer(help="Vårdrelationer / care relations.", no_args_is_help=True)
app.add_typer(relations_app, name="relations")


def _day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option}: ogiltigt datum / invalid date (YYYY-MM-DD)") from None


@relations_app.command("add")
def add_command(
    person_id: Annotated[str, typer.Argument(help="Personnummer / identity number.")],
    unit: Annotated[str, typer.Option("--unit", help="Enhet / unit id.")],
    basis: Annotated[str, typer.Option(
        "--basis", help="referral, assignment, sip, enrolment, registration")] = "referral",
    valid_to: Annotated[str | None, typer.Option("--valid-to", help="Slutdatum / end.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Anteckning / note.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Ge en enhet vårdrelation med en person / give a unit a care relation (audited)."""
    from utfall.access.relations import RelationError, create_relation

    end = _day(valid_to, "--valid-to")
    with _transaction(database) as conn:
        key = _person(conn, person_id)
        try:
            relation_id = create_relation(conn, _actor(), key, unit_id=unit, basis=basis,
                                          valid_to=end, note=note)
        except RelationError as exc:
            raise _fail(f"--{exc.field.replace('_id', '')}: {exc.sv} / {exc.en}") from None
    console.print(f"{_masked(person_id)}: vårdrelation / care relation {basis} @ {unit} "
                  f"({relation_id})", markup=False, highlight=False)


@relations_app.command("list")
def list_command(
    person_id: Annotated[str, typer.Argument(help="Personnummer / identity number.")],
    database: DatabaseOpt = None,
) -> None:
    """Visa en persons vårdrelationer / list a person's care relations (audited read)."""
    from utfall.access.relations import list_relations

    with _transaction(database) as conn:
        rows = list_relations(conn, _actor(), _person(conn, person_id))
    table = Table("unit", "basis", "from", "to", "by", "active")
    for r in rows:
        table.add_row(r["unit_id"], r["basis"], r["valid_from"] or "", r["valid_to"] or "",
                      r["created_by"] or "", "yes" if r["active"] else "no")
    console.print(table)


@relations_app.command("from-contacts")
def from_contacts_command(
    units: Annotated[list[str], typer.Option("--unit", help="Enhet / unit id (repeat).")],
    valid_to: Annotated[str | None, typer.Option(
        "--valid-to", help="Minsta slutdatum / at least until this date.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Lagra vårdrelationer från importerade kontakter / store the relations imported
    contacts at the units imply (first contact to last + 730 days)."""
    from utfall.access.relations import record_contact_relations

    end = _day(valid_to, "--valid-to")
    with _transaction(database) as conn:
        added = record_contact_relations(conn, _actor(), units, valid_to=end)
    console.print(f"{added} vårdrelationer / care relations stored", markup=False,
                  highlight=False)
