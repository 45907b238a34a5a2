"""Pydantic models of a follow-up programme (``content/programmes/<id>.yaml``).

A programme has stages (when to follow up, who does it, how, with which
instruments), optional required data fields, optional checks, end reasons and an
optional phase model (e.g. LARO's five phases with allowed transitions and entry
checks). All of it is data; :mod:`utfall.followup.schedule` and
:mod:`utfall.followup.phases` are the only engines.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from utfall.instruments.models import LocalText

Responsible = Literal["region_unit", "municipal_social_services", "person"]
Method = Literal["clinician_interview", "self_report", "social_worker_interview"]
ANCHOR = re.compile(r"^(start|end|stage:[a-z0-9][a-z0-9-]*)$")
ID = r"^[a-z0-9][a-z0-9_-]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus calendar months, clamped at month end (2024-01-31 + 1 → 2024-02-29)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day.day, last))


class Duration(_Model):
    """A calendar duration: months (calendar, clamped at month end) plus days."""

    months: int = 0
    days: int = 0

    def after(self, day: dt.date, times: int = 1) -> dt.date:
        """``day`` plus ``times`` × this duration (months first, then days)."""
        return add_months(day, self.months * times) + dt.timedelta(days=self.days * times)

    def before(self, day: dt.date) -> dt.date:
        """``day`` minus this duration."""
        return add_months(day, -self.months) - dt.timedelta(days=self.days)

    def __str__(self) -> str:
        parts = [f"{self.months} mån/months"] if self.months else []
        if self.days or not parts:
            parts.append(f"{self.days} d")
        return " + ".join(parts)


class Window(_Model):
    """Time window around the due date; both ends inclusive."""

    before: Duration = Field(default_factory=Duration)
    after: Duration = Field(default_factory=Duration)


class Repeat(_Model):
    """Repeat a stage every ``every`` while the person is enrolled."""

    every: Duration
    max_count: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _positive(self) -> Repeat:
        if self.every.months <= 0 and self.every.days <= 0:
            raise ValueError("repeat.every must be positive")
        return self


class Stage(_Model):
    """One follow-up occasion."""

    id: str = Field(pattern=ID)
    title: LocalText
    anchor: str = Field(description="start | end | stage:<earlier stage id>")
    offset: Duration = Field(default_factory=Duration)
    window: Window = Field(default_factory=Window)
    grace: Duration | None = Field(
        default=None, description="Overdue period after the window; then missed"
    )
    responsible: Responsible
    method: Method
    instruments: tuple[str, ...] = ()
    while_enrolled: bool = Field(
        default=False, description="Only while enrolled: dropped if due after the end date"
    )
    repeat: Repeat | None = None

    @model_validator(mode="after")
    def _anchor(self) -> Stage:
        if not ANCHOR.match(self.anchor):
            raise ValueError(f"stage {self.id}: anchor must be start, end or stage:<id>")
        if self.repeat is not None and self.anchor == "end":
            raise ValueError(f"stage {self.id}: a repeated stage cannot be anchored on end")
        return self

    @property
    def anchor_stage(self) -> str | None:
        """The id of the stage this one is anchored on, if any."""
        return self.anchor.removeprefix("stage:") if self.anchor.startswith("stage:") else None


ConditionOp = Literal[
    "=", "!=", ">", "<", ">=", "<=", "in", "not_in", "present", "absent", "true", "false"
]


class Condition(_Model):
    """A rule on facts: ``{fact, op, value}``, ``{all: […]}``, ``{any: […]}`` or ``{not: …}``.

    A missing (or blank) fact makes ``=``, ``<``, ``>``, ``<=``, ``>=``, ``in``, ``present``,
    ``true`` and ``false`` false, and ``!=``, ``not_in`` and ``absent`` true.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    fact: str | None = None
    op: ConditionOp | None = None
    value: Any = None
    all_: tuple[Condition, ...] | None = Field(default=None, alias="all")
    any_: tuple[Condition, ...] | None = Field(default=None, alias="any")
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        forms = [self.fact is not None, self.all_ is not None, self.any_ is not None,
                 self.not_ is not None]
        if sum(forms) != 1:
            raise ValueError("a condition has exactly one of fact/op, all, any, not")
        if self.fact is not None:
            if self.op is None:
                raise ValueError(f"condition on {self.fact}: op is required")
            if self.op not in ("present", "absent", "true", "false") and self.value is None:
                raise ValueError(f"condition on {self.fact}: op {self.op} needs value")
        return self

    def evaluate(self, facts: dict[str, Any]) -> bool:
        """True if the facts meet the condition."""
        if self.all_ is not None:
            return all(c.evaluate(facts) for c in self.all_)
        if self.any_ is not None:
            return any(c.evaluate(facts) for c in self.any_)
        if self.not_ is not None:
            return not self.not_.evaluate(facts)
        value = facts.get(self.fact or "")
        present = value is not None and not (isinstance(value, str) and not value.strip())
        op = self.op
        if op == "present":
            return present
        if op == "absent":
            return not present
        if op == "true":
            return value is True
        if op == "false":
            return value is False
        if not present:
            return op in ("!=", "not_in")
        try:
            if op == "=":
                return bool(value == self.value)
            if op == "!=":
                return bool(value != self.value)
            if op == "in":
                return value in self.value
            if op == "not_in":
                return value not in self.value
            if op == ">":
                return bool(value > self.value)
            if op == "<":
                return bool(value < self.value)
            if op == ">=":
                return bool(value >= self.value)
            return bool(value <= self.value)
        except TypeError:
            return False


