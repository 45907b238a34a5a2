"""Enrolment in a follow-up programme, LARO phase changes with history, ending."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select, update

from utfall.access.audit import Actor, log_event
from utfall.care._common import (
    CareError,
    Issue,
    access,
    age_on,
    get_enrolment,
    get_person,
    jsonable,
    new_id,
    now_utc,
    require_own_organisation,
    require_own_unit,
    require_unit,
    unit_info,
)
from utfall.care.limits import MAX_NAME, check_facts, check_text
from utfall.followup import (
    PhaseState,
    Programme,
    TransitionError,
    UnknownProgrammeError,
    get_programme,
    start,
    transition,
    validate_end,
    validate_enrolment_data,
)
from utfall.interop.extract_spec import END_REASONS
from utfall.store.models import Enrolment
from utfall.store.models_care import CareEnrolment, CarePhaseEvent, CareStageOwner

# fallback end reasons for programmes that list none (extract format v1)


def programme_of(programme_id: str) -> Programme:
    """The programme definition, or a :class:`CareError` naming the field."""
    try:
        return get_programme(programme_id)
    except UnknownProgrammeError as exc:
        raise CareError("unknown_programme", f"okänt program {programme_id!r}",
                        f"unknown programme {programme_id!r}",
                        [Issue("programme", "unknown_programme", str(exc), str(exc))]) from None


def _transition_error(exc: TransitionError) -> CareError:
    issues = [Issue(f.field or f.code, f.code, f.sv, f.en) for f in exc.failures]
    return CareError(exc.code, exc.sv, exc.en, issues)


def _problems_error(code: str, sv: str, en: str, problems: list[Any]) -> CareError:
    return CareError(code, sv, en, [Issue(p.link_id, p.code, p.sv, p.en) for p in problems
                                    if getattr(p, "severity", "error") == "error"])


def _facts_with_age(programme: Programme, person: Row[Any], facts: Mapping[str, Any],
                    on_date: dt.date) -> dict[str, Any]:
    """Facts plus ``age`` from the person's birth date when the programme asks for it."""
    merged = dict(facts)
    if any(f.id == "age" for f in programme.data_fields) and merged.get("age") is None:
        merged["age"] = age_on(person.birth_date, on_date)
    return merged


def default_owner(stage_responsible: str, unit_principal: str | None, unit_id: str,
                  municipal_unit_id: str | None) -> tuple[str, str | None]:
    """``(principal_type, unit_id)`` owning a stage with the given ``responsible``."""
    if stage_responsible == "municipal_social_services":
        return "municipality", municipal_unit_id
    return unit_principal or "region", unit_id


