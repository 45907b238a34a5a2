"""Emergency access (PDL nödåtkomst) within its legal bounds.

* Health care only: a ``clinician`` acting from a region or private unit. Social
  services have no such route (SoL/OSL), neither into health care nor into other
  social-services units; unit managers review, they do not use it.
* Within the clinician's own principal: the person must be known to a unit of the
  same organisation, and what is shown is that organisation's records; other
  principals' records only under the person's consent.
* A reason is required; the access lasts :data:`EMERGENCY_HOURS` for that person and
  user, is stored, every read during it is flagged in the audit log, and the unit
  manager's log review lists it until a review covers it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from utfall.access import clock
from utfall.access.audit import Actor, log_event
from utfall.store.models import Unit
from utfall.store.models_relations import EmergencyAccess

EMERGENCY_HOURS = 4
MIN_REASON = 10
EMERGENCY_ROLES = frozenset({"clinician"})


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def active_emergency(conn: Connection, actor: Actor, person_key: str,
                     now: dt.datetime | None = None) -> Row[Any] | None:
    """The actor's emergency access to the person still running at ``now`` (a row with
    :class:`EmergencyAccess`'s columns)."""
    if actor.role not in EMERGENCY_ROLES or not actor.unit_id:
        return None
    instant = now or clock.now()
    rows = conn.execute(select(EmergencyAccess).where(
        EmergencyAccess.person_key == person_key, EmergencyAccess.username == actor.user,
        EmergencyAccess.unit_id == actor.unit_id).order_by(EmergencyAccess.id.desc())).all()
    for row in rows:
        if _aware(row.started_at) <= instant < _aware(row.expires_at):
            return row
    return None


def start_emergency(conn: Connection, actor: Actor, person_key: str, reason: str,
                    organisation_id: int, now: dt.datetime | None = None) -> Row[Any]:
    """Open an emergency access (the caller has checked unit, role and membership);
    returns its row (:class:`EmergencyAccess`'s columns).

    Raises ``AccessDenied`` (403) for roles without the route or a too short reason,
    and ``PersonNotFound`` (404) when the person is unknown to the actor's own
    organisation - the same answer as for a person who does not exist.
    """
    from utfall.access.policy import AccessDenied, PersonNotFound
    from utfall.access.relations import organisation_knows

    if actor.role not in EMERGENCY_ROLES:
        raise AccessDenied("emergency_role",
                           "Nödåtkomst finns bara i hälso- och sjukvården (PDL), inte för "
                           "din roll.",
                           "Emergency access exists in health care only (PDL), not for "
                           "your role.")
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise AccessDenied("emergency_reason", "Ange ett tydligt skäl för nödåtkomst.",
                           "State a clear reason for emergency access.")
    if not organisation_knows(conn, person_key, organisation_id):
        raise PersonNotFound()
    instant = now or clock.now()
    expires = instant + dt.timedelta(hours=EMERGENCY_HOURS)
    emergency_id = conn.execute(insert(EmergencyAccess).values(
        person_key=person_key, username=actor.user, role=actor.role,
        unit_id=str(actor.unit_id), organisation_id=organisation_id, reason=reason[:500],
        started_at=instant, expires_at=expires).returning(EmergencyAccess.id)).scalar_one()
    log_event(conn, actor, "read", person_key,
              {"what": "emergency_start", "emergency": True, "emergency_id": int(emergency_id),
               "reason": reason[:500], "expires": expires.isoformat(timespec="seconds"),
               "review": "pending"})
    row = conn.execute(select(EmergencyAccess).where(EmergencyAccess.id == emergency_id)).one()
    return row


def emergency_accesses(conn: Connection, unit_id: str | None) -> list[dict[str, Any]]:
    """Emergency accesses started from ``unit_id`` (all units: None), newest first."""
    names = dict(conn.execute(select(Unit.unit_id, Unit.name)).all())
    query = select(EmergencyAccess).order_by(EmergencyAccess.id.desc())
    if unit_id is not None:
        query = query.where(EmergencyAccess.unit_id == unit_id)
    instant = clock.now()
    return [{"id": r.id, "person_key": r.person_key, "user": r.username, "unit_id": r.unit_id,
             "unit": names.get(r.unit_id), "reason": r.reason,
             "started_at": _aware(r.started_at).isoformat(timespec="seconds"),
             "expires_at": _aware(r.expires_at).isoformat(timespec="seconds"),
             "active": _aware(r.started_at) <= instant < _aware(r.expires_at)}
            for r in conn.execute(query)]


def request_emergency(conn: Connection, actor: Actor, person_key: str, reason: str
                      ) -> dict[str, Any]:
    """Use case: open (or reuse) an emergency access to the person. Returns
    ``{"needed": False}`` when the actor's unit has a care relation anyway, else the
    access's id and end. Refusals as in :func:`start_emergency`."""
    from utfall.access.policy import require_person_access

    grant = require_person_access(conn, actor, person_key, "read", emergency_reason=reason)
    if not grant.emergency:
        return {"needed": False}
    row = conn.execute(select(EmergencyAccess).where(
        EmergencyAccess.id == grant.emergency_id)).one()
    return {"needed": True, "emergency_id": int(row.id),
            "expires_at": _aware(row.expires_at).isoformat(timespec="seconds")}
