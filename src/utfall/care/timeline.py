"""A person's timeline across both principals, and the domain profile chart.

Every entry carries the unit, organisation and principal type that recorded it and
a ``kind`` (enrolment, contact, procedure, medication, assessment), so the access
policy's consent filter (``utfall.access.policy.filter_timeline``) can keep only what
the actor may see; :func:`timeline` applies it before returning.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from utfall.access.audit import Actor
from utfall.care._common import UnitInfo, access, get_person
from utfall.care.scheduling import not_voided
from utfall.domain import labels
from utfall.domain.codes import code_systems, normalise_icd10
from utfall.domain.formats import STOCKHOLM
from utfall.followup import UnknownProgrammeError, get_programme
from utfall.instruments import InstrumentDefinition, UnknownInstrumentError, get_instrument
from utfall.instruments.models import LocalText
from utfall.store.models import (
    Assessment,
    Contact,
    Enrolment,
    Medication,
    Organisation,
    Procedure,
    Unit,
)
from utfall.store.models_care import CareEnrolment, CarePhaseEvent

LIFE_SITUATION = "life-situation"
GOAL_ITEM = "goal_text"
GOAL_ATTAINMENT_ITEM = "item_19"


class Entry(BaseModel):
    """Common fields of every timeline entry (who recorded it, for consent filtering)."""

    kind: str
    date: dt.date
    unit_id: str | None
    unit_name: str | None = None
    organisation: str | None = None
    principal_type: str | None = None
    title: LocalText
    kind_label: LocalText | None = None  # "Besök", "Skattning"…
    principal_label: LocalText | None = None  # "region", "kommun"…


class PhaseItem(BaseModel):
    """One phase in an enrolment's history."""

    phase: str
    name: LocalText
    on_date: dt.date
    from_phase: str | None
    from_name: LocalText | None = None
    reason: str | None
    actor: str | None
    recorded: bool
    recorded_at: dt.datetime | None = None  # Europe/Stockholm


class EnrolmentEntry(Entry):
    """An enrolment with its phases."""

    kind: str = "enrolment"
    enrolment_id: str
    programme: str
    end_date: dt.date | None
    end_reason: str | None
    end_reason_label: LocalText | None = None
    phase: str | None
    phase_label: LocalText | None = None
    phases: list[PhaseItem] = Field(default_factory=list)
    responsible_worker: str | None = None
    municipal_unit_id: str | None = None
    source: str  # capture / import


class ContactEntry(Entry):
    """A visit, stay or social-services contact."""

    kind: str = "contact"
    end_date: dt.date | None
    contact_type: str
    main_dx: str | None
    dx_group: str | None
    setting_label: LocalText | None = None  # "öppenvård", "socialtjänst"…
    dx_label: LocalText | None = None  # "Alkohol – beroendesyndrom"
    dx_code: str | None = None  # "F10.2", as clinicians write it


class InterventionEntry(Entry):
    """A registered intervention (KVÅ)."""

    kind: str = "procedure"
    kva_code: str


class MedicationEntry(Entry):
    """A medication period (ATC) with its class."""

    kind: str = "medication"
    atc: str
    atc_class: str | None
    end_date: dt.date | None


class AssessmentEntry(Entry):
    """An administered instrument with scores and band."""

    kind: str = "assessment"
    assessment_id: str
    instrument: str
    stage: str | None
    stage_label: LocalText | None = None
    score: float | None
    subscores: dict[str, float | None]
    band: str | None
    band_label: LocalText | None
    source: str
    source_label: LocalText | None = None


class Goal(BaseModel):
    """The person's own goal as given in the life-situation instrument."""

    date: dt.date
    text: str | None
    attainment: int | None  # 0 = not at all … 10 = reached
    assessment_id: str
    unit_id: str | None


class ProfilePoint(BaseModel):
    """One value of the domain profile: a life-situation subscale or an instrument total."""

    date: dt.date
    instrument: str
    measure: str  # subscale id or "total"
    label: LocalText
    value: float
    percent: float  # position within the scale's range, 0–100
    direction: str  # lower_is_better / higher_is_better
    band: str | None = None
    band_label: LocalText | None = None