class Check(_Model):
    """A named rule with a machine code and a Swedish/English message shown when it fails."""

    id: str = Field(pattern=ID)
    code: str = Field(description="Machine code, e.g. laro.age_below_20")
    message: LocalText
    condition: Condition


class Option(_Model):
    """One allowed value of a choice field."""

    value: str
    label: LocalText


class DataField(_Model):
    """A data field a programme or phase requires (e.g. ROP's SIP consent)."""

    id: str = Field(pattern=ID)
    title: LocalText
    type: Literal["boolean", "date", "integer", "text", "choice"]
    options: tuple[Option, ...] = ()
    min: int | None = None
    max: int | None = None
    help: LocalText | None = None
    required_when: Condition | None = Field(
        default=None, description="Required only when this condition holds"
    )

    @model_validator(mode="after")
    def _choice(self) -> DataField:
        if (self.type == "choice") != bool(self.options):
            raise ValueError(f"field {self.id}: options are needed exactly for type choice")
        return self


class EndReason(_Model):
    """Why an enrolment ended; ``requires`` lists data fields that must then be recorded."""

    id: str = Field(pattern=ID)
    label: LocalText
    planned: bool = False
    requires: tuple[str, ...] = ()


class Phase(_Model):
    """One phase of a phase model."""

    id: str = Field(pattern=ID)
    name: LocalText
    description: LocalText | None = None
    required_data: tuple[str, ...] = ()
    entry_checks: tuple[Check, ...] = ()
    terminal: bool = False


class PhaseModel(_Model):
    """Phases, the initial phase and the allowed transitions (phase → phases)."""

    initial: str
    phases: tuple[Phase, ...] = Field(min_length=1)
    transitions: dict[str, tuple[str, ...]]

    @model_validator(mode="after")
    def _consistent(self) -> PhaseModel:
        ids = [p.id for p in self.phases]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate phase id")
        if self.initial not in ids:
            raise ValueError(f"initial phase {self.initial!r} is not a phase")
        for source, targets in self.transitions.items():
            for phase_id in (source, *targets):
                if phase_id not in ids:
                    raise ValueError(f"transition {source} → {targets}: unknown phase {phase_id!r}")
            if source in targets:
                raise ValueError(f"phase {source} cannot transition to itself")
        for phase in self.phases:
            if phase.terminal and self.transitions.get(phase.id):
                raise ValueError(f"terminal phase {phase.id} has outgoing transitions")
        return self

    def phase(self, phase_id: str) -> Phase:
        """The phase with this id (KeyError if unknown)."""
        for p in self.phases:
            if p.id == phase_id:
                return p
        raise KeyError(phase_id)

    def allowed(self, phase_id: str) -> tuple[str, ...]:
        """Phases reachable from ``phase_id`` in one step."""
        return self.transitions.get(phase_id, ())


class Programme(_Model):
    """A whole programme file."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: str
    title: LocalText
    description: LocalText | None = None
    references: tuple[str, ...] = ()
    override: bool = False
    grace: Duration = Field(
        default_factory=lambda: Duration(months=3),
        description="Default overdue period after a window before a stage counts as missed",
    )
    stages: tuple[Stage, ...] = ()
    data_fields: tuple[DataField, ...] = ()
    required_data: tuple[str, ...] = Field(default=(), description="Fields required at enrolment")
    checks: tuple[Check, ...] = Field(default=(), description="Rules on the enrolment data")
    end_reasons: tuple[EndReason, ...] = ()
    phase_model: PhaseModel | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Programme:
        seen: set[str] = set()
        for stage in self.stages:
            if stage.id in seen:
                raise ValueError(f"duplicate stage id {stage.id}")
            ref = stage.anchor_stage
            if ref is not None and ref not in seen:
                raise ValueError(
                    f"stage {stage.id}: anchor {stage.anchor} must be an earlier stage"
                )
            if ref is not None and self.stage(ref).repeat is not None:
                raise ValueError(f"stage {stage.id}: cannot anchor on repeated stage {ref}")
            seen.add(stage.id)
        fields = {f.id for f in self.data_fields}
        if len(fields) != len(self.data_fields):
            raise ValueError("duplicate data field id")
        refs = list(self.required_data)
        refs += [r for e in self.end_reasons for r in e.requires]
        if self.phase_model:
            refs += [r for p in self.phase_model.phases for r in p.required_data]
        for ref in refs:
            if ref not in fields:
                raise ValueError(f"required data {ref!r} is not in data_fields")
        reasons = [e.id for e in self.end_reasons]
        if len(set(reasons)) != len(reasons):
            raise ValueError("duplicate end reason")
        return self

    def stage(self, stage_id: str) -> Stage:
        """The stage with this id (KeyError if unknown)."""
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise KeyError(stage_id)

    def field(self, field_id: str) -> DataField:
        """The data field with this id (KeyError if unknown)."""
        for f in self.data_fields:
            if f.id == field_id:
                return f
        raise KeyError(field_id)

    def end_reason(self, reason_id: str) -> EndReason:
        """The end reason with this id (KeyError if unknown)."""
        for e in self.end_reasons:
            if e.id == reason_id:
                return e
        raise KeyError(reason_id)

    def instrument_ids(self) -> set[str]:
        """Every instrument id used by a stage."""
        return {i for s in self.stages for i in s.instruments}
