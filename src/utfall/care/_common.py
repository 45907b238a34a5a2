"""Shared helpers of the care services: errors, access + audit, clock, ids."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select

from utfall.access.audit import Actor, log_event
from utfall.store.models import Enrolment, Organisation, Person, Unit


@dataclass(frozen=True)
class Issue:
    """One reason an input was refused: where (item/field) and why, in Swedish and English."""

    where: str | None
    code: str
    sv: str
    en: str

    def __str__(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        return f"{prefix}{self.sv} / {self.en}"


class CareError(ValueError):
    """Input refused by a care service; ``issues`` name the item/field and the reason."""

    def __init__(self, code: str, sv: str, en: str, issues: Iterable[Issue] = ()) -> None:
        self.code = code
        self.sv = sv
        self.en = en
        self.issues = list(issues)
        lines = "".join(f"\n  - {i}" for i in self.issues)
        super().__init__(f"{sv} / {en}{lines}")


class NotFound(CareError):
    """A referenced person, enrolment or unit does not exist."""


def now_utc(now: dt.datetime | None = None) -> dt.datetime:
    """``now`` (must be aware) or the current instant, in UTC."""
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("now måste ha tidszon / now must be timezone-aware")
    return now.astimezone(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """A datetime read back from the store as aware UTC (SQLite drops the zone)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def new_id() -> str:
    """A fresh row key for rows created in Utfall (32 hex characters)."""
    return uuid.uuid4().hex


def access(conn: Connection, actor: Actor, person_key: str, action: str,
           detail: dict[str, Any] | None = None, *, emergency_reason: str | None = None) -> Any:
    """Check the actor may ``action`` the person's data, then write the audit event
    (flagged when the access rests on an emergency access). Returns the ``Grant``.

    Raises ``utfall.access.policy.AccessDenied`` / ``PersonNotFound`` (nothing is
    logged as done then).
    """
    from utfall.access.policy import require_person_access

    grant = require_person_access(conn, actor, person_key, action,
                                  emergency_reason=emergency_reason)
    detail = dict(detail or {})
    detail.update(grant.detail())
    log_event(conn, actor, action, person_key, detail)
    return grant


def require_own_unit(actor: Actor, unit_id: str | None) -> None:
    """Care roles record and enrol only at the unit they act from."""
    if actor.role in ("system", "person") or unit_id is None or actor.unit_id == unit_id:
        return
    from utfall.access.policy import AccessDenied

    raise AccessDenied("unit", "Du kan bara registrera på den enhet du arbetar från.",
                       "You can only record at the unit you act from.")


def require_own_organisation(conn: Connection, actor: Actor, unit_id: str | None) -> None:
    """Care roles change only records of their own organisation (principal)."""
    if actor.role in ("system", "person"):
        return
    from utfall.access.policy import AccessDenied, unit_organisation

    mine = unit_organisation(conn, actor.unit_id)
    theirs = unit_organisation(conn, unit_id)
    if mine is None or theirs is None or mine[0] != theirs[0]:
        raise AccessDenied("change", "Du kan bara ändra uppgifter som din huvudman registrerat.",
                           "You can only change data recorded by your own organisation.")


def person_actor(person_key: str, unit_id: str | None) -> Actor:
    """The person acting through a self-report link (role ``person``)."""
    try:
        return Actor("self-report", "person", unit_id, person_key=person_key)
    except TypeError:  # pragma: no cover - Actor without person_key
        return Actor("self-report", "person", unit_id)


def get_person(conn: Connection, person_key: str) -> Row[Any]:
    """The person row (raises :class:`NotFound`)."""
    table = Person.__table__
    row = conn.execute(select(table).where(table.c.person_key == person_key)).first()
    if row is None:
        raise NotFound("person_not_found", "personen finns inte", "no such person")
    return row


def get_enrolment(conn: Connection, enrolment_id: str) -> Row[Any]:
    """The enrolment row (raises :class:`NotFound`)."""
    table = Enrolment.__table__
    row = conn.execute(select(table).where(table.c.row_key == enrolment_id)).first()
    if row is None:
        raise NotFound("enrolment_not_found", f"inskrivningen {enrolment_id} finns inte",
                       f"enrolment {enrolment_id} does not exist")
    return row


@dataclass(frozen=True)
class UnitInfo:
    """A unit with its organisation and principal type."""

    unit_id: str
    name: str
    organisation: str
    principal_type: str


def unit_info(conn: Connection, unit_id: str | None) -> UnitInfo | None:
    """Unit, organisation and principal type (None if unknown)."""
    if unit_id is None:
        return None
    row = conn.execute(
        select(Unit.unit_id, Unit.name, Organisation.name, Organisation.principal_type)
        .join(Organisation, Organisation.id == Unit.organisation_id)
        .where(Unit.unit_id == unit_id)).first()
    return UnitInfo(*row) if row else None


def require_unit(conn: Connection, unit_id: str | None, what: str = "unit") -> UnitInfo:
    """Unit info or a clear error naming the field (None: no unit, not found)."""
    info = unit_info(conn, unit_id)
    if info is None:
        raise NotFound("unit_not_found", f"enheten {unit_id!r} finns inte",
                       f"unit {unit_id!r} does not exist", [Issue(what, "unit_not_found",
                                                                  "okänd enhet", "unknown unit")])
    return info


def age_on(birth: dt.date, day: dt.date) -> int:
    """Age in whole years on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def jsonable(facts: dict[str, Any] | None) -> dict[str, Any]:
    """Facts with dates as ISO strings (JSON columns)."""
    out: dict[str, Any] = {}
    for key, value in (facts or {}).items():
        out[key] = value.isoformat() if isinstance(value, dt.date) else value
    return out