class Timeline(BaseModel):
    """Everything about one person the actor may see, oldest first."""

    person_key: str
    sex: str
    birth_year: int
    enrolments: list[EnrolmentEntry]
    contacts: list[ContactEntry]
    interventions: list[InterventionEntry]
    medications: list[MedicationEntry]
    assessments: list[AssessmentEntry]
    goals: list[Goal]
    profile: list[ProfilePoint]
    hidden: int = 0  # entries withheld by the consent filter
    emergency: bool = False  # read under a (flagged, time-boxed) emergency access

    def entries(self) -> list[Entry]:
        """All entries in date order."""
        items: list[Entry] = [*self.enrolments, *self.contacts, *self.interventions,
                              *self.medications, *self.assessments]
        return sorted(items, key=lambda e: (e.date, e.kind))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@cache
def _lt(label: labels.Label | None) -> LocalText | None:
    """The LocalText of a label (one shared, read-only instance per label)."""
    return LocalText(sv=label.sv, en=label.en) if label else None


@cache
def _label(kind: str, code: str | None) -> LocalText | None:
    return _lt(labels.lookup(kind, code))


def _kind(kind: str) -> LocalText | None:
    return _label("event_kind", kind)


def _unit_infos(conn: Connection, unit_ids: set[str | None]) -> dict[str | None, UnitInfo]:
    """Unit, organisation and principal type of every unit on the timeline: one query."""
    wanted = sorted(u for u in unit_ids if u)
    if not wanted:
        return {}
    rows = conn.execute(
        select(Unit.unit_id, Unit.name, Organisation.name, Organisation.principal_type)
        .join(Organisation, Organisation.id == Unit.organisation_id)
        .where(Unit.unit_id.in_(wanted)))
    return {r[0]: UnitInfo(*r) for r in rows}


def _where(units: dict[str | None, UnitInfo], unit_id: str | None) -> dict[str, Any]:
    info = units.get(unit_id)
    principal = info.principal_type if info else None
    return {"unit_id": unit_id, "unit_name": info.name if info else None,
            "organisation": info.organisation if info else None,
            "principal_type": principal,
            "principal_label": _label("principal_type", principal)}


def _definition(instrument: str) -> InstrumentDefinition | None:
    try:
        return get_instrument(instrument)
    except UnknownInstrumentError:
        return None


def band_label(definition: InstrumentDefinition | None, band: str | None) -> LocalText | None:
    """The sv/en label of a band id."""
    if definition is None or band is None:
        return None
    for band_set in definition.bands:
        for b in band_set.bands:
            if b.id == band:
                return b.label
    return None


def _percent(value: float, lo: float, hi: float) -> float:
    return round(100 * (value - lo) / (hi - lo), 1) if hi > lo else 0.0


def domain_profile(assessments: list[AssessmentEntry]) -> list[ProfilePoint]:
    """Life-situation subscales and instrument totals by date (positions 0–100 %)."""
    points: list[ProfilePoint] = []
    for a in assessments:
        definition = _definition(a.instrument)
        if definition is None:
            continue
        scoring = definition.scoring
        if scoring.total is not None and a.score is not None:
            lo, hi = definition.scale_range(scoring.total)
            points.append(ProfilePoint(
                date=a.date, instrument=a.instrument, measure="total", label=definition.title,
                value=a.score, percent=_percent(a.score, lo, hi),
                direction=scoring.total.direction or scoring.direction, band=a.band,
                band_label=a.band_label))
        if a.instrument != LIFE_SITUATION:
            continue
        for sub in scoring.subscales:
            value = a.subscores.get(sub.id)
            if value is None:
                continue
            lo, hi = definition.scale_range(sub)
            points.append(ProfilePoint(
                date=a.date, instrument=a.instrument, measure=sub.id, label=sub.title,
                value=float(value), percent=_percent(float(value), lo, hi),
                direction=sub.direction or scoring.direction))
    return sorted(points, key=lambda p: (p.date, p.instrument, p.measure))


def _goals(answers: dict[str, Any], assessments: list[AssessmentEntry]) -> list[Goal]:
    """Own goals from the life-situation answers already read with the assessments."""
    goals = []
    for a in assessments:
        if a.instrument != LIFE_SITUATION or a.assessment_id not in answers:
            continue
        given = answers[a.assessment_id]
        text = given.get(GOAL_ITEM)
        attainment = given.get(GOAL_ATTAINMENT_ITEM)
        if text is None and attainment is None:
            continue
        goals.append(Goal(date=a.date, text=text, attainment=attainment,
                          assessment_id=a.assessment_id, unit_id=a.unit_id))
    return goals


