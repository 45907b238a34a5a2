"""The per-enrolment work list as it was before the bulk service (issue 9): kept as an
independent reference the bulk ``utfall.care.worklist.collect`` is tested against."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, or_, select

from utfall.access.audit import Actor
from utfall.care._common import access, require_unit, unit_info
from utfall.care.enrolment import stage_owners
from utfall.care.persons import masked_identity
from utfall.care.scheduling import completions
from utfall.followup import Enrolment as SchedEnrolment
from utfall.followup import UnknownProgrammeError, get_programme, local_today, schedule
from utfall.instruments.models import LocalText
from utfall.store.models import Enrolment
from utfall.store.models_care import CareEnrolment, CareStageOwner

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


def _candidates(conn: Connection, unit_id: str | None, today: dt.date) -> list[Any]:
    e = Enrolment.__table__
    query = select(e).where(or_(e.c.end_date.is_(None),
                                e.c.end_date >= today - ENDED_LOOKBACK))
    if unit_id is not None:
        owned = select(CareStageOwner.enrolment_id).where(CareStageOwner.unit_id == unit_id)
        municipal = select(CareEnrolment.enrolment_id).where(
            CareEnrolment.municipal_unit_id == unit_id)
        query = query.where(or_(e.c.unit_id == unit_id, e.c.row_key.in_(owned),
                                e.c.row_key.in_(municipal)))
    return list(conn.execute(query.order_by(e.c.start_date, e.c.row_key)))


def reference_due_list(conn: Connection, actor: Actor, *, unit_id: str | None = None,
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
    their post-discharge stages from the discharge on (whatever the horizon). Every
    person listed is checked with the access policy and the read is audited.
    """
    from utfall.access.policy import AccessDenied, require_unit_scope

    day = _today(today)
    unit_id = unit_id if unit_id is not None else actor.unit_id
    require_unit_scope(conn, actor, unit_id)
    if unit_id is not None:
        require_unit(conn, unit_id)
    horizon = day + dt.timedelta(days=horizon_days)
    oldest = day - dt.timedelta(days=lookback_days) if lookback_days is not None else None
    names: dict[str | None, str | None] = {}
    by_person: dict[str, list[DueItem]] = {}
    for enrolment in _candidates(conn, unit_id, day):
        try:
            prog = get_programme(enrolment.programme)
        except UnknownProgrammeError:
            continue
        owners = stage_owners(conn, enrolment, prog)
        done, instruments = completions(conn, enrolment, prog)
        rows = schedule(SchedEnrolment(prog, enrolment.start_date, enrolment.end_date), done, day)
        for row in rows:
            owner = owners[row.stage]
            if unit_id is not None and owner.unit_id != unit_id:
                continue
            if principal is not None and owner.principal_type != principal:
                continue
            if worker is not None and owner.worker != worker:
                continue
            if statuses is not None and row.status not in statuses:
                continue
            # a stage after discharge (e.g. the municipality's 6-month follow-up) is on
            # the owner's list from the discharge on: the handover is visible at once
            after_end = (enrolment.end_date is not None and row.due_date is not None
                         and row.due_date > enrolment.end_date)
            if row.status == "upcoming" and not after_end and (
                    row.window_start is None or row.window_start > horizon):
                continue
            if enrolment.end_date is not None and row.status not in PENDING:
                continue
            settled = row.completed_on or (row.overdue_until if row.status == "missed" else None)
            if oldest is not None and settled is not None and settled < oldest:
                continue
            if owner.unit_id not in names:
                info = unit_info(conn, owner.unit_id)
                names[owner.unit_id] = info.name if info else None
            by_person.setdefault(enrolment.person_key, []).append(DueItem(
                enrolment_id=enrolment.row_key, person_key=enrolment.person_key, person="",
                programme=prog.id, programme_title=prog.title, stage_id=row.stage_id,
                stage=row.stage, title=row.title, status=row.status, due_date=row.due_date,
                window_start=row.window_start, window_end=row.window_end,
                overdue_until=row.overdue_until, completed_on=row.completed_on,
                responsible=owner.responsible, principal_type=owner.principal_type,
                unit_id=owner.unit_id, unit_name=names[owner.unit_id], worker=owner.worker,
                method=row.method, instruments=row.instruments,
                instruments_done=sorted(instruments.get(row.stage_id, set()))))
    out: list[DueItem] = []
    for person_key, items in by_person.items():
        try:
            access(conn, actor, person_key, "read",
                   {"what": "due_list", "unit_id": unit_id, "stages": len(items)})
        except AccessDenied:
            continue
        label = masked_identity(conn, person_key)
        out.extend(item.model_copy(update={"person": label}) for item in items)
    out.sort(key=lambda i: (ORDER.get(i.status, 9), i.due_date or dt.date.max, i.person,
                            i.stage_id))
    return out
