"""The scheduling engine (pure): when is each stage due, and what is its status today?

Rules (see ``docs/instruments-and-programmes.md``):

* Dates are calendar dates in Europe/Stockholm. ``today`` may be given as a date or as
  an aware datetime, which is converted to Stockholm time first (naive datetimes are
  refused), so daylight-saving changes never shift a date.
* Due date = anchor date + offset. Anchors: ``start`` (enrolment start), ``end``
  (discharge/end date; unknown while enrolled), ``stage:<id>`` (the date an earlier
  stage was done, or its due date if not done). Month offsets are calendar months,
  clamped at month end (31 Jan + 1 month = 28/29 Feb). Repeated stages are computed
  from the anchor each time (anchor + offset + k × every), so clamping never drifts.
* Window = [due − before, due + after], inclusive at both ends.
* Status when done (the assessment date): inside the window ``done_in_window``,
  after it ``done_late``, before it ``done_early``.
* Status when not done: before the window ``upcoming``; inside it ``due``; after it
  but within the grace period (stage ``grace`` or the programme's) ``overdue``;
  later ``missed``. A stage whose anchor date is unknown is ``upcoming`` with no dates.
* ``while_enrolled`` stages and repeated stages are not scheduled for due dates after
  the end date. Repeated stages are listed up to the first one not yet reached
  (plus any that were done).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from utfall.followup.models import Duration, Method, Programme, Responsible, Stage
from utfall.instruments.models import LocalText

STOCKHOLM = ZoneInfo("Europe/Stockholm")
Status = Literal["upcoming", "due", "overdue", "done_in_window", "done_late", "done_early",
                 "missed"]
DONE_STATUSES = frozenset({"done_in_window", "done_late", "done_early"})
MAX_REPEATS = 1000


def local_today(now: dt.datetime | None = None, tz: ZoneInfo = STOCKHOLM) -> dt.date:
    """The calendar date in Stockholm at the aware instant ``now`` (default: now)."""
    if now is None:
        now = dt.datetime.now(tz)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now måste ha tidszon / now must be timezone-aware")
    return now.astimezone(tz).date()


def _as_date(today: dt.date | dt.datetime) -> dt.date:
    if isinstance(today, dt.datetime):
        return local_today(today)
    return today


@dataclass(frozen=True)
class Enrolment:
    """An enrolment as the scheduler needs it (``programme`` may be an id)."""

    programme: Programme | str
    start: dt.date
    end: dt.date | None = None

    def resolved(self) -> Programme:
        """The programme definition (ids are looked up in the default registry)."""
        if isinstance(self.programme, Programme):
            return self.programme
        from utfall.followup.registry import get_programme

        return get_programme(self.programme)


@dataclass(frozen=True)
class Completed:
    """A completed assessment for a stage (occurrence id for repeated stages)."""

    stage: str
    date: dt.date


class StageStatus(BaseModel):
    """One scheduled stage (or one occurrence of a repeated stage) and its status."""

    stage_id: str
    stage: str
    occurrence: int | None = None
    title: LocalText
    due_date: dt.date | None
    window_start: dt.date | None
    window_end: dt.date | None
    overdue_until: dt.date | None
    status: Status
    completed_on: dt.date | None = None
    responsible: Responsible
    method: Method
    instruments: list[str]


def _window(stage: Stage, due: dt.date) -> tuple[dt.date, dt.date]:
    return stage.window.before.before(due), stage.window.after.after(due)


def _pick(dates: list[dt.date], start: dt.date, end: dt.date) -> dt.date | None:
    """The completion that counts: first in window, else first late, else last early."""
    inside = sorted(d for d in dates if start <= d <= end)
    late = sorted(d for d in dates if d > end)
    early = sorted(d for d in dates if d < start)
    if inside:
        return inside[0]
    if late:
        return late[0]
    return early[-1] if early else None


def _status(
    stage: Stage, grace: Duration, due: dt.date | None, done: list[dt.date], today: dt.date,
) -> tuple[Status, dt.date | None, tuple[dt.date | None, dt.date | None, dt.date | None]]:
    if due is None:
        return "upcoming", (max(done) if done else None), (None, None, None)
    start, end = _window(stage, due)
    overdue_until = grace.after(end)
    completed = _pick(done, start, end)
    dates = (start, end, overdue_until)
    if completed is not None:
        if completed < start:
            return "done_early", completed, dates
        return ("done_in_window" if completed <= end else "done_late"), completed, dates
    if today < start:
        return "upcoming", None, dates
    if today <= end:
        return "due", None, dates
    if today <= overdue_until:
        return "overdue", None, dates
    return "missed", None, dates


def _occurrence(key: str, stage_id: str) -> int:
    """k of an occurrence id ``<stage_id>-<k>``, else 0."""
    prefix = f"{stage_id}-"
    tail = key[len(prefix):] if key.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else 0


def _anchor_date(
    stage: Stage, enrolment: Enrolment, stage_dates: Mapping[str, dt.date | None]
) -> dt.date | None:
    if stage.anchor == "start":
        return enrolment.start
    if stage.anchor == "end":
        return enrolment.end
    return stage_dates.get(stage.anchor_stage or "")


def schedule(
    enrolment: Enrolment,
    completed: Iterable[Completed | tuple[str, dt.date]],
    today: dt.date | dt.datetime,
) -> list[StageStatus]:
    """Every stage of the enrolment's programme with due date, window and status."""
    day = _as_date(today)
    programme = enrolment.resolved()
    by_stage: dict[str, list[dt.date]] = {}
    for item in completed:
        stage_id, date = (item.stage, item.date) if isinstance(item, Completed) else item
        by_stage.setdefault(stage_id, []).append(date)
    # the date an anchored stage is measured from: done date, else due date
    stage_dates: dict[str, dt.date | None] = {}
    out: list[StageStatus] = []
    for stage in programme.stages:
        grace = stage.grace or programme.grace
        anchor = _anchor_date(stage, enrolment, stage_dates)
        common: dict[str, Any] = {
            "stage": stage.id, "title": stage.title, "responsible": stage.responsible,
            "method": stage.method, "instruments": list(stage.instruments),
        }
        if stage.repeat is None:
            due = None if anchor is None else stage.offset.after(anchor)
            if (due is not None and enrolment.end is not None and stage.while_enrolled
                    and due > enrolment.end):
                stage_dates[stage.id] = None
                continue
            status, done_on, (start, end, until) = _status(
                stage, grace, due, by_stage.get(stage.id, []), day)
            stage_dates[stage.id] = done_on or due
            out.append(StageStatus(stage_id=stage.id, due_date=due, window_start=start,
                                   window_end=end, overdue_until=until, status=status,
                                   completed_on=done_on, **common))
            continue
        if anchor is None:
            continue
        limit = stage.repeat.max_count or MAX_REPEATS
        last_done = max((_occurrence(key, stage.id) for key in by_stage), default=0)
        for k in range(1, limit + 1):
            every = stage.repeat.every
            due = Duration(months=stage.offset.months + every.months * (k - 1),
                           days=stage.offset.days + every.days * (k - 1)).after(anchor)
            occurrence_id = f"{stage.id}-{k}"
            if enrolment.end is not None and due > enrolment.end:
                break
            done = by_stage.get(occurrence_id, [])
            status, done_on, (start, end, until) = _status(stage, grace, due, done, day)
            out.append(StageStatus(stage_id=occurrence_id, occurrence=k, due_date=due,
                                   window_start=start, window_end=end, overdue_until=until,
                                   status=status, completed_on=done_on, **common))
            if start is not None and start > day and k >= last_done:
                break  # list up to the first occurrence not yet reached
    return out


def stage_status(
    programme: Programme | str,
    start: dt.date,
    end: dt.date | None,
    completed: Iterable[Completed | tuple[str, dt.date]],
    today: dt.date | dt.datetime,
) -> list[StageStatus]:
    """Convenience form of :func:`schedule` taking the enrolment's parts."""
    return schedule(Enrolment(programme, start, end), completed, today)