def _stage_label(programme: str | None, stage: str | None) -> LocalText | None:
    """``review-2`` → "Uppföljning 2" (a repeated stage's occurrence keeps its number)."""
    if not stage:
        return None
    found = labels.lookup("stage", f"{programme}/{stage}") if programme else None
    found = found or labels.lookup("stage", stage)
    if found:
        return _lt(found)
    base, _, number = stage.rpartition("-")
    if base and number.isdigit():
        found = (labels.lookup("stage", f"{programme}/{base}") if programme else None) \
            or labels.lookup("stage", base)
        if found:
            return LocalText(sv=f"{found.sv} {number}", en=f"{found.en} {number}")
    return None


def _phase_label(programme: str, phase: str | None) -> LocalText | None:
    if not phase:
        return None
    return _lt(labels.lookup("phase", f"{programme}/{phase}") or labels.lookup("phase", phase))


def _local(at: Any) -> dt.datetime | None:
    if at is None:
        return None
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at)
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(STOCKHOLM)


def _phase_items(row: Any, events: list[Any]) -> list[PhaseItem]:
    """The phase history of one enrolment (imported ones: their one known phase)."""
    if not events:
        if not row.phase:
            return []
        name = _phase_label(row.programme, row.phase) or LocalText(sv=row.phase, en=row.phase)
        return [PhaseItem(phase=row.phase, name=name, on_date=row.start_date, from_phase=None,
                          reason=None, actor=None, recorded=False)]
    return [PhaseItem(
        phase=e.to_phase,
        name=_phase_label(row.programme, e.to_phase) or LocalText(sv=e.to_phase, en=e.to_phase),
        on_date=e.on_date, from_phase=e.from_phase,
        from_name=_phase_label(row.programme, e.from_phase), reason=e.reason, actor=e.actor,
        recorded=True, recorded_at=_local(e.recorded_at)) for e in events]


def _enrolment_rows(conn: Connection, person_key: str
                    ) -> tuple[list[Any], dict[str, Any], dict[str, list[Any]]]:
    """Enrolments with their care rows (one query) and phase events (one more when
    there are enrolments), whatever the count."""
    e = Enrolment.__table__
    ce = CareEnrolment.__table__
    rows = list(conn.execute(
        select(e, ce.c.enrolment_id.label("care_enrolment_id"), ce.c.responsible_worker,
               ce.c.municipal_unit_id)
        .outerjoin(ce, ce.c.enrolment_id == e.c.row_key)
        .where(e.c.person_key == person_key).order_by(e.c.start_date)))
    if not rows:
        return [], {}, {}
    ids = [r.row_key for r in rows]
    care = {r.row_key: r for r in rows if r.care_enrolment_id is not None}
    ev = CarePhaseEvent.__table__
    events: dict[str, list[Any]] = {}
    for r in conn.execute(select(ev).where(ev.c.enrolment_id.in_(ids))
                          .order_by(ev.c.on_date, ev.c.id)):
        events.setdefault(r.enrolment_id, []).append(r)
    return rows, care, events


def _enrolments(rows: list[Any], care: dict[str, Any], events: dict[str, list[Any]],
                units: dict[str | None, UnitInfo]) -> list[EnrolmentEntry]:
    out = []
    for row in rows:
        try:
            prog = get_programme(row.programme)
            title = prog.title
        except UnknownProgrammeError:
            prog, title = None, LocalText(sv=row.programme, en=row.programme)
        label = None
        if prog and row.end_reason:
            try:
                label = prog.end_reason(row.end_reason).label
            except KeyError:
                label = None
        extra = care.get(row.row_key)
        details = _json(row.details) or {}
        source = details.get("source", "import")
        out.append(EnrolmentEntry(
            date=row.start_date, title=title, kind_label=_kind("enrolment"),
            enrolment_id=row.row_key, programme=row.programme, end_date=row.end_date,
            end_reason=row.end_reason, end_reason_label=label, phase=row.phase,
            phase_label=_phase_label(row.programme, row.phase),
            phases=_phase_items(row, events.get(row.row_key, [])),
            responsible_worker=extra.responsible_worker if extra else None,
            municipal_unit_id=extra.municipal_unit_id if extra else None,
            source=source, **_where(units, row.unit_id)))
    return out