def enrol(conn: Connection, actor: Actor, person_key: str, programme: str, unit_id: str,
          start_date: dt.date, *, responsible_worker: str | None = None,
          municipal_unit_id: str | None = None, facts: Mapping[str, Any] | None = None,
          reason: str | None = None) -> str:
    """Enrol a person; returns the enrolment id.

    The enrolment data (``facts``) are validated with the programme definition; a
    programme with a phase model starts in its initial phase (its entry checks apply).
    Each stage gets an owner: the enrolling unit, or ``municipal_unit_id`` for stages
    run by municipal social services.
    """
    from utfall.access.policy import require_person_access
    from utfall.access.relations import add_relation, has_relation

    prog = programme_of(programme)
    require_own_unit(actor, unit_id)
    # a care relation at the unit is needed before anything about the person is used
    grant = require_person_access(conn, actor, person_key, "create")
    person = get_person(conn, person_key)
    unit = require_unit(conn, unit_id)
    if municipal_unit_id is not None:
        municipal = require_unit(conn, municipal_unit_id, "municipal_unit")
        if municipal.principal_type != "municipality":
            raise CareError("not_municipal", "enheten tillhör inte en kommun",
                            "the unit does not belong to a municipality",
                            [Issue("municipal_unit", "not_municipal",
                                   f"{municipal_unit_id} är en enhet hos {municipal.organisation}",
                                   f"{municipal_unit_id} is a unit of {municipal.organisation}")])
    if start_date > dt.date.today() + dt.timedelta(days=366):
        raise CareError("start_too_late", "startdatumet ligger för långt fram",
                        "the start date is too far ahead", [Issue("start", "start_too_late",
                                                                  str(start_date),
                                                                  str(start_date))])
    check_facts(facts)
    check_text(responsible_worker, "responsible_worker", MAX_NAME)
    check_text(reason, "reason")
    merged = _facts_with_age(prog, person, facts or {}, start_date)
    problems = validate_enrolment_data(prog, merged)
    if problems:
        raise _problems_error("invalid_enrolment_data", "uppgifterna för inskrivningen är ogiltiga",
                              "the enrolment data are invalid", problems)
    state: PhaseState | None = None
    if prog.phase_model is not None:
        try:
            state = start(prog, merged, start_date)
        except TransitionError as exc:
            raise _transition_error(exc) from None
    enrolment_id = new_id()
    stamp = now_utc()
    with conn.begin_nested():
        conn.execute(Enrolment.__table__.insert().values(
            row_key=enrolment_id, person_key=person_key, unit_id=unit_id, programme=prog.id,
            start_date=start_date, phase=state.phase if state else None,
            details={"source": "capture", "programme_version": prog.version,
                     "facts": jsonable(merged)}))
        conn.execute(CareEnrolment.__table__.insert().values(
            enrolment_id=enrolment_id, responsible_worker=responsible_worker,
            municipal_unit_id=municipal_unit_id, created_by=actor.user, created_at=stamp))
        for stage in prog.stages:
            principal, owner_unit = default_owner(stage.responsible, unit.principal_type, unit_id,
                                                  municipal_unit_id)
            conn.execute(CareStageOwner.__table__.insert().values(
                enrolment_id=enrolment_id, stage=stage.id, responsible=stage.responsible,
                principal_type=principal, unit_id=owner_unit,
                worker=responsible_worker if owner_unit == unit_id else None,
                assigned_by=actor.user, assigned_at=stamp))
        if state is not None:
            conn.execute(CarePhaseEvent.__table__.insert().values(
                enrolment_id=enrolment_id, from_phase=None, to_phase=state.phase,
                on_date=start_date, reason=reason, facts=jsonable(merged), actor=actor.user,
                role=actor.role, unit_id=actor.unit_id, recorded_at=stamp))
        log_event(conn, actor, "create", person_key,
                  {"what": "enrolment", "enrolment_id": enrolment_id, "programme": prog.id,
                   "unit_id": unit_id, **grant.detail()})
        # the enrolment is a relation of the unit; stages run by a municipal unit give
        # that unit a relation too (basis: assignment)
        since = min(start_date, dt.date.today())
        add_relation(conn, actor, person_key, unit_id, "enrolment", valid_from=since,
                     note=prog.title.sv)
        if municipal_unit_id is not None and not has_relation(conn, person_key,
                                                              municipal_unit_id):
            add_relation(conn, actor, person_key, municipal_unit_id, "assignment",
                         valid_from=since, note=prog.title.sv)
    return enrolment_id


@dataclass(frozen=True)
class PhaseEntry:
    """One entry of an enrolment's phase history."""

    phase: str
    name_sv: str
    name_en: str
    on_date: dt.date
    from_phase: str | None
    reason: str | None
    actor: str | None
    role: str | None
    unit_id: str | None
    recorded: bool  # False: taken from an import, no history recorded in Utfall


def _events(conn: Connection, enrolment_id: str) -> list[Row[Any]]:
    table = CarePhaseEvent.__table__
    return list(conn.execute(select(table).where(table.c.enrolment_id == enrolment_id)
                             .order_by(table.c.on_date, table.c.id)))


def _facts(enrolment: Row[Any]) -> dict[str, Any]:
    details = enrolment.details or {}
    if isinstance(details, str):  # pragma: no cover - JSON stored as text by an old writer
        import json

        details = json.loads(details)
    return dict(details.get("facts") or {})


