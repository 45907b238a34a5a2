"""The unit's inbox: open clinical flags and self-reports not yet seen.

:func:`unit_inbox` lists them for a care worker's own unit (each person access-checked
and the read audited, like the work list); :func:`inbox_count` is the number for the
header link (a count only: no personal data, no audit); :func:`mark_self_report_seen`
takes a self-report off the inbox (audited).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, func, select

from utfall.access.audit import Actor
from utfall.care._common import NotFound, access, as_utc, now_utc, unit_info
from utfall.care.flags import OPEN, flag_dict, instrument_title
from utfall.care.scheduling import not_voided
from utfall.store.models import Assessment
from utfall.store.models_flags import CareFlag, SelfReportSeen

LIMIT = 500


def _unseen(unit_id: str) -> Any:
    a = Assessment.__table__
    return (a.c.unit_id == unit_id, a.c.source == "self_report",
            a.c.row_key.not_in(select(SelfReportSeen.assessment_id)), not_voided(a.c.row_key))


def inbox_count(conn: Connection, actor: Actor) -> int:
    """Open flags plus unseen self-reports of the actor's unit (0 for other roles)."""
    if actor.role not in ("clinician", "social_worker", "unit_manager") or not actor.unit_id:
        return 0
    t = CareFlag.__table__
    a = Assessment.__table__
    flags = conn.execute(select(func.count()).where(t.c.unit_id == actor.unit_id,
                                                    t.c.status == OPEN)).scalar_one()
    reports = conn.execute(select(func.count()).select_from(a)
                           .where(*_unseen(actor.unit_id))).scalar_one()
    return int(flags) + int(reports)


def unit_inbox(conn: Connection, actor: Actor, *, limit: int = LIMIT) -> dict[str, Any]:
    """Open flags and unseen self-reports of the actor's unit, newest first.

    ``{"unit_id", "unit_name", "flags": [...], "self_reports": [...], "total"}``; each
    item names the person (``person_key`` and masked identity ``person``). Care roles
    only, own unit (``AccessDenied`` otherwise); every person listed is checked with the
    access policy and the read is audited.
    """
    from utfall.access.policy import AccessDenied, require_unit_scope
    from utfall.care.persons import masked_identity

    unit_id = actor.unit_id
    require_unit_scope(conn, actor, unit_id)
    assert unit_id is not None
    info = unit_info(conn, unit_id)
    t = CareFlag.__table__
    a = Assessment.__table__
    flag_rows = conn.execute(
        select(t, a.c.date).join(a, a.c.row_key == t.c.assessment_id)
        .where(t.c.unit_id == unit_id, t.c.status == OPEN)
        .order_by(t.c.raised_at.desc(), t.c.id.desc()).limit(limit)).all()
    report_rows = conn.execute(
        select(a.c.row_key, a.c.person_key, a.c.instrument, a.c.date, a.c.stage, a.c.score,
               a.c.band).where(*_unseen(unit_id))
        .order_by(a.c.date.desc(), a.c.row_key).limit(limit)).all()
    names = {unit_id: info.name} if info else {}
    per_person: dict[str, int] = {}
    for row in flag_rows:
        per_person[row.person_key] = per_person.get(row.person_key, 0) + 1
    for row in report_rows:
        per_person[row.person_key] = per_person.get(row.person_key, 0) + 1
    labels: dict[str, str] = {}
    for person_key, count in per_person.items():
        try:
            access(conn, actor, person_key, "read",
                   {"what": "inbox", "unit_id": unit_id, "items": count})
        except AccessDenied:
            continue
        labels[person_key] = masked_identity(conn, person_key)
    flags = [{**flag_dict(r, names), "person": labels[r.person_key]}
             for r in flag_rows if r.person_key in labels]
    reports = [{"assessment_id": r.row_key, "person_key": r.person_key,
                "person": labels[r.person_key], "instrument": r.instrument,
                "instrument_title": instrument_title(r.instrument),
                "date": r.date.isoformat(), "stage": r.stage, "score": r.score,
                "band": r.band} for r in report_rows if r.person_key in labels]
    return {"unit_id": unit_id, "unit_name": info.name if info else None, "flags": flags,
            "self_reports": reports, "total": len(flags) + len(reports)}


def mark_self_report_seen(conn: Connection, actor: Actor, assessment_id: str, *,
                          now: dt.datetime | None = None) -> dict[str, Any]:
    """Take a self-report of the actor's unit off the inbox (audited read)."""
    from utfall.access.policy import AccessDenied, PersonNotFound

    a = Assessment.__table__
    row = conn.execute(select(a.c.row_key, a.c.person_key, a.c.unit_id, a.c.source)
                       .where(a.c.row_key == assessment_id)).first()
    if row is None or row.source != "self_report":
        raise NotFound("assessment_not_found", "självskattningen finns inte",
                       "no such self-report")
    if actor.role not in ("clinician", "social_worker", "unit_manager"):
        raise AccessDenied("role", "Rollen har ingen inkorg.", "This role has no inbox.")
    if row.unit_id != actor.unit_id:
        raise NotFound("assessment_not_found", "självskattningen finns inte",
                       "no such self-report")
    at = now_utc(now)
    seen = SelfReportSeen.__table__
    try:
        with conn.begin_nested():
            access(conn, actor, row.person_key, "read",
                   {"what": "self_report_seen", "assessment_id": assessment_id})
            done = conn.execute(select(seen.c.seen_at).where(
                seen.c.assessment_id == assessment_id)).scalar()
            if done is None:
                conn.execute(seen.insert().values(assessment_id=assessment_id,
                                                  seen_by=actor.user, role=actor.role,
                                                  seen_at=at))
                done = at
    except PersonNotFound:
        raise NotFound("assessment_not_found", "självskattningen finns inte",
                       "no such self-report") from None
    return {"assessment_id": assessment_id, "seen_at": as_utc(done).isoformat()}
