"""Build a register's forms from the canonical tables, per the mapping file.

Pure over the loaded rows (:class:`Data`): eligibility ("established in treatment"
per person and unit), form triggers, variables from their source kinds, code lists,
and the gaps – required data that is missing – as ``form: person_key: variable:
reason``. Identity numbers are never read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from utfall.care.scheduling import not_voided
from utfall.interop.register.mapping import Form, Mapping, Variable
from utfall.store.models import Assessment, Contact, Enrolment, Medication, Person, Unit


@dataclass(frozen=True)
class Gap:
    """Required data missing from one form."""

    form: str
    person_key: str
    unit_id: str
    variable: str
    reason: str
    reason_sv: str = ""

    def __str__(self) -> str:
        return f"{self.form}: {self.person_key}: {self.variable}: {self.reason}"


@dataclass
class FormRecord:
    """One form for one person at one unit."""

    register: str
    form: str
    person_key: str
    unit_id: str
    anchor: str
    trigger_date: dt.date
    variables: dict[str, Any]
    gaps: list[Gap] = field(default_factory=list)

    @property
    def form_key(self) -> str:
        """Stable id of the form (the same form in a later export has the same key)."""
        text = f"{self.register}|{self.form}|{self.person_key}|{self.unit_id}|{self.anchor}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @property
    def content(self) -> dict[str, Any]:
        return {"form": self.form, "form_key": self.form_key, "person_key": self.person_key,
                "unit_id": self.unit_id, "trigger_date": self.trigger_date.isoformat(),
                "variables": self.variables}

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.content, sort_keys=True, ensure_ascii=False)
                              .encode()).hexdigest()

    @property
    def valid(self) -> bool:
        return not self.gaps


@dataclass
class Data:
    """The canonical rows a register export reads (per person)."""

    units: dict[str, str]  # unit_id → care level
    persons: dict[str, Any]
    contacts: dict[str, list[Any]]
    medications: dict[str, list[Any]]
    enrolments: dict[str, list[Any]]
    assessments: dict[str, list[Any]]


def load_data(conn: Connection) -> Data:
    """Every row the mapping's sources can read (batch job, role ``system``)."""
    def grouped(table: Any, order: Any, *where: Any) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = defaultdict(list)
        for row in conn.execute(select(table).where(*where).order_by(order)):
            out[row.person_key].append(row)
        return out

    p = Person.__table__
    persons = {r.person_key: r for r in conn.execute(
        select(p.c.person_key, p.c.sex, p.c.birth_date, p.c.municipality_code))}
    return Data(
        units=dict(conn.execute(select(Unit.unit_id, Unit.care_level)).all()),
        persons=persons,
        contacts=grouped(Contact.__table__, Contact.__table__.c.date),
        medications=grouped(Medication.__table__, Medication.__table__.c.start_date),
        enrolments=grouped(Enrolment.__table__, Enrolment.__table__.c.start_date),
        # voided assessments are not reported (care.corrections); corrected ones as they are now
        assessments=grouped(Assessment.__table__, Assessment.__table__.c.date,
                            not_voided(Assessment.__table__.c.row_key)))


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus whole months (the last day of a shorter month when needed)."""
    import calendar

    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})


def established(mapping: Mapping, data: Data, person_key: str
                ) -> dict[str, tuple[dt.date, dt.date]]:
    """Unit → (treatment start, date established in treatment) for one person."""
    rule = mapping.eligibility
    visits: dict[str, list[dt.date]] = defaultdict(list)
    for c in data.contacts.get(person_key, []):
        if (c.dx_group in rule.dx_groups and c.contact_type in rule.established.contact_types
                and data.units.get(c.unit_id) in rule.care_levels):
            visits[c.unit_id].append(c.date)
    out: dict[str, tuple[dt.date, dt.date]] = {}
    need = rule.established.min_visits
    for unit, dates in visits.items():
        dates = sorted(dates)
        for i in range(len(dates) - need + 1):
            if (dates[i + need - 1] - dates[i]).days <= rule.established.within_days:
                out[unit] = (dates[i], dates[i + need - 1])
                break
    for e in data.enrolments.get(person_key, []):
        if e.programme in rule.established.programmes and \
                data.units.get(e.unit_id) in rule.care_levels:
            start, when = out.get(e.unit_id, (e.start_date, e.start_date))
            out[e.unit_id] = (min(start, e.start_date), min(when, e.start_date))
    return out


@dataclass
class _Context:
    person_key: str
    unit_id: str
    trigger: dt.date
    treatment_start: dt.date | None = None
    end_reason: str | None = None
    stay_end: dt.date | None = None


_MISSING = object()
_OK = ("", "")


def _number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _resolve(mapping: Mapping, data: Data, var: Variable, ctx: _Context
             ) -> tuple[Any, tuple[str, str]]:
    """(value, ("", "")) or (_MISSING, (reason in English, reason in Swedish))."""
    person = data.persons.get(ctx.person_key)
    lo = ctx.trigger + dt.timedelta(days=var.window_days[0])
    hi = ctx.trigger + dt.timedelta(days=var.window_days[1])
    src = var.source
    if src == "unit_id":
        return ctx.unit_id, _OK
    if src == "trigger_date":
        return ctx.trigger.isoformat(), _OK
    if src == "treatment_start":
        return (ctx.treatment_start.isoformat(), _OK) if ctx.treatment_start else (
            _MISSING, ("no treatment start", "inget datum för behandlingsstart"))
    if src == "end_reason":
        return (ctx.end_reason, _OK) if ctx.end_reason else (
            _MISSING, ("no end reason recorded", "ingen avslutsorsak registrerad"))
    if src == "stay_end":
        return (ctx.stay_end.isoformat(), _OK) if ctx.stay_end else (
            _MISSING, ("the stay has no discharge date", "vårdtillfället saknar slutdatum"))
    if src.startswith("person."):
        if person is None:
            return _MISSING, ("person not in the store", "personen finns inte i databasen")
        value = {"person.sex": person.sex, "person.birth_year": person.birth_date.year,
                 "person.municipality_code": person.municipality_code}[src]
        return (value, _OK) if value is not None else (
            _MISSING, ("not recorded for the person", "inte registrerat för personen"))
    if src == "dx_group":
        contacts = [c for c in data.contacts.get(ctx.person_key, [])
                    if c.date <= ctx.trigger and c.dx_group in mapping.eligibility.dx_groups]
        at_unit = [c for c in contacts if c.unit_id == ctx.unit_id] or contacts
        if not at_unit:
            return _MISSING, (f"no contact with an F1x diagnosis on or before {ctx.trigger}",
                              f"ingen kontakt med F1x-diagnos till och med {ctx.trigger}")
        return at_unit[-1].dx_group, _OK
    if src == "substance_count":
        groups = {c.dx_group for c in data.contacts.get(ctx.person_key, [])
                  if lo <= c.date <= hi and c.dx_group in mapping.eligibility.dx_groups}
        return len(groups), _OK
    if src == "psych_groups":
        found = sorted({g.strip() for c in data.contacts.get(ctx.person_key, [])
                        if lo <= c.date <= hi and c.psych_groups
                        for g in str(c.psych_groups).replace(";", ",").split(",") if g.strip()})
        return (",".join(found) if found else "none"), _OK
    if src == "medication":
        active = any(any(m.atc.startswith(p) for p in var.atc_prefixes)
                     and m.start_date <= ctx.trigger
                     and (m.end_date is None or m.end_date >= ctx.trigger)
                     for m in data.medications.get(ctx.person_key, []))
        return ("yes" if active else "no"), _OK
    if src == "assessment":
        taken = [a for a in data.assessments.get(ctx.person_key, [])
                 if a.instrument == var.instrument and lo <= a.date <= hi]
        if not taken:
            days = f"{var.window_days[0]}..+{var.window_days[1]}"
            return _MISSING, (f"no {var.instrument} within {days} days of {ctx.trigger}",
                              f"ingen {var.instrument} inom {days} dagar från {ctx.trigger}")
        best = min(taken, key=lambda a: (abs((a.date - ctx.trigger).days), a.date))
        if var.measure == "total":
            value = best.score
        elif str(var.measure).startswith("item_"):
            value = _loads(best.answers).get(var.measure)
        else:
            value = _loads(best.subscores).get(var.measure)
        if value is None:
            return _MISSING, (f"{var.instrument} of {best.date} has no {var.measure}",
                              f"{var.instrument} från {best.date} saknar {var.measure}")
        return _number(value), _OK
    return _MISSING, (var.note or "not captured in Utfall", "registreras inte i Utfall")


def build_form(mapping: Mapping, data: Data, form: Form, ctx: _Context, anchor: str
               ) -> FormRecord:
    """One form with its variables (coded) and its gaps."""
    record = FormRecord(mapping.register_id, form.id, ctx.person_key, ctx.unit_id, anchor,
                        ctx.trigger, {})
    for ident in form.variables:
        var = mapping.variable(ident)
        value, reason = _resolve(mapping, data, var, ctx)
        if value is not _MISSING and var.code_list:
            codes = mapping.code_lists[var.code_list]
            coded = codes.get(str(value))
            if coded is None:
                value, reason = _MISSING, (
                    f"value {value!r} is not in code list {var.code_list}",
                    f"värdet {value!r} finns inte i kodlistan {var.code_list}")
            else:
                value = coded
        if value is _MISSING:
            record.variables[ident] = None
            if var.required:
                record.gaps.append(Gap(form.id, ctx.person_key, ctx.unit_id, ident, *reason))
        else:
            record.variables[ident] = value
    return record


def build_forms(mapping: Mapping, data: Data, as_of: dt.date,
                persons: set[str] | None = None) -> list[FormRecord]:
    """Every form due by ``as_of`` for every eligible person (or those of ``persons``)."""
    out: list[FormRecord] = []
    rule = mapping.eligibility
    for person_key in sorted(data.persons if persons is None else persons & set(data.persons)):
        units = established(mapping, data, person_key)
        for form in mapping.forms:
            if form.trigger == "established":
                for unit, (start, when) in sorted(units.items()):
                    trigger = add_months(when, form.offset_months)
                    if trigger > as_of:
                        continue
                    ctx = _Context(person_key, unit, trigger, treatment_start=start)
                    out.append(build_form(mapping, data, form, ctx, f"est:{when}"))
            elif form.trigger == "enrolment_end":
                for e in data.enrolments.get(person_key, []):
                    if (e.end_date is None or e.end_date > as_of
                            or (e.programme not in rule.established.programmes
                            and e.unit_id not in units)):
                        continue
                    ctx = _Context(person_key, e.unit_id, e.end_date,
                                   end_reason=e.end_reason)
                    out.append(build_form(mapping, data, form, ctx, f"enr:{e.row_key}"))
            elif form.trigger == "inpatient_stay":
                for c in data.contacts.get(person_key, []):
                    if (c.contact_type != "inpatient" or c.date > as_of
                            or c.dx_group not in rule.dx_groups
                            or data.units.get(c.unit_id) not in rule.care_levels):
                        continue
                    ctx = _Context(person_key, c.unit_id, c.date, stay_end=c.end_date)
                    out.append(build_form(mapping, data, form, ctx, f"stay:{c.contact_id}"))
    return out
