"""Phase models as a pure state machine (e.g. LARO's five phases).

``transition(state, to_phase, facts, on_date)`` returns the new state or raises
:class:`TransitionError` with a machine ``code``, Swedish and English messages and
the individual check failures. Facts accumulate: the facts given at a transition are
merged over those recorded before. Derived facts available to conditions:
``days_since_entry.<phase>`` and ``months_since_entry.<phase>`` (complete calendar
months since the phase was first entered) for every phase in the history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from utfall.followup.data import validate_fields
from utfall.followup.models import PhaseModel, Programme, add_months
from utfall.instruments.engine import Problem


@dataclass(frozen=True)
class CheckFailure:
    """One failed entry check or missing/invalid required datum."""

    code: str
    sv: str
    en: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.sv} / {self.en}"


class TransitionError(ValueError):
    """A transition that is not allowed; ``code`` is machine-readable."""

    def __init__(self, code: str, sv: str, en: str,
                 failures: tuple[CheckFailure, ...] = ()) -> None:
        self.code = code
        self.sv = sv
        self.en = en
        self.failures = failures
        details = "".join(f"\n  - {f}" for f in failures)
        super().__init__(f"[{code}] {sv} / {en}{details}")


@dataclass(frozen=True)
class PhaseState:
    """Where an enrolment is in the phase model, and how it got there."""

    programme: str
    phase: str
    entered_on: dt.date
    history: tuple[tuple[str, dt.date], ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (dates as ISO strings; facts are returned as given)."""
        return {
            "programme": self.programme,
            "phase": self.phase,
            "entered_on": self.entered_on.isoformat(),
            "history": [[phase, date.isoformat()] for phase, date in self.history],
            "facts": dict(self.facts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseState:
        """The inverse of :meth:`as_dict`."""
        return cls(
            programme=data["programme"],
            phase=data["phase"],
            entered_on=dt.date.fromisoformat(str(data["entered_on"])),
            history=tuple((p, dt.date.fromisoformat(str(d))) for p, d in data["history"]),
            facts=dict(data.get("facts", {})),
        )

    def first_entry(self, phase_id: str) -> dt.date | None:
        """When ``phase_id`` was first entered, if ever."""
        for phase, date in self.history:
            if phase == phase_id:
                return date
        return None


def _months_between(start: dt.date, end: dt.date) -> int:
    """Complete calendar months from ``start`` to ``end``."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if add_months(start, months) > end:
        months -= 1
    return months


def derived_facts(history: tuple[tuple[str, dt.date], ...], on_date: dt.date) -> dict[str, Any]:
    """``days_since_entry.<phase>`` and ``months_since_entry.<phase>`` at ``on_date``."""
    out: dict[str, Any] = {}
    for phase, date in reversed(history):  # the first entry wins
        out[f"days_since_entry.{phase}"] = (on_date - date).days
        out[f"months_since_entry.{phase}"] = _months_between(date, on_date)
    return out


def _model(programme: Programme) -> PhaseModel:
    if programme.phase_model is None:
        raise TransitionError("no_phase_model",
                              f"programmet {programme.id} har ingen fasmodell",
                              f"programme {programme.id} has no phase model")
    return programme.phase_model


def _problem_to_failure(problem: Problem) -> CheckFailure:
    return CheckFailure(code=problem.code, sv=problem.sv, en=problem.en, field=problem.link_id)


def entry_failures(
    programme: Programme, to_phase: str, facts: Mapping[str, Any],
    history: tuple[tuple[str, dt.date], ...], on_date: dt.date,
) -> list[CheckFailure]:
    """Failed entry checks and missing/invalid required data for entering ``to_phase``."""
    phase = _model(programme).phase(to_phase)
    all_facts = {**facts, **derived_facts(history, on_date), "on_date": on_date}
    failures = [
        _problem_to_failure(p)
        for p in validate_fields(programme, phase.required_data, all_facts)
    ]
    failures += [
        CheckFailure(code=c.code, sv=c.message.sv, en=c.message.en)
        for c in phase.entry_checks if not c.condition.evaluate(all_facts)
    ]
    return failures


def start(programme: Programme, facts: Mapping[str, Any], on_date: dt.date) -> PhaseState:
    """Enter the initial phase (its entry checks apply too)."""
    model = _model(programme)
    failures = entry_failures(programme, model.initial, facts, (), on_date)
    if failures:
        raise TransitionError(
            "entry_check_failed",
            f"kan inte påbörja fasen {model.phase(model.initial).name.sv}",
            f"cannot enter phase {model.phase(model.initial).name.en}",
            tuple(failures))
    return PhaseState(programme=programme.id, phase=model.initial, entered_on=on_date,
                      history=((model.initial, on_date),), facts=dict(facts))


def allowed_transitions(programme: Programme, phase: str) -> tuple[str, ...]:
    """Phases reachable from ``phase`` in one step."""
    return _model(programme).allowed(phase)


def transition(
    state: PhaseState,
    to_phase: str,
    facts: Mapping[str, Any],
    on_date: dt.date,
    programme: Programme | None = None,
) -> PhaseState:
    """Move ``state`` to ``to_phase`` on ``on_date`` if allowed and the entry checks pass.

    ``programme`` defaults to the programme named by the state (default registry).
    """
    if programme is None:
        from utfall.followup.registry import get_programme

        programme = get_programme(state.programme)
    if programme.id != state.programme:
        raise ValueError(f"state of {state.programme}, not {programme.id}")
    model = _model(programme)
    ids = [p.id for p in model.phases]
    if to_phase not in ids:
        raise TransitionError("unknown_phase", f"okänd fas: {to_phase}",
                              f"unknown phase: {to_phase}")
    current = model.phase(state.phase)
    target = model.phase(to_phase)
    if to_phase not in model.allowed(state.phase):
        allowed = ", ".join(model.allowed(state.phase)) or "–"
        raise TransitionError(
            "forbidden_transition",
            f"övergång från {current.name.sv} till {target.name.sv} är inte tillåten "
            f"(tillåtna: {allowed})",
            f"transition from {current.name.en} to {target.name.en} is not allowed "
            f"(allowed: {allowed})")
    if on_date < state.entered_on:
        raise TransitionError(
            "date_before_current_phase",
            f"datumet {on_date} ligger före starten av nuvarande fas ({state.entered_on})",
            f"the date {on_date} is before the start of the current phase ({state.entered_on})")
    merged = {**state.facts, **facts}
    history = (*state.history, (to_phase, on_date))
    failures = entry_failures(programme, to_phase, merged, history, on_date)
    if failures:
        raise TransitionError(
            "entry_check_failed",
            f"villkoren för att gå in i fasen {target.name.sv} är inte uppfyllda",
            f"the conditions for entering phase {target.name.en} are not met",
            tuple(failures))
    return PhaseState(programme=programme.id, phase=to_phase, entered_on=on_date,
                      history=history, facts=merged)
