"""Phase changes and discharge as use cases, shared by the web pages, the JSON API and
the CLI.

Each function checks access (404 for a person the actor may not reach, 403 for a role
or another organisation's enrolment), validates the input against the programme's
phase model and data fields, and writes through :mod:`utfall.care.enrolment`, which
audits the change (``change`` events with ``what: phase`` / ``end_enrolment``) and keeps
it in ``care_phase_event`` (shown on the timeline). A transition the phase model
forbids raises :class:`PhaseRefused` with the allowed next phases (HTTP 409).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, select

from utfall.access.audit import Actor
from utfall.care._common import (
    CareError,
    Issue,
    access,
    get_enrolment,
    require_own_organisation,
    require_unit,
    unit_info,
)
from utfall.instruments.models import LocalText


@dataclass(frozen=True)
class PhaseOption:
    """A phase one may move to: id, name (sv/en), whether it ends the enrolment."""

    id: str
    name: LocalText
    terminal: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"phase": self.id, "name": self.name.model_dump(), "terminal": self.terminal}


class PhaseRefused(CareError):
    """A change the phase model (or the enrolment's state) does not allow: HTTP 409,
    with the phases that are allowed from the current one."""

    def __init__(self, code: str, sv: str, en: str, allowed: list[PhaseOption],
                 issues: list[Issue] | None = None) -> None:
        super().__init__(code, sv, en, issues or [])
        self.allowed = allowed


@dataclass(frozen=True)
class ScheduledStage:
    """A follow-up stage still to come (e.g. after discharge), with its owner."""

    stage_id: str
    title: LocalText
    due_date: dt.date | None
    window_start: dt.date | None
    window_end: dt.date | None
    status: str
    responsible: str
    unit_id: str | None
    unit_name: str | None


@dataclass(frozen=True)
class EnrolmentView:
    """An enrolment with its phase, history, allowed next phases and pending stages."""

    enrolment_id: str
    person_key: str
    programme: str
    programme_title: LocalText
    unit_id: str | None
    start_date: dt.date
    end_date: dt.date | None
    end_reason: str | None
    end_reason_label: LocalText | None
    phase: str | None
    phase_name: LocalText | None
    history: list[dict[str, Any]]
    allowed: list[PhaseOption]
    pending: list[ScheduledStage] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """JSON-able form (dates ISO, texts as ``{sv, en}``)."""
        def d(value: dt.date | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "enrolment_id": self.enrolment_id, "person_key": self.person_key,
            "programme": self.programme, "programme_title": self.programme_title.model_dump(),
            "unit_id": self.unit_id, "start_date": d(self.start_date),
            "end_date": d(self.end_date), "end_reason": self.end_reason,
            "end_reason_label": self.end_reason_label.model_dump()
            if self.end_reason_label else None,
            "phase": self.phase,
            "phase_name": self.phase_name.model_dump() if self.phase_name else None,
            "phases": self.history, "allowed": [a.as_json() for a in self.allowed],
            "pending_stages": [{
                "stage": s.stage_id, "title": s.title.model_dump(), "due_date": d(s.due_date),
                "window_start": d(s.window_start), "window_end": d(s.window_end),
                "status": s.status, "responsible": s.responsible, "unit_id": s.unit_id,
                "unit_name": s.unit_name} for s in self.pending],
        }


@dataclass(frozen=True)
class PhaseForm:
    """What a form to change phase (or discharge) needs: the enrolment, the fields of
    the target phase with the values recorded so far, and the end reasons."""

    view: EnrolmentView
    to_phase: PhaseOption | None
    fields: list[Any]  # followup DataField, in programme order
    facts: dict[str, Any]
    end_reasons: list[Any]  # followup EndReason
    check_fields: dict[str, str]  # entry-check code → the form field it is shown at
    municipal_stages: list[str]  # stages run by municipal social services
    municipal_unit_id: str | None


def _programme(enrolment: Row[Any]) -> Any:
    from utfall.care.enrolment import programme_of

    return programme_of(enrolment.programme)


def _option(prog: Any, phase_id: str) -> PhaseOption:
    phase = prog.phase_model.phase(phase_id)
    return PhaseOption(phase.id, phase.name, phase.terminal)


def _current_phase(conn: Connection, enrolment: Row[Any], prog: Any) -> str | None:
    from utfall.care.enrolment import _state

    if prog.phase_model is None:
        return None
    return _state(conn, enrolment, prog).phase


def _allowed_from(prog: Any, phase: str | None) -> list[PhaseOption]:
    """Phases reachable from ``phase`` (none for an unknown phase or no model)."""
    model = prog.phase_model
    if model is None or phase not in {p.id for p in model.phases}:
        return []
    return [_option(prog, p) for p in model.allowed(phase)]


def allowed_phases(conn: Connection, enrolment: Row[Any], prog: Any) -> list[PhaseOption]:
    """Phases reachable in one step (none for an ended enrolment or without a model)."""
    if prog.phase_model is None or enrolment.end_date is not None:
        return []
    current = _current_phase(conn, enrolment, prog)
    if current is None:
        return []
    return [_option(prog, p) for p in prog.phase_model.allowed(current)]


def _pending(conn: Connection, enrolment: Row[Any], prog: Any,
             today: dt.date, owners: dict[str, Any] | None = None) -> list[ScheduledStage]:
    from utfall.care.enrolment import stage_owners
    from utfall.care.scheduling import completions
    from utfall.followup import Enrolment as SchedEnrolment
    from utfall.followup import schedule

    owners = owners if owners is not None else stage_owners(conn, enrolment, prog)
    done, _ = completions(conn, enrolment, prog)
    rows = schedule(SchedEnrolment(prog, enrolment.start_date, enrolment.end_date), done, today)
    names: dict[str | None, str | None] = {}
    out = []
    for row in rows:
        if row.status not in ("upcoming", "due", "overdue"):
            continue
        owner = owners[row.stage]
        if owner.unit_id not in names:
            info = unit_info(conn, owner.unit_id)
            names[owner.unit_id] = info.name if info else None
        out.append(ScheduledStage(row.stage_id, row.title, row.due_date, row.window_start,
                                  row.window_end, row.status, owner.responsible,
                                  owner.unit_id, names[owner.unit_id]))
    return out


def enrolment_view(conn: Connection, enrolment: Row[Any] | str,
                   today: dt.date | None = None,
                   owners: dict[str, Any] | None = None) -> EnrolmentView:
    """The enrolment as shown after a change (no access check: callers check and log);
    ``owners`` (from ``stage_owners``) saves reading them again."""
    from utfall.care.enrolment import _history
    from utfall.followup import local_today

    if isinstance(enrolment, str):
        enrolment = get_enrolment(conn, enrolment)
    prog = _programme(enrolment)
    history = _history(conn, enrolment, prog)
    phase = history[-1].phase if history else enrolment.phase
    label = None
    if enrolment.end_reason:
        try:
            label = prog.end_reason(enrolment.end_reason).label
        except KeyError:
            label = None
    phase_name = None
    if phase and prog.phase_model is not None:
        try:
            phase_name = prog.phase_model.phase(phase).name
        except KeyError:
            phase_name = None
    return EnrolmentView(
        enrolment_id=enrolment.row_key, person_key=enrolment.person_key,
        programme=prog.id, programme_title=prog.title, unit_id=enrolment.unit_id,
        start_date=enrolment.start_date, end_date=enrolment.end_date,
        end_reason=enrolment.end_reason, end_reason_label=label, phase=phase,
        phase_name=phase_name,
        history=[{"phase": h.phase, "name": {"sv": h.name_sv, "en": h.name_en},
                  "date": h.on_date.isoformat(), "from_phase": h.from_phase,
                  "reason": h.reason, "reason_label": _reason_label(prog, h.reason),
                  "actor": h.actor, "role": h.role, "unit_id": h.unit_id,
                  "recorded": h.recorded} for h in history],
        # an imported enrolment without a phase is in the initial phase for changes
        allowed=[] if enrolment.end_date is not None else _allowed_from(
            prog, phase or (prog.phase_model.initial if prog.phase_model else None)),
        pending=_pending(conn, enrolment, prog, today or local_today(), owners))


def _reason_label(prog: Any, reason: str | None) -> dict[str, str] | None:
    """The label of a reason that is an end-reason id (a discharge without a note)."""
    for end in prog.end_reasons:
        if end.id == reason:
            return {"sv": end.label.sv, "en": end.label.en}
    return None


def enrolment_person(conn: Connection, enrolment_id: str) -> str:
    """The person key of an enrolment (raises ``NotFound``); for audit of refusals."""
    return str(get_enrolment(conn, enrolment_id).person_key)


def _may_change(conn: Connection, actor: Actor, enrolment: Row[Any]) -> None:
    """404 for a person the actor cannot reach, 403 for a role or another organisation."""
    from utfall.access.policy import require_person_access

    require_person_access(conn, actor, enrolment.person_key, "change")
    require_own_organisation(conn, actor, enrolment.unit_id)


def _check_date(on_date: dt.date, enrolment: Row[Any], today: dt.date | None) -> None:
    from utfall.followup import local_today

    if on_date > (today or local_today()):
        raise CareError("date_in_future", "datumet ligger i framtiden", "the date is in the future",
                        [Issue("date", "date_in_future", "datumet får inte ligga i framtiden",
                               "the date must not be in the future")])
    if on_date < enrolment.start_date:
        raise CareError("date_before_start", "datumet ligger före inskrivningen",
                        "the date is before the enrolment started",
                        [Issue("date", "date_before_start",
                               f"tidigast {enrolment.start_date.isoformat()}",
                               f"{enrolment.start_date.isoformat()} at the earliest")])


def _check_facts(prog: Any, facts: Mapping[str, Any]) -> dict[str, Any]:
    """Given facts of known fields with values of the right type (else 422 issues)."""
    from utfall.followup.data import check_field

    known = {f.id: f for f in prog.data_fields}
    issues: list[Issue] = []
    out: dict[str, Any] = {}
    for key, value in facts.items():
        spec = known.get(key)
        if spec is None:
            issues.append(Issue(f"facts.{key}", "unknown_field", "okänd uppgift för programmet",
                                "not a data field of the programme"))
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        problem = check_field(spec, value)
        if problem is not None:
            issues.append(Issue(key, problem.code, problem.sv, problem.en))
            continue
        out[key] = value
    if issues:
        raise CareError("invalid_facts", "uppgifterna är ogiltiga", "the data are invalid",
                        issues)
    return out


def _refused(conn: Connection, enrolment: Row[Any], prog: Any, exc: CareError) -> CareError:
    """A service refusal as shown to callers: 409 for a forbidden transition, field
    issues for a date before the current phase."""
    if exc.code in ("forbidden_transition", "enrolment_ended", "no_phase_model"):
        return PhaseRefused(exc.code, exc.sv, exc.en, allowed_phases(conn, enrolment, prog),
                            exc.issues)
    if exc.code == "date_before_current_phase" and not exc.issues:
        exc.issues.append(Issue("date", exc.code, exc.sv, exc.en))
    return exc


def _forbidden(conn: Connection, enrolment: Row[Any], prog: Any, to_phase: str) -> None:
    """Raise :class:`PhaseRefused` unless ``to_phase`` is reachable now."""
    if prog.phase_model is None:
        raise PhaseRefused("no_phase_model", f"programmet {prog.title.sv} har inga faser",
                           f"programme {prog.title.en} has no phases", [])
    if enrolment.end_date is not None:
        raise PhaseRefused("enrolment_ended", "inskrivningen är avslutad",
                           "the enrolment has ended", [])
    ids = [p.id for p in prog.phase_model.phases]
    allowed = allowed_phases(conn, enrolment, prog)
    names_sv = ", ".join(a.name.sv for a in allowed) or "inga"
    names_en = ", ".join(a.name.en for a in allowed) or "none"
    if to_phase not in ids:
        raise CareError("unknown_phase", f"okänd fas {to_phase!r}", f"unknown phase {to_phase!r}",
                        [Issue("phase", "unknown_phase", f"tillåtna nu: {names_sv}",
                               f"allowed now: {names_en}")])
    if to_phase not in {a.id for a in allowed}:
        current = _current_phase(conn, enrolment, prog) or ""
        here, there = prog.phase_model.phase(current).name, prog.phase_model.phase(to_phase).name
        raise PhaseRefused(
            "forbidden_transition",
            f"Från fasen {here.sv} går det inte att gå till {there.sv}. Tillåtna: {names_sv}.",
            f"From phase {here.en} one cannot go to {there.en}. Allowed: {names_en}.", allowed)


def set_phase(conn: Connection, actor: Actor, enrolment_id: str, to_phase: str, *,
              on_date: dt.date, facts: Mapping[str, Any] | None = None,
              reason: str | None = None, today: dt.date | None = None) -> EnrolmentView:
    """Move the enrolment to ``to_phase`` (allowed transition, entry checks pass).

    Entering a terminal phase needs ``facts["end_reason"]`` (and what that reason
    requires, e.g. ``medical_ground``); it ends the enrolment like :func:`discharge`.
    """
    from utfall.care.enrolment import change_phase

    enrolment = get_enrolment(conn, enrolment_id)
    _may_change(conn, actor, enrolment)
    prog = _programme(enrolment)
    _forbidden(conn, enrolment, prog, to_phase)
    _check_date(on_date, enrolment, today)
    given = _check_facts(prog, facts or {})
    try:
        change_phase(conn, actor, enrolment_id, to_phase, on_date=on_date, facts=given,
                     reason=reason)
    except CareError as exc:
        raise _refused(conn, enrolment, prog, exc) from None
    return enrolment_view(conn, enrolment_id, today)


def municipal_stages(prog: Any) -> list[str]:
    """Stages of the programme run by municipal social services."""
    return [s.id for s in prog.stages if s.responsible == "municipal_social_services"]


def discharge(conn: Connection, actor: Actor, enrolment_id: str, *, on_date: dt.date,
              end_reason: str, facts: Mapping[str, Any] | None = None,
              note: str | None = None, municipal_unit_id: str | None = None,
              today: dt.date | None = None) -> EnrolmentView:
    """End the enrolment with an end reason (and the data it requires, e.g. the medical
    grounds of an involuntary discharge); with a phase model it enters the terminal phase.

    The post-discharge stages then fall due from the discharge date; those run by
    municipal social services go to ``municipal_unit_id`` when given (else to the
    municipal unit named at enrolment).
    """
    from utfall.care.enrolment import assign_stage, end_enrolment

    enrolment = get_enrolment(conn, enrolment_id)
    _may_change(conn, actor, enrolment)
    prog = _programme(enrolment)
    if enrolment.end_date is not None:
        raise PhaseRefused("enrolment_ended", "inskrivningen är redan avslutad",
                           "the enrolment has already ended", [])
    _check_date(on_date, enrolment, today)
    if prog.phase_model is not None:
        terminal = [p.id for p in prog.phase_model.phases if p.terminal]
        if terminal:
            _forbidden(conn, enrolment, prog, terminal[0])
    given = _check_facts(prog, {k: v for k, v in (facts or {}).items() if k != "end_reason"})
    municipal = municipal_stages(prog)
    if municipal_unit_id:
        info = require_unit(conn, municipal_unit_id, "municipal_unit")
        if info.principal_type != "municipality":
            raise CareError("not_municipal", "enheten tillhör inte en kommun",
                            "the unit does not belong to a municipality",
                            [Issue("municipal_unit", "not_municipal",
                                   "välj en enhet inom socialtjänsten",
                                   "choose a social-services unit")])
    try:
        end_enrolment(conn, actor, enrolment_id, end_date=on_date, reason=end_reason,
                      note=note, facts=given)
        if municipal_unit_id:
            for stage in municipal:
                assign_stage(conn, actor, enrolment_id, stage, unit_id=municipal_unit_id,
                             since=on_date)
    except CareError as exc:
        raise _refused(conn, enrolment, prog, exc) from None
    return enrolment_view(conn, enrolment_id, today)


def phase_form(conn: Connection, actor: Actor, enrolment_id: str, to_phase: str | None,
               *, discharge_form: bool = False) -> PhaseForm:
    """The data a phase-change (or discharge) form shows: access checked as for the
    change itself, the read of the recorded facts audited."""
    from utfall.care.enrolment import _facts

    enrolment = get_enrolment(conn, enrolment_id)
    _may_change(conn, actor, enrolment)
    prog = _programme(enrolment)
    option = None
    wanted: list[str] = []
    check_fields: dict[str, str] = {}
    if discharge_form:
        wanted = ["medical_ground"] if any(f.id == "medical_ground" for f in prog.data_fields) \
            else []
    elif to_phase is not None:
        _forbidden(conn, enrolment, prog, to_phase)
        option = _option(prog, to_phase)
        phase = prog.phase_model.phase(to_phase)
        wanted = list(phase.required_data)
        for check in phase.entry_checks:
            facts_used = [f for f in _condition_facts(check.condition)
                          if any(d.id == f for d in prog.data_fields)]
            wanted += facts_used
            if facts_used:
                check_fields[check.code] = facts_used[0]
    access(conn, actor, enrolment.person_key, "read",
           {"what": "phase_form", "enrolment_id": enrolment_id})
    order = [f for f in prog.data_fields if f.id in set(wanted) and f.id != "end_reason"]
    from utfall.store.models_care import CareEnrolment

    care = conn.execute(select(CareEnrolment.municipal_unit_id).where(
        CareEnrolment.enrolment_id == enrolment_id)).first()
    return PhaseForm(view=enrolment_view(conn, enrolment), to_phase=option, fields=order,
                     facts=_facts(enrolment), end_reasons=list(prog.end_reasons),
                     check_fields=check_fields, municipal_stages=municipal_stages(prog),
                     municipal_unit_id=care.municipal_unit_id if care else None)


def _condition_facts(condition: Any) -> list[str]:
    """Fact names a condition reads, in order."""
    if condition.fact is not None:
        return [condition.fact]
    out: list[str] = []
    for part in (condition.all_ or ()) + (condition.any_ or ()):
        out += _condition_facts(part)
    if condition.not_ is not None:
        out += _condition_facts(condition.not_)
    return out
