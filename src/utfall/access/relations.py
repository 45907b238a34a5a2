"""Care relations as data (PDL vårdrelation, SoL/OSL: the unit handling the case).

A unit reaches a person only through a relation valid today:

* a stored :class:`~utfall.store.models_relations.CareRelation`, created only by an
  action with that meaning (registering a new person, enrolling, a referral made by
  a unit that has the relation, a unit manager accepting a referral to their unit,
  assigning a programme stage, a SIP naming the unit), each itself audited; or
* imported records of the unit (contacts, enrolments from the unit's own record
  system), for their period plus :data:`FOLLOW_UP_DAYS`.

Recording an assessment never creates a relation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select

from utfall.access import clock
from utfall.access.audit import Actor, log_event
from utfall.store.models import Assessment, Contact, Enrolment, Medication, Procedure, Unit
from utfall.store.models_relations import CareRelation

BASES = ("registration", "enrolment", "referral", "sip", "assignment", "imported_contacts")
BASIS_TEXT: dict[str, dict[str, str]] = {
    "registration": {"sv": "Nyregistrering vid enheten", "en": "Registered at the unit"},
    "enrolment": {"sv": "Inskrivning vid enheten", "en": "Enrolment at the unit"},
    "referral": {"sv": "Remiss", "en": "Referral"},
    "sip": {"sv": "SIP", "en": "SIP"},
    "assignment": {"sv": "Tilldelning", "en": "Assignment"},
    "imported_contacts": {"sv": "Kontakter vid enheten (import)",
                          "en": "Contacts at the unit (import)"},
}
# bases a unit with the relation may give another unit
HANDOVER_BASES = ("referral", "assignment", "sip")
# imported contacts and enrolments are a relation until this long after their end
FOLLOW_UP_DAYS = 730


class RelationError(ValueError):
    """Invalid relation input; ``field`` names the form field."""

    def __init__(self, field: str, sv: str, en: str) -> None:
        super().__init__(en)
        self.field = field
        self.sv = sv
        self.en = en


def _stored_active(person_key: str, today: dt.date) -> Any:
    return and_(CareRelation.person_key == person_key, CareRelation.ended_at.is_(None),
                CareRelation.valid_from <= today,
                or_(CareRelation.valid_to.is_(None), CareRelation.valid_to >= today))


def relation_units(conn: Connection, person_key: str, today: dt.date | None = None
                   ) -> set[str]:
    """Units with a relation to the person valid on ``today``."""
    today = today or clock.today()
    units = set(conn.execute(select(CareRelation.unit_id)
                             .where(_stored_active(person_key, today))).scalars())
    horizon = today - dt.timedelta(days=FOLLOW_UP_DAYS)
    contacts = select(Contact.unit_id).where(
        Contact.person_key == person_key, Contact.date <= today,
        func.coalesce(Contact.end_date, Contact.date) >= horizon).distinct()
    units.update(conn.execute(contacts).scalars())
    enrolments = select(Enrolment.unit_id).where(
        Enrolment.person_key == person_key, Enrolment.start_date <= today,
        or_(Enrolment.end_date.is_(None), Enrolment.end_date >= horizon)).distinct()
    units.update(conn.execute(enrolments).scalars())
    return {u for u in units if u}


def has_relation(conn: Connection, person_key: str, unit_id: str | None,
                 today: dt.date | None = None) -> bool:
    """Does ``unit_id`` have a relation with the person valid on ``today``?"""
    return bool(unit_id) and unit_id in relation_units(conn, person_key, today)


def known_units(conn: Connection, person_key: str) -> set[str]:
    """Every unit that holds records of, or ever had a relation with, the person."""
    parts = [select(m.unit_id).where(m.person_key == person_key).distinct()
             for m in (Contact, Procedure, Medication, Enrolment, Assessment, CareRelation)]
    out: set[str] = set()
    for query in parts:
        out.update(u for u in conn.execute(query).scalars() if u)
    return out


def is_known(conn: Connection, person_key: str) -> bool:
    """True when any unit holds records of, or has had a relation with, the person."""
    return bool(known_units(conn, person_key))


def organisation_knows(conn: Connection, person_key: str, organisation_id: int) -> bool:
    """True when a unit of ``organisation_id`` holds records of or a relation with the
    person (the bound of emergency access: one's own principal's records only)."""
    units = known_units(conn, person_key)
    if not units:
        return False
    return conn.execute(select(Unit.unit_id).where(
        Unit.unit_id.in_(units), Unit.organisation_id == organisation_id).limit(1)
    ).first() is not None


def add_relation(conn: Connection, actor: Actor, person_key: str, unit_id: str, basis: str,
                 *, valid_from: dt.date | None = None, valid_to: dt.date | None = None,
                 note: str | None = None) -> int:
    """Store a relation and audit it (no access check: callers have done it)."""
    if basis not in BASES:
        raise RelationError("basis", "Okänd grund för vårdrelationen.",
                            "Unknown basis of the care relation.")
    valid_from = valid_from or clock.today()
    if valid_to is not None and valid_to < valid_from:
        raise RelationError("valid_to", "Slutdatum före startdatum.",
                            "The end date is before the start date.")
    relation_id = conn.execute(insert(CareRelation).values(
        person_key=person_key, unit_id=unit_id, valid_from=valid_from, valid_to=valid_to,
        basis=basis, note=(note or None), created_by=actor.user, created_unit_id=actor.unit_id,
        created_at=clock.now()).returning(CareRelation.id)).scalar_one()
    log_event(conn, actor, "create", person_key,
              {"what": "care_relation", "relation_id": int(relation_id), "unit": unit_id,
               "basis": basis, "valid_from": valid_from.isoformat(),
               "valid_to": valid_to.isoformat() if valid_to else None})
    return int(relation_id)


def ensure_relation(conn: Connection, actor: Actor, person_key: str, unit_id: str, basis: str,
                    *, valid_from: dt.date | None = None, note: str | None = None) -> int | None:
    """Add a relation unless the unit already has one valid today; returns its id or None."""
    if has_relation(conn, person_key, unit_id):
        return None
    return add_relation(conn, actor, person_key, unit_id, basis,
                        valid_from=min(valid_from or clock.today(), clock.today()), note=note)


def create_relation(conn: Connection, actor: Actor, person_key: str, *, unit_id: str,
                    basis: str, valid_from: dt.date | None = None,
                    valid_to: dt.date | None = None, note: str | None = None) -> int:
    """Refer or assign the person to ``unit_id`` (a use case: checked and audited).

    Only a clinician or social worker whose unit has the relation (or ``system``) may
    give one to another unit, on a basis of ``referral``, ``assignment`` or ``sip``.
    Unit managers accept referrals with :func:`utfall.care.accept_referral`.
    """
    from utfall.access.policy import AccessDenied, require_person_access

    if actor.role not in ("system", "clinician", "social_worker"):
        raise AccessDenied("role", "Din roll kan inte skapa vårdrelationer.",
                           "Your role cannot create care relations.")
    require_person_access(conn, actor, person_key, "change")
    if basis not in HANDOVER_BASES and actor.role != "system":
        raise RelationError("basis", "Välj remiss, tilldelning eller SIP.",
                            "Choose referral, assignment or SIP.")
    if conn.execute(select(Unit.unit_id).where(Unit.unit_id == unit_id)).first() is None:
        raise RelationError("unit_id", "Välj en enhet.", "Choose a unit.")
    if unit_id == actor.unit_id:
        raise RelationError("unit_id", "Din enhet har redan vårdrelationen.",
                            "Your unit already has the care relation.")
    return add_relation(conn, actor, person_key, unit_id, basis, valid_from=valid_from,
                        valid_to=valid_to, note=note)


def list_relations(conn: Connection, actor: Actor, person_key: str) -> list[dict[str, Any]]:
    """Relations of the person at units of the actor's own organisation, and those its
    units made (referrals out), as a logged read.

    Other principals' own relations are never listed: they would tell which care the
    person receives elsewhere.
    """
    from utfall.access.policy import actor_organisation, require_person_access

    grant = require_person_access(conn, actor, person_key, "read")
    log_event(conn, actor, "read", person_key, {"what": "care_relations", **grant.detail()})
    return _relations(conn, person_key, None if actor.role == "system"
                      else actor_organisation(conn, actor))


def _relations(conn: Connection, person_key: str, organisation_id: int | None
               ) -> list[dict[str, Any]]:
    today = clock.today()
    names = dict(conn.execute(select(Unit.unit_id, Unit.name)).all())
    orgs = dict(conn.execute(select(Unit.unit_id, Unit.organisation_id)).all())
    out = []
    for r in conn.execute(select(CareRelation).where(CareRelation.person_key == person_key)
                          .order_by(CareRelation.valid_from, CareRelation.id)):
        if organisation_id is not None and organisation_id not in (
                orgs.get(r.unit_id), orgs.get(r.created_unit_id or "")):
            continue  # own units' relations, and the referrals the own organisation made
        active = (r.ended_at is None and r.valid_from <= today
                  and (r.valid_to is None or r.valid_to >= today))
        out.append({"id": r.id, "unit_id": r.unit_id, "unit": names.get(r.unit_id),
                    "basis": r.basis, "valid_from": r.valid_from.isoformat(),
                    "valid_to": r.valid_to.isoformat() if r.valid_to else None,
                    "created_by": r.created_by, "note": r.note, "active": active})
    for unit in sorted(relation_units(conn, person_key, today)):
        if organisation_id is not None and orgs.get(unit) != organisation_id:
            continue
        if not any(r["unit_id"] == unit and r["active"] for r in out):
            out.append({"id": None, "unit_id": unit, "unit": names.get(unit),
                        "basis": "imported_contacts", "valid_from": None, "valid_to": None,
                        "created_by": None, "note": None, "active": True})
    return out


def record_contact_relations(conn: Connection, actor: Actor, unit_ids: list[str], *,
                             valid_to: dt.date | None = None,
                             follow_up_days: int = FOLLOW_UP_DAYS) -> int:
    """Store the relations that imported contacts at ``unit_ids`` imply (system only):
    from the first contact to the last one's end plus ``follow_up_days`` (or
    ``valid_to`` when later). One audit event per unit. Returns the rows added."""
    from utfall.access.policy import AccessDenied

    if actor.role != "system":
        raise AccessDenied("role", "Endast systemjobb.", "System jobs only.")
    added = 0
    for unit_id in unit_ids:
        have = set(conn.execute(select(CareRelation.person_key).where(
            CareRelation.unit_id == unit_id, CareRelation.basis == "imported_contacts",
            CareRelation.ended_at.is_(None))).scalars())
        rows = conn.execute(select(
            Contact.person_key, func.min(Contact.date),
            func.max(func.coalesce(Contact.end_date, Contact.date)))
            .where(Contact.unit_id == unit_id).group_by(Contact.person_key)).all()
        stamp = clock.now()
        values = []
        for key, first, last in rows:
            if key in have:
                continue
            first, last = _day(first), _day(last)
            end = last + dt.timedelta(days=follow_up_days)
            if valid_to is not None and valid_to > end:
                end = valid_to
            values.append({"person_key": key, "unit_id": unit_id, "valid_from": first,
                           "valid_to": end, "basis": "imported_contacts",
                           "note": "import", "created_by": actor.user,
                           "created_unit_id": actor.unit_id, "created_at": stamp})
        if values:
            conn.execute(insert(CareRelation), values)
        log_event(conn, actor, "create", None,
                  {"what": "care_relations_from_contacts", "unit": unit_id,
                   "added": len(values)})
        added += len(values)
    return added


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
