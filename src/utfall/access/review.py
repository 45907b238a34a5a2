"""Systematic review of the access log and a person's own access extract.

A review takes the events of a period and unit, samples every k-th one plus a
number of random ones (seeded, so the sample can be reproduced), always adds the
emergency accesses, and stores who reviewed, when, what and the findings.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, insert, select

from utfall.access.audit import verify_chain
from utfall.store.models import AuditEvent, Unit
from utfall.store.models_access import AuditReview

OUTCOMES = ("ok", "remarks", "incident")


def _bounds(period_from: dt.date, period_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(period_from, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(period_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return start, end


def is_emergency(detail: dict[str, Any] | None) -> bool:
    """True for an emergency access (flagged by the policy or the care services)."""
    detail = detail or {}
    return bool(detail.get("emergency") or detail.get("emergency_reason"))


def event_dict(e: Any) -> dict[str, Any]:
    """An audit event (an :class:`AuditEvent` or a Core row with its columns) as plain data."""
    at = e.at if e.at.tzinfo else e.at.replace(tzinfo=dt.UTC)
    return {"id": e.id, "at": at.isoformat(timespec="seconds"), "actor": e.actor,
            "role": e.role, "unit_id": e.unit_id, "action": e.action,
            "person_key": e.person_key, "detail": e.detail,
            "emergency": is_emergency(e.detail)}


def sample_events(conn: Connection, unit_id: str | None, period_from: dt.date,
                  period_to: dt.date, *, every_k: int = 10, random_n: int = 5,
                  seed: int = 0) -> list[dict[str, Any]]:
    """Person-level events of the period (at ``unit_id``; all units when None):
    every ``every_k``-th, ``random_n`` random others and every emergency access."""
    start, end = _bounds(period_from, period_to)
    query = (select(AuditEvent).where(AuditEvent.at >= start, AuditEvent.at < end,
                                      AuditEvent.person_key.is_not(None))
             .order_by(AuditEvent.id))
    if unit_id is not None:
        query = query.where(AuditEvent.unit_id == unit_id)
    events = [event_dict(e) for e in conn.execute(query)]
    chosen: dict[int, str] = {}
    if every_k > 0:
        for e in events[every_k - 1::every_k]:
            chosen[e["id"]] = "systematic"
    rest = [e for e in events if e["id"] not in chosen]
    for e in random.Random(seed).sample(rest, min(random_n, len(rest))):
        chosen[e["id"]] = "random"
    for e in events:
        if e["emergency"]:
            chosen[e["id"]] = "emergency"
    out = []
    for e in events:
        if e["id"] in chosen:
            out.append({**e, "sampled_as": chosen[e["id"]]})
    return out


def record_review(conn: Connection, reviewer: str, reviewer_unit_id: str | None, *,
                  period_from: dt.date, period_to: dt.date, method: dict[str, Any],
                  event_ids: list[int], findings: str, outcome: str) -> int:
    """Store a documented review; returns its id."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    if not findings.strip():
        raise ValueError("findings are required")
    key = conn.execute(insert(AuditReview).values(
        reviewer=reviewer, reviewer_unit_id=reviewer_unit_id,
        reviewed_at=dt.datetime.now(dt.UTC), period_from=period_from, period_to=period_to,
        method=method, event_ids=sorted(set(event_ids)), findings=findings.strip(),
        outcome=outcome)).inserted_primary_key
    if key is None:
        raise TypeError("'NoneType' object is not subscriptable")
    return int(key[0])


def list_reviews(conn: Connection, unit_id: str | None = None) -> list[dict[str, Any]]:
    """Stored reviews, newest first."""
    query = select(AuditReview).order_by(AuditReview.id.desc())
    if unit_id is not None:
        query = query.where(AuditReview.reviewer_unit_id == unit_id)
    return [{"id": r.id, "reviewer": r.reviewer, "unit_id": r.reviewer_unit_id,
             "reviewed_at": r.reviewed_at.isoformat(timespec="seconds"),
             "period_from": r.period_from.isoformat(), "period_to": r.period_to.isoformat(),
             "method": r.method, "events": len(r.event_ids), "findings": r.findings,
             "outcome": r.outcome} for r in conn.execute(query)]


def reviewed_event_ids(conn: Connection) -> set[int]:
    """Ids of events that some stored review has covered."""
    out: set[int] = set()
    stored: Iterable[list[Any]] = conn.execute(select(AuditReview.event_ids)).scalars()
    for ids in stored:
        out.update(int(i) for i in ids)
    return out


def unreviewed_emergencies(conn: Connection, unit_id: str | None = None) -> list[dict[str, Any]]:
    """Emergency accesses that no review has covered yet."""
    done = reviewed_event_ids(conn)
    query = select(AuditEvent).where(AuditEvent.person_key.is_not(None)).order_by(AuditEvent.id)
    if unit_id is not None:
        query = query.where(AuditEvent.unit_id == unit_id)
    return [event_dict(e) for e in conn.execute(query)
            if is_emergency(e.detail) and e.id not in done]


def person_access_extract(conn: Connection, person_key: str) -> list[dict[str, Any]]:
    """Who accessed the person's data: time, user, role, unit (with name), action.

    The person's right to an extract (HSLF-FS 2016:40); details are left out.
    """
    names = dict(conn.execute(select(Unit.unit_id, Unit.name)).all())
    rows = conn.execute(select(AuditEvent).where(AuditEvent.person_key == person_key)
                        .order_by(AuditEvent.id))
    out = []
    for e in rows:
        at = e.at if e.at.tzinfo else e.at.replace(tzinfo=dt.UTC)
        out.append({"at": at.isoformat(timespec="seconds"), "user": e.actor, "role": e.role,
                    "unit_id": e.unit_id, "unit": names.get(e.unit_id or ""),
                    "action": e.action,
                    "emergency": is_emergency(e.detail)})
    return out


def verify_all(conn: Connection) -> list[Any]:
    """Problems in the whole audit chain (empty list when intact)."""
    rows = conn.execute(select(AuditEvent).order_by(AuditEvent.id))
    return verify_chain(rows)