def timeline(conn: Connection, actor: Actor, person_key: str, *,
             emergency_reason: str | None = None) -> Timeline:
    """The person's timeline, filtered to what ``actor`` may see (consent across
    principals); the read is audited. Raises ``AccessDenied`` without any access."""
    from utfall.access.policy import access_scope, filter_entries, unit_organisations

    grant = access(conn, actor, person_key, "read", {"what": "timeline"},
                   emergency_reason=emergency_reason)
    person = get_person(conn, person_key)
    codes = code_systems()
    enrolment_rows, care, events = _enrolment_rows(conn, person_key)
    c = Contact.__table__
    contact_rows = list(conn.execute(select(c).where(c.c.person_key == person_key)
                                     .order_by(c.c.date)))
    p = Procedure.__table__
    procedure_rows = list(conn.execute(select(p).where(p.c.person_key == person_key)
                                       .order_by(p.c.date)))
    m = Medication.__table__
    medication_rows = list(conn.execute(select(m).where(m.c.person_key == person_key)
                                        .order_by(m.c.start_date)))
    a = Assessment.__table__
    assessment_rows = list(conn.execute(
        select(a).where(a.c.person_key == person_key, not_voided(a.c.row_key))
        .order_by(a.c.date, a.c.instrument, a.c.row_key)))
    units = _unit_infos(conn, {r.unit_id for rows in (enrolment_rows, contact_rows,
                                                       procedure_rows, medication_rows,
                                                       assessment_rows) for r in rows})
    enrolments = _enrolments(enrolment_rows, care, events, units)
    programme_of = {r.row_key: r.programme for r in enrolment_rows}
    contacts = []
    for r in contact_rows:
        dx = normalise_icd10(r.main_dx) if r.main_dx else None
        dx_label = _label("dx", dx) if dx else None
        setting = _label("care_setting", r.contact_type)
        group = codes.substance_groups.get(r.dx_group or "")
        title = (LocalText(sv=group["sv"], en=group["en"]) if group else dx_label or setting
                 or LocalText(sv="Besök", en="Visit"))
        contacts.append(ContactEntry(
            date=r.date, end_date=r.end_date, contact_type=r.contact_type, main_dx=r.main_dx,
            dx_group=r.dx_group, title=title, kind_label=_kind("contact"),
            setting_label=setting, dx_label=dx_label,
            dx_code=labels.formatted_icd10(dx) if dx else None, **_where(units, r.unit_id)))
    interventions = []
    for r in procedure_rows:
        spec = codes.kva.get(r.kva_code)
        title = LocalText(sv=spec["sv"], en=spec["en"]) if spec else LocalText(
            sv=r.kva_code, en=r.kva_code)
        interventions.append(InterventionEntry(date=r.date, kva_code=r.kva_code, title=title,
                                               kind_label=_kind("procedure"),
                                               **_where(units, r.unit_id)))
    medications = []
    for r in medication_rows:
        spec = codes.atc.get(r.atc)
        title = LocalText(sv=spec["sv"], en=spec["en"]) if spec else LocalText(sv=r.atc,
                                                                                en=r.atc)
        medications.append(MedicationEntry(
            date=r.start_date, end_date=r.end_date, atc=r.atc, atc_class=codes.atc_class(r.atc),
            title=title, kind_label=_kind("medication"), **_where(units, r.unit_id)))
    assessments = []
    for r in assessment_rows:
        definition = _definition(r.instrument)
        subscores = _json(r.subscores) or {}
        programme = programme_of.get(getattr(r, "enrolment_id", None) or "")
        assessments.append(AssessmentEntry(
            date=r.date, assessment_id=r.row_key, instrument=r.instrument, stage=r.stage,
            stage_label=_stage_label(programme, r.stage), kind_label=_kind("assessment"),
            score=r.score, subscores=subscores, band=r.band,
            band_label=band_label(definition, r.band), source=r.source,
            source_label=_label("source", r.source),
            title=definition.title if definition else LocalText(sv=r.instrument,
                                                                en=r.instrument),
            **_where(units, r.unit_id)))
    total = len(enrolments) + len(contacts) + len(interventions) + len(medications) \
        + len(assessments)
    emergency = bool(grant.emergency)
    scope = access_scope(conn, actor, person_key, emergency=emergency)
    organisations = unit_organisations(conn)
    enrolments = filter_entries(enrolments, scope, organisations)
    contacts = filter_entries(contacts, scope, organisations)
    interventions = filter_entries(interventions, scope, organisations)
    medications = filter_entries(medications, scope, organisations)
    assessments = filter_entries(assessments, scope, organisations)
    shown = len(enrolments) + len(contacts) + len(interventions) + len(medications) \
        + len(assessments)
    return Timeline(
        person_key=person_key, sex=person.sex, birth_year=person.birth_date.year,
        enrolments=enrolments, contacts=contacts, interventions=interventions,
        medications=medications, assessments=assessments,
        goals=_goals({r.row_key: _json(r.answers) or {} for r in assessment_rows
                      if r.instrument == LIFE_SITUATION}, assessments),
        profile=domain_profile(assessments), hidden=total - shown, emergency=emergency)


