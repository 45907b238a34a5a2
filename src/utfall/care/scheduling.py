"""Which assessments complete which stage of an enrolment (store side of scheduling)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, select

from utfall.followup import Completed, Programme, schedule
from utfall.followup import Enrolment as SchedEnrolment
from utfall.store.models import Assessment, Enrolment
from utfall.store.models_care import CareAssessment
from utfall.store.models_flags import AssessmentVoid

# an unlinked assessment may precede the enrolment start by this much (intake windows)
EARLY_SLACK = dt.timedelta(days=31)


def resolve_stage(prog: Programme, start: dt.date, end: dt.date | None, stage: str,
                  on_date: dt.date) -> str | None:
    """The stage id an assessment counts for, or None if the programme has no such stage.

    A repeated stage given by its base id (``review``) becomes the occurrence whose due
    date is nearest ``on_date`` (``review-2``); occurrence ids are kept as given.
    """
    ids = {s.id: s for s in prog.stages}
    spec = ids.get(stage)
    if spec is None:
        base, _, tail = stage.rpartition("-")
        if tail.isdigit() and base in ids and ids[base].repeat is not None:
            return stage
        return None
    if spec.repeat is None:
        return stage
    horizon = max(on_date, start) + dt.timedelta(days=400)
    rows = [s for s in schedule(SchedEnrolment(prog, start, end), [], horizon)
            if s.stage == stage and s.due_date is not None]
    if not rows:
        return f"{stage}-1"
    best = min(rows, key=lambda s: abs((s.due_date - on_date).days))  # type: ignore[operator]
    return best.stage_id


def base_stage(stage_id: str, prog: Programme) -> str:
    """``review-2`` → ``review`` for repeated stages; other ids unchanged."""
    ids = {s.id for s in prog.stages}
    if stage_id in ids:
        return stage_id
    base, _, tail = stage_id.rpartition("-")
    return base if tail.isdigit() and base in ids else stage_id


def _owner_enrolment(date: dt.date, candidates: Iterable[Row[Any]]) -> str | None:
    """Of the person's enrolments in one programme, the one an unlinked assessment belongs to."""
    best = None
    for e in candidates:
        if e.start_date - EARLY_SLACK <= date and (best is None or e.start_date > best.start_date):
            best = e
    return best.row_key if best is not None else None


def not_voided(column: Any) -> Any:
    """SQL condition: the assessment id in ``column`` is not voided (care.corrections)."""
    return column.not_in(select(AssessmentVoid.assessment_id))


def completions(conn: Connection, enrolment: Row[Any], prog: Programme
                ) -> tuple[list[Completed], dict[str, set[str]]]:
    """Completed stages of the enrolment, and the instruments done per stage id.

    Assessments captured in Utfall are linked to their enrolment; imported ones (no
    link) count for the person's enrolment in a programme with that stage that
    started last before the assessment date.
    """
    a = Assessment.__table__
    ca = CareAssessment.__table__
    rows = conn.execute(
        select(a.c.instrument, a.c.stage, a.c.date, ca.c.enrolment_id)
        .select_from(a.outerjoin(ca, ca.c.assessment_id == a.c.row_key))
        .where(a.c.person_key == enrolment.person_key, a.c.stage.is_not(None),
               not_voided(a.c.row_key))
    ).all()
    e = Enrolment.__table__
    siblings = conn.execute(select(e.c.row_key, e.c.start_date).where(
        e.c.person_key == enrolment.person_key, e.c.programme == enrolment.programme)).all()
    return completions_from(enrolment, prog, rows, siblings)


def completions_from(enrolment: Row[Any], prog: Programme, rows: Iterable[Row[Any]],
                     siblings: Iterable[Row[Any]]
                     ) -> tuple[list[Completed], dict[str, set[str]]]:
    """:func:`completions` from rows already read (``rows``: the person's assessments
    with ``instrument, stage, date, enrolment_id``; ``siblings``: the person's
    enrolments in the programme with ``row_key, start_date``)."""
    done: list[Completed] = []
    instruments: dict[str, set[str]] = {}
    siblings = list(siblings)
    for row in rows:
        if row.enrolment_id is not None:
            if row.enrolment_id != enrolment.row_key:
                continue
        elif _owner_enrolment(row.date, siblings) != enrolment.row_key:
            continue
        stage_id = resolve_stage(prog, enrolment.start_date, enrolment.end_date, row.stage,
                                 row.date)
        if stage_id is None:
            continue
        done.append(Completed(stage_id, row.date))
        instruments.setdefault(stage_id, set()).add(row.instrument)
    return done, instruments
