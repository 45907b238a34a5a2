"""Person-level reads of the access log, as checked and logged use cases.

* :func:`access_log_for` – the person's extract of who accessed their data, printed
  by a unit with a care relation: only accesses by the actor's own organisation (and
  system jobs / the person), so it never tells one principal which units of another
  principal registered or read the person.
* :func:`review_overview` / :func:`review_sample` – the unit manager's log review;
  every person whose events are shown gets a ``read`` event (``audit_sample``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select

from utfall.access.audit import Actor, log_event
from utfall.access.policy import (
    _deny,
    actor_organisation,
    require_person_access,
    require_unit_scope,
)
from utfall.access.review import (
    list_reviews,
    person_access_extract,
    sample_events,
    unreviewed_emergencies,
)
from utfall.store.models import Unit


def access_log_for(conn: Connection, actor: Actor, person_key: str) -> list[dict[str, Any]]:
    """The person's access extract as the actor's organisation may hand it out (logged
    as ``print``). Needs the care relation; unknown persons answer ``PersonNotFound``."""
    grant = require_person_access(conn, actor, person_key, "print")
    rows = person_access_extract(conn, person_key)
    if actor.role != "system":
        own = actor_organisation(conn, actor)
        orgs = dict(conn.execute(select(Unit.unit_id, Unit.organisation_id)).all())
        rows = [r for r in rows if r["unit_id"] is None or orgs.get(r["unit_id"]) == own]
    log_event(conn, actor, "print", person_key, {"what": "access_log_extract",
                                                  **grant.detail()})
    return rows


def _require_reviewer(conn: Connection, actor: Actor) -> None:
    if actor.role == "system":
        return
    if actor.role != "unit_manager":
        raise _deny("role", "Bara enhetschefen granskar loggen.",
                    "Only the unit manager reviews the log.")
    require_unit_scope(conn, actor, actor.unit_id)


def _log_reads(conn: Connection, actor: Actor, events: list[dict[str, Any]], what: str) -> None:
    counts: dict[str, int] = {}
    for e in events:
        if e.get("person_key"):
            counts[e["person_key"]] = counts.get(e["person_key"], 0) + 1
    for key, n in sorted(counts.items()):
        log_event(conn, actor, "read", key, {"what": what, "events": n})


def review_sample(conn: Connection, actor: Actor, period_from: dt.date, period_to: dt.date, *,
                  every_k: int = 10, random_n: int = 5, seed: int = 0
                  ) -> list[dict[str, Any]]:
    """The sample of the manager's unit (see ``sample_events``); each person shown is
    logged as read."""
    _require_reviewer(conn, actor)
    unit = None if actor.role == "system" else actor.unit_id
    sample = sample_events(conn, unit, period_from, period_to, every_k=every_k,
                           random_n=random_n, seed=seed)
    _log_reads(conn, actor, sample, "audit_sample")
    return sample


def review_overview(conn: Connection, actor: Actor, period_from: dt.date, period_to: dt.date,
                    *, every_k: int = 10, random_n: int = 5, seed: int = 0) -> dict[str, Any]:
    """Sample, unreviewed emergency reads, emergency accesses and stored reviews of the
    manager's unit (one logged read per person shown)."""
    from utfall.access.emergency import emergency_accesses

    _require_reviewer(conn, actor)
    unit = None if actor.role == "system" else actor.unit_id
    sample = sample_events(conn, unit, period_from, period_to, every_k=every_k,
                           random_n=random_n, seed=seed)
    flagged = unreviewed_emergencies(conn, unit)
    emergencies = emergency_accesses(conn, unit)
    _log_reads(conn, actor, sample + flagged + emergencies, "audit_sample")
    return {"sample": sample, "flagged": flagged, "emergencies": emergencies,
            "reviews": list_reviews(conn, unit)}


def emergency_review(conn: Connection, actor: Actor) -> list[dict[str, Any]]:
    """Emergency accesses opened from the manager's unit (each person logged as read)."""
    from utfall.access.emergency import emergency_accesses

    _require_reviewer(conn, actor)
    rows = emergency_accesses(conn, None if actor.role == "system" else actor.unit_id)
    _log_reads(conn, actor, rows, "emergency_review")
    return rows