def _state(conn: Connection, enrolment: Row[Any], prog: Programme) -> PhaseState:
    """The phase state from the recorded history, or from the imported row."""
    assert prog.phase_model is not None
    events = _events(conn, enrolment.row_key)
    facts = _facts(enrolment)
    if events:
        history = tuple((e.to_phase, e.on_date) for e in events)
        return PhaseState(prog.id, events[-1].to_phase, events[-1].on_date, history, facts)
    phase = enrolment.phase or prog.phase_model.initial
    if phase not in {p.id for p in prog.phase_model.phases}:
        ids = ", ".join(p.id for p in prog.phase_model.phases)
        raise CareError("unknown_phase", f"inskrivningen har en okänd fas {phase!r}",
                        f"the enrolment has an unknown phase {phase!r}",
                        [Issue("phase", "unknown_phase", f"kända: {ids}", f"known: {ids}")])
    return PhaseState(prog.id, phase, enrolment.start_date, ((phase, enrolment.start_date),),
                      facts)


def _phase_names(prog: Programme, phase: str) -> tuple[str, str]:
    try:
        name = prog.phase_model.phase(phase).name  # type: ignore[union-attr]
    except (KeyError, AttributeError):
        return phase, phase
    return name.sv, name.en


def _history(conn: Connection, enrolment: Row[Any], prog: Programme | None) -> list[PhaseEntry]:
    events = _events(conn, enrolment.row_key)
    out: list[PhaseEntry] = []
    if not events and enrolment.phase:
        sv, en = _phase_names(prog, enrolment.phase) if prog else (enrolment.phase,) * 2
        return [PhaseEntry(enrolment.phase, sv, en, enrolment.start_date, None, None, None, None,
                           enrolment.unit_id, False)]
    for e in events:
        sv, en = _phase_names(prog, e.to_phase) if prog else (e.to_phase,) * 2
        out.append(PhaseEntry(e.to_phase, sv, en, e.on_date, e.from_phase, e.reason, e.actor,
                              e.role, e.unit_id, True))
    return out


def phase_history(conn: Connection, actor: Actor, enrolment_id: str) -> list[PhaseEntry]:
    """Phase history of an enrolment (imported enrolments: their one known phase)."""
    enrolment = get_enrolment(conn, enrolment_id)
    access(conn, actor, enrolment.person_key, "read",
           {"what": "phase_history", "enrolment_id": enrolment_id})
    try:
        prog: Programme | None = get_programme(enrolment.programme)
    except UnknownProgrammeError:
        prog = None
    return _history(conn, enrolment, prog)


def _apply_transition(conn: Connection, actor: Actor, enrolment: Row[Any], prog: Programme,
                      to_phase: str, facts: Mapping[str, Any], on_date: dt.date,
                      reason: str | None) -> PhaseState:
    state = _state(conn, enrolment, prog)
    try:
        new = transition(state, to_phase, facts, on_date, prog)
    except TransitionError as exc:
        raise _transition_error(exc) from None
    assert prog.phase_model is not None
    values: dict[str, Any] = {"phase": new.phase}
    details = dict(enrolment.details or {})
    details["facts"] = jsonable(dict(new.facts))
    values["details"] = details
    if prog.phase_model.phase(to_phase).terminal:
        end_reason = new.facts.get("end_reason")
        if end_reason is None:
            raise CareError("end_reason_missing", "avslutsorsak saknas", "end reason missing",
                            [Issue("end_reason", "required_data_missing", "uppgift saknas",
                                   "missing")])
        values.update(end_date=on_date, end_reason=end_reason)
    conn.execute(update(Enrolment.__table__).where(Enrolment.row_key == enrolment.row_key)
                 .values(**values))
    conn.execute(CarePhaseEvent.__table__.insert().values(
        enrolment_id=enrolment.row_key, from_phase=state.phase, to_phase=new.phase,
        on_date=on_date, reason=reason, facts=jsonable(dict(facts)), actor=actor.user,
        role=actor.role, unit_id=actor.unit_id, recorded_at=now_utc()))
    return new


