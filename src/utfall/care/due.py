"""Work lists: which follow-up stages are due, overdue, done or missed, per unit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from pydantic import BaseModel
from sqlalchemy import Connection, select

from utfall.access.audit import Actor, log_event
from utfall.care._common import require_unit
from utfall.followup import local_today
from utfall.instruments.models import LocalText
from utfall.store.models import Person, Unit

PENDING = frozenset({"upcoming", "due", "overdue"})
ORDER = {"overdue": 0, "due": 1, "upcoming": 2, "missed": 3, "done_late": 4,
         "done_in_window": 5, "done_early": 6}
PRINCIPALS = ("region", "municipality", "private")
# ended enrolments stay on lists while post-discharge stages may still fall due
ENDED_LOOKBACK = dt.timedelta(days=800)


class DueItem(BaseModel):
    """One stage (occurrence) of one enrolment on a work list."""

    enrolment_id: str
    person_key: str
    person: str  # masked identity number, YYYYMMDD-****
    programme: str
    programme_title: LocalText
    stage_id: str
    stage: str
    title: LocalText
    status: str
    due_date: dt.date | None
    window_start: dt.date | None
    window_end: dt.date | None
    overdue_until: dt.date | None
    completed_on: dt.date | None
    responsible: str
    principal_type: str
    unit_id: str | None
    unit_name: str | None
    worker: str | None
    method: str
    instruments: list[str]
    instruments_done: list[str]


def _today(today: dt.date | dt.datetime | None) -> dt.date:
    if today is None:
        return local_today()
    if isinstance(today, dt.datetime):
        return local_today(today)
    return today


def due_list(conn: Connection, actor: Actor, *, unit_id: str | None = None,
             principal: str | None = None, worker: str | None = None,
             today: dt.date | dt.datetime | None = None,
             statuses: Collection[str] | None = None, horizon_days: int = 30,
             lookback_days: int | None = 365) -> list[DueItem]:
    """The follow-up work list of a unit (default: the actor's unit; system: every unit).

    Each stage is listed with its status from the scheduling engine (Europe/Stockholm
    dates). A stage belongs to the unit that owns it: region stages to the enrolling
    unit, stages of municipal social services to the municipal unit the enrolment
    names. ``principal`` keeps stages of one principal type; ``worker`` those of one
    responsible worker. Upcoming stages are listed from ``horizon_days`` before their
    window opens; stages settled (done, or missed) more than ``lookback_days`` ago are
    left out (None keeps them); ended enrolments show only stages still pending, and
    their post-discharge stages from the discharge on (whatever the horizon). Persons
    without a care relation to the unit are left out; every person listed is audited.
    Read in bulk by :func:`utfall.care.worklist.collect` (a fixed number of queries);
    for one page of a long list use :func:`utfall.care.worklist.worklist_page`.
    """
    from utfall.access.policy import require_unit_scope
    from utfall.care.worklist import collect, related_persons

    day = _today(today)
    unit_id = unit_id if unit_id is not None else actor.unit_id
    require_unit_scope(conn, actor, unit_id)
    if unit_id is not None:
        require_unit(conn, unit_id)
    rows = [r for r in collect(conn, unit_id, day, horizon_days=horizon_days,
                               lookback_days=lookback_days)
            if (principal is None or r.principal_type == principal)
            and (worker is None or r.worker == worker)
            and (statuses is None or r.status in statuses)]
    if actor.role != "system":
        allowed = related_persons(conn, str(unit_id), {r.person_key for r in rows}, day)
        rows = [r for r in rows if r.person_key in allowed]
    per: dict[str, int] = {}
    for r in rows:
        per[r.person_key] = per.get(r.person_key, 0) + 1
    for person_key, n in per.items():
        log_event(conn, actor, "read", person_key,
                  {"what": "due_list", "unit_id": unit_id, "stages": n})
    labels = _masked(conn, per)
    names = dict(conn.execute(select(Unit.unit_id, Unit.name)).all()) if rows else {}
    out = [DueItem(
        enrolment_id=r.enrolment_id, person_key=r.person_key,
        person=labels.get(r.person_key, ""), programme=r.programme,
        programme_title=r.programme_title, stage_id=r.stage_id, stage=r.stage, title=r.title,
        status=r.status, due_date=r.due_date, window_start=r.window_start,
        window_end=r.window_end, overdue_until=r.overdue_until, completed_on=r.completed_on,
        responsible=r.responsible, principal_type=r.principal_type, unit_id=r.unit_id,
        unit_name=names.get(r.unit_id or ""), worker=r.worker, method=r.method,
        instruments=r.instruments, instruments_done=r.instruments_done) for r in rows]
    out.sort(key=lambda i: (ORDER.get(i.status, 9), i.due_date or dt.date.max, i.person,
                            i.stage_id))
    return out


def _masked(conn: Connection, keys: Collection[str]) -> dict[str, str]:
    """``YYYYMMDD-****`` per person (decrypted in memory only)."""
    from utfall.access.pseudonym import IdentityVault
    from utfall.config import get_settings

    if not keys:
        return {}
    vault = IdentityVault(get_settings().effective_encryption_key)
    out: dict[str, str] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 900):
        for key, pnr in conn.execute(select(Person.person_key, Person.pnr_encrypted).where(
                Person.person_key.in_(ordered[start:start + 900]))):
            out[key] = f"{vault.decrypt(pnr)[:8]}-****"
    return out
