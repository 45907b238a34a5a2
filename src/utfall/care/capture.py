"""Capture of assessments: validate and score with the instruments engine, then store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from utfall.access.audit import Actor, log_event
from utfall.access.policy import require_person_access
from utfall.care._common import (
    CareError,
    Issue,
    age_on,
    get_enrolment,
    get_person,
    new_id,
    now_utc,
    require_own_unit,
    require_unit,
)
from utfall.care.enrolment import programme_of
from utfall.care.flags import raise_flags
from utfall.care.limits import check_answer_sizes
from utfall.care.scheduling import base_stage, resolve_stage
from utfall.followup import local_today
from utfall.instruments import (
    InstrumentDefinition,
    InvalidAnswersError,
    UnknownInstrumentError,
    get_instrument,
    score,
    validate_answers,
)
from utfall.store.models import Assessment, Enrolment
from utfall.store.models_care import CareAssessment

SOURCES = ("capture", "self_report", "import")
UNSCHEDULED = "unscheduled"  # the stage of an assessment outside the person's schedule
STAGE_SV = ("Välj ett av personens planerade uppföljningssteg eller "
            "\"unscheduled\" (utanför plan).")
STAGE_EN = "Choose one of the person's scheduled follow-up stages or \"unscheduled\"."


def instrument_of(instrument: str) -> InstrumentDefinition:
    """The instrument definition, or a :class:`CareError` naming the field."""
    try:
        return get_instrument(instrument)
    except UnknownInstrumentError as exc:
        raise CareError("unknown_instrument", f"okänt instrument {instrument!r}",
                        f"unknown instrument {instrument!r}",
                        [Issue("instrument", "unknown_instrument", str(exc), str(exc))]) from None


def check_answers(definition: InstrumentDefinition, answers: Mapping[str, Any]) -> None:
    """Raise :class:`CareError` listing every invalid answer (item + reason)."""
    errors = [p for p in validate_answers(definition, answers) if p.severity == "error"]
    if errors:
        raise CareError("invalid_answers", f"ogiltiga svar i {definition.id}",
                        f"invalid answers to {definition.id}",
                        [Issue(p.link_id, p.code, p.sv, p.en) for p in errors])


def _stored_answers(definition: InstrumentDefinition, answers: Mapping[str, Any],
                    items: Mapping[str, int | None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in definition.items:
        if item.numeric:
            if items.get(item.linkId) is not None:
                out[item.linkId] = items[item.linkId]
        else:
            value = answers.get(item.linkId)
            if isinstance(value, str) and value.strip():
                out[item.linkId] = value.strip()
    return out


def _enrolment_for(conn: Connection, person_key: str, stage: str, on_date: dt.date
                   ) -> str | None:
    """The person's latest enrolment started by ``on_date`` whose programme has ``stage``."""
    e = Enrolment.__table__
    rows = conn.execute(select(e.c.row_key, e.c.programme, e.c.start_date).where(
        e.c.person_key == person_key, e.c.start_date <= on_date + dt.timedelta(days=31))
        .order_by(e.c.start_date.desc())).all()
    for row in rows:
        try:
            prog = programme_of(row.programme)
        except CareError:
            continue
        if base_stage(stage, prog) in {s.id for s in prog.stages}:
            return row.row_key
    return None


