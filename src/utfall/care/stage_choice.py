"""The follow-up stages an assessment of a person can be recorded for (the stage field
of the assessment form): the person's scheduled stage occurrences, or "unscheduled"."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, or_, select

from utfall.access.audit import Actor
from utfall.care.scheduling import completions
from utfall.followup import Enrolment as SchedEnrolment
from utfall.followup import UnknownProgrammeError, get_programme, local_today, schedule
from utfall.instruments.models import LocalText
from utfall.store.models import Enrolment

UNSCHEDULED = "unscheduled"
HORIZON = dt.timedelta(days=60)  # stages whose window opens within this are offered
LOOKBACK = dt.timedelta(days=400)  # and those due this long ago (late recording)
RANK = {"overdue": 0, "due": 1, "upcoming": 2, "missed": 3}


@dataclass(frozen=True)
class StageChoice:
    """One scheduled stage occurrence of one of the person's enrolments."""

    enrolment_id: str
    programme: str
    programme_title: LocalText
    stage_id: str  # occurrence id, e.g. review-3
    stage: str
    title: LocalText
    due_date: dt.date | None
    status: str
    instruments: tuple[str, ...]

    @property
    def value(self) -> str:
        """The form value: ``<enrolment id>|<stage occurrence id>``."""
        return f"{self.enrolment_id}|{self.stage_id}"


def stage_choices(conn: Connection, actor: Actor, person_key: str,
                  today: dt.date | None = None) -> list[StageChoice]:
    """The person's stages an assessment may be recorded for, most pressing first.

    The caller must be allowed to record for the person (checked here, like the form
    it serves: no data is shown to anyone who could not record). Not logged itself:
    the recording that follows is.
    """
    from utfall.care.persons import check_person

    check_person(conn, actor, person_key, "create")
    day = today or local_today()
    e = Enrolment.__table__
    rows = conn.execute(select(e).where(
        e.c.person_key == person_key,
        or_(e.c.end_date.is_(None), e.c.end_date >= day - LOOKBACK))
        .order_by(e.c.start_date.desc())).all()
    out: list[StageChoice] = []
    for enrolment in rows:
        try:
            prog = get_programme(enrolment.programme)
        except UnknownProgrammeError:
            continue
        done, _instruments = completions(conn, enrolment, prog)
        for row in schedule(SchedEnrolment(prog, enrolment.start_date, enrolment.end_date),
                            done, day):
            if row.due_date is None or row.due_date < day - LOOKBACK:
                continue
            if row.window_start is not None and row.window_start > day + HORIZON:
                continue
            out.append(StageChoice(enrolment.row_key, prog.id, prog.title, row.stage_id,
                                   row.stage, row.title, row.due_date, row.status,
                                   tuple(row.instruments)))
    out.sort(key=lambda c: (RANK.get(c.status, 5), abs((c.due_date or day) - day)))
    return out


def best_choice(choices: list[StageChoice], instrument: str) -> StageChoice | None:
    """The stage to preselect: a due or overdue one that asks for ``instrument``."""
    for c in choices:
        if c.status in ("overdue", "due") and instrument in c.instruments:
            return c
    return None