_TEXTS = {
    "sv": {"x": "Datum", "y": "Position på skalan (%)", "measure": "Mått", "value": "Värde",
           "domains": "Livssituation – domäner", "totals": "Formulär – totalpoäng",
           "empty": "Inga mätningar ännu", "lower": "lägre är bättre",
           "higher": "högre är bättre", "band": "Nivå"},
    "en": {"x": "Date", "y": "Position on the scale (%)", "measure": "Measure", "value": "Value",
           "domains": "Life situation – domains", "totals": "Questionnaires – total scores",
           "empty": "No measurements yet", "lower": "lower is better",
           "higher": "higher is better", "band": "Band"},
}


def _records(points: list[ProfilePoint], locale: str) -> list[dict[str, Any]]:
    texts = _TEXTS[locale]
    out = []
    for p in points:
        label = p.label.en if locale == "en" else p.label.sv
        arrow = "↓" if p.direction == "lower_is_better" else "↑"
        out.append({"date": p.date.isoformat(), "percent": p.percent, "value": p.value,
                    "measure": f"{label} {arrow}", "band": p.band or "",
                    "direction": texts["lower" if p.direction == "lower_is_better"
                                       else "higher"]})
    return out


def timeline_chart(tl: Timeline, locale: str = "sv") -> Any:
    """The domain profile over time as an Altair chart (one panel per kind of measure)."""
    import altair as alt

    texts = _TEXTS["en" if locale == "en" else "sv"]
    locale = "en" if locale == "en" else "sv"
    domains = [p for p in tl.profile if p.instrument == LIFE_SITUATION and p.measure != "total"]
    totals = [p for p in tl.profile if p.measure == "total"]
    if not domains and not totals:
        return alt.Chart(alt.Data(values=[{"t": texts["empty"]}])).mark_text(
            size=14).encode(text="t:N").properties(width=480, height=60)

    def panel(points: list[ProfilePoint], title: str) -> Any:
        return alt.Chart(alt.Data(values=_records(points, locale)), title=title).mark_line(
            point=True).encode(
            x=alt.X("date:T", title=texts["x"]),
            y=alt.Y("percent:Q", title=texts["y"], scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("measure:N", title=texts["measure"],
                            legend=alt.Legend(labelLimit=360)),
            tooltip=[alt.Tooltip("date:T", title=texts["x"]),
                     alt.Tooltip("measure:N", title=texts["measure"]),
                     alt.Tooltip("value:Q", title=texts["value"]),
                     alt.Tooltip("band:N", title=texts["band"]),
                     alt.Tooltip("direction:N")],
        ).properties(width=520, height=220)

    panels = []
    if domains:
        panels.append(panel(domains, texts["domains"]))
    if totals:
        panels.append(panel(totals, texts["totals"]))
    chart = panels[0] if len(panels) == 1 else alt.vconcat(*panels).resolve_scale(
        color="independent")
    return chart


def timeline_chart_svg(tl: Timeline, locale: str = "sv") -> str:
    """The progress chart as one SVG document (plain SVG from :mod:`utfall.care.chart`:
    each instrument on its own scale with its bands, the life-situation profile)."""
    from utfall.care.chart import chart_panels, combined_svg

    locale = "en" if locale == "en" else "sv"
    return combined_svg(chart_panels(tl.profile, tl.sex, locale), locale)