def change_phase(conn: Connection, actor: Actor, enrolment_id: str, to_phase: str, *,
                 on_date: dt.date, facts: Mapping[str, Any] | None = None,
                 reason: str | None = None) -> PhaseEntry:
    """Move an enrolment to ``to_phase`` (allowed transition, entry checks pass).

    The change is kept with who, when and why. Entering a terminal phase (LARO
    "ending") also ends the enrolment with ``facts["end_reason"]``; an involuntary
    discharge needs ``facts["medical_ground"]``.
    """
    enrolment = get_enrolment(conn, enrolment_id)
    prog = programme_of(enrolment.programme)
    if prog.phase_model is None:
        raise CareError("no_phase_model", f"programmet {prog.id} har ingen fasmodell",
                        f"programme {prog.id} has no phase model")
    if enrolment.end_date is not None:
        raise CareError("enrolment_ended", "inskrivningen är avslutad", "the enrolment has ended")
    check_facts(facts)
    check_text(reason, "reason")
    given = dict(facts or {})
    if to_phase in {p.id for p in prog.phase_model.phases if p.terminal}:
        reason_id = given.get("end_reason")
        if reason_id is not None:
            _check_end(prog, reason_id, given)
    require_own_organisation(conn, actor, enrolment.unit_id)
    with conn.begin_nested():
        access(conn, actor, enrolment.person_key, "change",
               {"what": "phase", "enrolment_id": enrolment_id, "to_phase": to_phase})
        _apply_transition(conn, actor, enrolment, prog, to_phase, given, on_date, reason)
    sv, en = _phase_names(prog, to_phase)
    events = _events(conn, enrolment_id)
    last = events[-1]
    return PhaseEntry(to_phase, sv, en, on_date, last.from_phase, reason, actor.user, actor.role,
                      actor.unit_id, True)


def _check_end(prog: Programme, reason: str, facts: Mapping[str, Any]) -> None:
    """Raise :class:`CareError` for an unknown end reason or missing required data."""
    if prog.end_reasons:
        problems = validate_end(prog, reason, facts)
        if problems:
            raise _problems_error("invalid_end", "avslutet kan inte registreras",
                                  "the ending cannot be recorded", problems)
    elif reason not in END_REASONS:
        shown = ", ".join(END_REASONS)
        raise CareError("unknown_end_reason", f"okänd avslutsorsak {reason!r}",
                        f"unknown end reason {reason!r}",
                        [Issue("end_reason", "unknown_end_reason", f"tillåtna: {shown}",
                               f"allowed: {shown}")])
    if reason == "involuntary_discharge" and not str(facts.get("medical_ground") or "").strip():
        raise CareError("medical_ground_missing",
                        "ofrivillig utskrivning måste grunda sig på medicinska skäl",
                        "involuntary discharge must rest on medical grounds",
                        [Issue("medical_ground", "required_data_missing",
                               "medicinska skäl ska dokumenteras",
                               "the medical grounds must be recorded")])


def end_enrolment(conn: Connection, actor: Actor, enrolment_id: str, *, end_date: dt.date,
                  reason: str, medical_ground: str | None = None, note: str | None = None,
                  facts: Mapping[str, Any] | None = None) -> None:
    """End an enrolment with an end reason (involuntary discharge needs a medical ground).

    With a phase model the enrolment also enters the terminal phase (history kept).
    """
    enrolment = get_enrolment(conn, enrolment_id)
    prog = programme_of(enrolment.programme)
    if enrolment.end_date is not None:
        raise CareError("enrolment_ended", "inskrivningen är redan avslutad",
                        "the enrolment has already ended")
    if end_date < enrolment.start_date:
        raise CareError("end_before_start", "slutdatum före startdatum",
                        "end date before start date",
                        [Issue("end_date", "end_before_start", str(end_date), str(end_date))])
    check_facts(facts)
    check_text(note, "note")
    check_text(medical_ground, "medical_ground")
    given = {**(facts or {}), "end_reason": reason}
    if medical_ground is not None:
        given["medical_ground"] = medical_ground
    _check_end(prog, reason, given)
    require_own_organisation(conn, actor, enrolment.unit_id)
    with conn.begin_nested():
        access(conn, actor, enrolment.person_key, "change",
               {"what": "end_enrolment", "enrolment_id": enrolment_id, "end_reason": reason})
        terminal = [p.id for p in prog.phase_model.phases if p.terminal] \
            if prog.phase_model else []
        if terminal:
            _apply_transition(conn, actor, enrolment, prog, terminal[0], given, end_date,
                              note or reason)
            if note:
                _set_end_note(conn, enrolment_id, note)
            return
        details = dict(enrolment.details or {})
        details["facts"] = {**details.get("facts", {}), **jsonable(given)}
        if note:
            details["end_note"] = note
        conn.execute(update(Enrolment.__table__).where(Enrolment.row_key == enrolment_id)
                     .values(end_date=end_date, end_reason=reason, details=details))