def record_assessment(conn: Connection, actor: Actor, person_key: str, instrument: str,
                      answers: Mapping[str, Any], *, stage: str | None = None,
                      enrolment_id: str | None = None, unit_id: str | None, on_date: dt.date,
                      source: str = "capture", token_id: int | None = None) -> str:
    """Validate, score and store one administered instrument; returns the assessment id.

    Sex and age come from the person (bands may differ by them). Invalid answers raise
    :class:`CareError` whose issues name the item and the reason. A repeated stage given
    by its base id (``review``) is stored as its occurrence (``review-2``).
    """
    check_answer_sizes(answers)
    if source not in SOURCES:
        raise CareError("invalid_source", f"okänd källa {source!r}", f"unknown source {source!r}")
    definition = instrument_of(instrument)
    require_own_unit(actor, unit_id)
    # the care relation is checked before anything about the person is looked up
    grant = require_person_access(conn, actor, person_key, "create")
    person = get_person(conn, person_key)
    require_unit(conn, unit_id)
    if source != "self_report" and on_date > local_today() + dt.timedelta(days=1):
        raise CareError("date_in_future", "datumet ligger i framtiden", "the date is in the future",
                        [Issue("date", "date_in_future", str(on_date), str(on_date))])
    if stage is not None and stage.strip().lower() in ("", UNSCHEDULED):
        stage = None  # recorded outside the schedule, on purpose
    if enrolment_id is None and stage is not None:
        enrolment_id = _enrolment_for(conn, person_key, stage, on_date)
        if enrolment_id is None:  # never stored as free text, linked to no stage
            raise CareError("unknown_stage", f"steget {stage!r} är inte planerat för personen",
                            f"stage {stage!r} is not scheduled for the person",
                            [Issue("stage", "unknown_stage", STAGE_SV, STAGE_EN)])
    if enrolment_id is not None:
        enrolment = get_enrolment(conn, enrolment_id)
        if enrolment.person_key != person_key:
            raise CareError("wrong_enrolment", "inskrivningen gäller en annan person",
                            "the enrolment belongs to another person",
                            [Issue("enrolment_id", "wrong_enrolment", enrolment_id,
                                   enrolment_id)])
        if stage is not None:
            prog = programme_of(enrolment.programme)
            resolved = resolve_stage(prog, enrolment.start_date, enrolment.end_date, stage,
                                     on_date)
            if resolved is None:
                ids = ", ".join([*(s.id for s in prog.stages), UNSCHEDULED])
                raise CareError("unknown_stage", f"okänt steg {stage!r} i {prog.id}",
                                f"unknown stage {stage!r} of {prog.id}",
                                [Issue("stage", "unknown_stage", f"{STAGE_SV} Tillåtna: {ids}",
                                       f"{STAGE_EN} Allowed: {ids}")])
            stage = resolved
    check_answers(definition, answers)
    try:
        result = score(definition, answers, sex=person.sex,
                       age=age_on(person.birth_date, on_date))
    except InvalidAnswersError as exc:
        raise CareError("invalid_answers", f"ogiltiga svar i {definition.id}",
                        f"invalid answers to {definition.id}",
                        [Issue(p.link_id, p.code, p.sv, p.en) for p in exc.problems]) from None
    assessment_id = new_id()
    with conn.begin_nested():
        log_event(conn, actor, "create", person_key,
                  {"what": "assessment", "assessment_id": assessment_id,
                   "instrument": instrument, "stage": stage, "source": source,
                   **grant.detail()})
        conn.execute(Assessment.__table__.insert().values(
            row_key=assessment_id, person_key=person_key, unit_id=unit_id,
            instrument=definition.id, stage=stage, date=on_date,
            answers=_stored_answers(definition, answers, result.items),
            score=None if result.total is None else float(result.total),
            subscores=dict(result.subscales), band=result.band, source=source))
        conn.execute(CareAssessment.__table__.insert().values(
            assessment_id=assessment_id, enrolment_id=enrolment_id,
            instrument_version=definition.version,
            result={"prorated": result.prorated, "missing": result.missing,
                    "flags": result.flags, "transformed": result.transformed,
                    "transform_id": result.transform_id,
                    "band_provisional": result.band_provisional},
            recorded_by=actor.user, role=actor.role, recorded_at=now_utc(), token_id=token_id))
        raise_flags(conn, assessment_id=assessment_id, person_key=person_key, unit_id=unit_id,
                    instrument=definition.id, flag_ids=result.flags)
    return assessment_id