def _set_end_note(conn: Connection, enrolment_id: str, note: str) -> None:
    details = dict(get_enrolment(conn, enrolment_id).details or {})
    details["end_note"] = note
    conn.execute(update(Enrolment.__table__).where(Enrolment.row_key == enrolment_id)
                 .values(details=details))


@dataclass(frozen=True)
class StageOwner:
    """Who is responsible for a stage of an enrolment."""

    stage: str
    responsible: str
    principal_type: str
    unit_id: str | None
    worker: str | None
    recorded: bool  # False: derived from the programme (imported enrolment)


def stage_owners(conn: Connection, enrolment: Row[Any], prog: Programme) -> dict[str, StageOwner]:
    """Owner of every stage: recorded rows, else derived from the programme."""
    table = CareStageOwner.__table__
    rows = {r.stage: r for r in conn.execute(select(table).where(
        table.c.enrolment_id == enrolment.row_key))}
    care = conn.execute(select(CareEnrolment.__table__).where(
        CareEnrolment.enrolment_id == enrolment.row_key)).first()
    unit = unit_info(conn, enrolment.unit_id)
    out: dict[str, StageOwner] = {}
    for stage in prog.stages:
        row = rows.get(stage.id)
        if row is not None:
            out[stage.id] = StageOwner(stage.id, row.responsible, row.principal_type, row.unit_id,
                                       row.worker, True)
            continue
        principal, owner_unit = default_owner(
            stage.responsible, unit.principal_type if unit else None, enrolment.unit_id,
            care.municipal_unit_id if care else None)
        worker = care.responsible_worker if care and owner_unit == enrolment.unit_id else None
        out[stage.id] = StageOwner(stage.id, stage.responsible, principal, owner_unit, worker,
                                   False)
    return out


def assign_stage(conn: Connection, actor: Actor, enrolment_id: str, stage: str, *,
                 unit_id: str | None = None, worker: str | None = None,
                 since: dt.date | None = None) -> StageOwner:
    """Hand a stage to another unit and/or worker (e.g. the municipal unit that follows up);
    the unit's care relation runs from ``since`` (default today, never later)."""
    enrolment = get_enrolment(conn, enrolment_id)
    prog = programme_of(enrolment.programme)
    try:
        spec = prog.stage(stage)
    except KeyError:
        raise CareError("unknown_stage", f"okänt steg {stage!r}", f"unknown stage {stage!r}",
                        [Issue("stage", "unknown_stage", ", ".join(s.id for s in prog.stages),
                               ", ".join(s.id for s in prog.stages))]) from None
    current = stage_owners(conn, enrolment, prog)[stage]
    target_unit = unit_id or current.unit_id
    principal = current.principal_type
    if unit_id is not None:
        principal = require_unit(conn, unit_id).principal_type
    require_own_organisation(conn, actor, enrolment.unit_id)
    with conn.begin_nested():
        access(conn, actor, enrolment.person_key, "change",
               {"what": "stage_owner", "enrolment_id": enrolment_id, "stage": stage,
                "unit_id": target_unit})
        if target_unit and unit_id is not None:
            from utfall.access.relations import ensure_relation

            ensure_relation(conn, actor, enrolment.person_key, target_unit, "assignment",
                            valid_from=since, note=prog.title.sv)
        table = CareStageOwner.__table__
        conn.execute(table.delete().where(table.c.enrolment_id == enrolment_id,
                                          table.c.stage == stage))
        conn.execute(table.insert().values(
            enrolment_id=enrolment_id, stage=stage, responsible=spec.responsible,
            principal_type=principal, unit_id=target_unit,
            worker=worker if worker is not None else current.worker,
            assigned_by=actor.user, assigned_at=now_utc()))
    return stage_owners(conn, enrolment, prog)[stage]
