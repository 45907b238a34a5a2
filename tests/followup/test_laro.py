"""The LARO phase model: every allowed and forbidden transition, entry checks."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from tests.followup.helpers import PROGRAMMES
from utfall.followup import PhaseState, TransitionError, allowed_transitions, start, transition

LARO = PROGRAMMES.get("laro")
PHASES = ["assessment", "treatment-start", "stabilisation", "rehabilitation", "ending"]
ALLOWED = {
    ("assessment", "treatment-start"), ("assessment", "ending"),
    ("treatment-start", "stabilisation"), ("treatment-start", "ending"),
    ("stabilisation", "rehabilitation"), ("stabilisation", "ending"),
    ("rehabilitation", "stabilisation"), ("rehabilitation", "ending"),
}
D0 = dt.date(2024, 1, 10)
ELIGIBLE: dict[str, Any] = {
    "age": 34,
    "opioid_dependence_months": 60,
    "dependence_assessed_by_physician": True,
    "responsible_physician_specialist": True,
    "concurrent_dependence_clear_risk": False,
    "medication": "buprenorphine_naloxone",
    "treatment_plan": True,
    "supervised_intake": True,
    "care_plan_goals": "Stabil dosering, eget boende",
}


def state_in(phase: str, facts: dict[str, Any] | None = None) -> PhaseState:
    """A state in ``phase`` whose history started treatment on D0 + 14 days."""
    path = {"assessment": ["assessment"],
            "treatment-start": ["assessment", "treatment-start"],
            "stabilisation": ["assessment", "treatment-start", "stabilisation"],
            "rehabilitation": ["assessment", "treatment-start", "stabilisation",
                               "rehabilitation"],
            "ending": ["assessment", "ending"]}[phase]
    history = tuple((p, D0 + dt.timedelta(days=14 * i)) for i, p in enumerate(path))
    return PhaseState(programme="laro", phase=phase, entered_on=history[-1][1],
                      history=history, facts=dict(ELIGIBLE if facts is None else facts))


def test_phase_ids_and_swedish_names() -> None:
    model = LARO.phase_model
    assert model is not None
    assert [p.id for p in model.phases] == PHASES
    assert model.phase("stabilisation").name.sv == "Stabilisering"
    assert model.phase("assessment").name.sv.startswith("Utredning")


@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED))
def test_allowed_transition(source: str, target: str) -> None:
    on = dt.date(2025, 6, 1)
    facts = {"end_reason": "completed"} if target == "ending" else {}
    new = transition(state_in(source), target, facts, on, LARO)
    assert (new.phase, new.entered_on) == (target, on)
    assert new.history[-1] == (target, on)
    assert target in allowed_transitions(LARO, source)


FORBIDDEN = sorted(set(itertools.product(PHASES, PHASES)) - ALLOWED)


@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
def test_forbidden_transition(source: str, target: str) -> None:
    with pytest.raises(TransitionError) as info:
        transition(state_in(source), target, {"end_reason": "completed"},
                   dt.date(2025, 6, 1), LARO)
    assert info.value.code == "forbidden_transition"
    assert "inte tillåten" in info.value.sv and "not allowed" in info.value.en


def test_counts() -> None:
    assert len(ALLOWED) + len(FORBIDDEN) == 25


def test_start_enters_assessment() -> None:
    state = start(LARO, {}, D0)
    assert (state.phase, state.history) == ("assessment", (("assessment", D0),))


def test_full_course() -> None:
    state = start(LARO, {}, D0)
    state = transition(state, "treatment-start", ELIGIBLE, dt.date(2024, 2, 1), LARO)
    state = transition(state, "stabilisation", {}, dt.date(2024, 3, 1), LARO)
    state = transition(state, "rehabilitation", {"self_administration": True},
                       dt.date(2024, 5, 1), LARO)
    state = transition(state, "stabilisation", {}, dt.date(2024, 9, 1), LARO)
    state = transition(state, "rehabilitation", {}, dt.date(2024, 12, 1), LARO)
    state = transition(state, "ending", {"end_reason": "completed"}, dt.date(2025, 6, 1), LARO)
    assert [p for p, _ in state.history] == [
        "assessment", "treatment-start", "stabilisation", "rehabilitation", "stabilisation",
        "rehabilitation", "ending"]
    with pytest.raises(TransitionError, match="forbidden_transition"):
        transition(state, "stabilisation", {}, dt.date(2025, 7, 1), LARO)


def failure_codes(facts: dict[str, Any], to: str = "treatment-start",
                  phase: str = "assessment", on: dt.date = dt.date(2024, 2, 1)) -> set[str]:
    with pytest.raises(TransitionError) as info:
        transition(state_in(phase, {}), to, facts, on, LARO)
    assert info.value.code == "entry_check_failed"
    for failure in info.value.failures:
        assert failure.sv and failure.en
    return {f.code for f in info.value.failures}


def test_age_below_20_without_special_reason() -> None:
    codes = failure_codes({**ELIGIBLE, "age": 19})
    assert codes == {"laro.age_below_20_without_special_reason"}


def test_age_below_20_with_special_reason_passes() -> None:
    state = transition(state_in("assessment", {}), "treatment-start",
                       {**ELIGIBLE, "age": 18, "special_reason": "Svår opioidberoende, "
                        "tidigare behandlingsförsök utan effekt"}, dt.date(2024, 2, 1), LARO)
    assert state.phase == "treatment-start"


def test_age_exactly_20_passes() -> None:
    state = transition(state_in("assessment", {}), "treatment-start", {**ELIGIBLE, "age": 20},
                       dt.date(2024, 2, 1), LARO)
    assert state.phase == "treatment-start"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"opioid_dependence_months": 11}, "laro.opioid_dependence_under_1_year"),
        ({"dependence_assessed_by_physician": False}, "laro.opioid_dependence_under_1_year"),
        ({"responsible_physician_specialist": False}, "laro.physician_not_specialist"),
        ({"concurrent_dependence_clear_risk": True}, "laro.concurrent_dependence_clear_risk"),
        ({"treatment_plan": False}, "laro.no_treatment_plan"),
        ({"supervised_intake": False}, "laro.intake_not_supervised"),
        ({"self_administration": True}, "laro.self_administration_within_3_months"),
    ],
)
def test_entry_check_failures(change: dict[str, Any], code: str) -> None:
    assert failure_codes({**ELIGIBLE, **change}) == {code}


def test_missing_required_data_is_named() -> None:
    facts = {k: v for k, v in ELIGIBLE.items() if k not in ("treatment_plan", "medication")}
    with pytest.raises(TransitionError) as info:
        transition(state_in("assessment", {}), "treatment-start", facts,
                   dt.date(2024, 2, 1), LARO)
    missing = {f.field for f in info.value.failures if f.code == "required_data_missing"}
    assert missing == {"treatment_plan", "medication"}
    assert "Behandlingsplan" in str(info.value) and "Treatment plan" in str(info.value)


def test_invalid_required_data() -> None:
    codes = failure_codes({**ELIGIBLE, "medication": "heroin"})
    assert codes == {"invalid_data"}


def test_self_administration_after_three_calendar_months() -> None:
    # treatment started D0 + 14 days = 2024-01-24
    base = state_in("treatment-start")
    assert base.first_entry("treatment-start") == dt.date(2024, 1, 24)
    with pytest.raises(TransitionError) as info:
        transition(base, "stabilisation", {"self_administration": True},
                   dt.date(2024, 4, 23), LARO)
    assert {f.code for f in info.value.failures} == {"laro.self_administration_within_3_months"}
    ok = transition(base, "stabilisation", {"self_administration": True},
                    dt.date(2024, 4, 24), LARO)
    assert ok.facts["self_administration"] is True


def test_involuntary_discharge_requires_medical_ground() -> None:
    with pytest.raises(TransitionError) as info:
        transition(state_in("rehabilitation"), "ending",
                   {"end_reason": "involuntary_discharge"}, dt.date(2025, 1, 1), LARO)
    codes = {f.code for f in info.value.failures}
    assert codes == {"required_data_missing",
                     "laro.involuntary_discharge_without_medical_ground"}
    assert "medicinska skäl" in str(info.value)
    ok = transition(state_in("rehabilitation"), "ending",
                    {"end_reason": "involuntary_discharge",
                     "medical_ground": "Upprepade överdoser med livshotande sidomissbruk"},
                    dt.date(2025, 1, 1), LARO)
    assert ok.phase == "ending"


@pytest.mark.parametrize(
    "reason", ["completed", "dropout", "transferred", "deceased", "other"])
def test_end_reasons(reason: str) -> None:
    state = transition(state_in("stabilisation"), "ending", {"end_reason": reason},
                       dt.date(2025, 1, 1), LARO)
    assert state.facts["end_reason"] == reason


def test_ending_needs_a_known_reason() -> None:
    later = dt.date(2025, 1, 1)
    assert failure_codes({}, to="ending", phase="stabilisation",
                         on=later) == {"required_data_missing"}
    assert failure_codes({"end_reason": "bored"}, to="ending", phase="stabilisation",
                         on=later) == {"invalid_data"}


def test_date_before_current_phase() -> None:
    with pytest.raises(TransitionError) as info:
        transition(state_in("stabilisation"), "rehabilitation", {}, dt.date(2023, 1, 1), LARO)
    assert info.value.code == "date_before_current_phase"


def test_unknown_phase() -> None:
    with pytest.raises(TransitionError) as info:
        transition(state_in("stabilisation"), "detox", {}, dt.date(2025, 1, 1), LARO)
    assert info.value.code == "unknown_phase"


def test_programme_without_phase_model() -> None:
    vip = PROGRAMMES.get("vip-beroende")
    with pytest.raises(TransitionError) as info:
        start(vip, {}, D0)
    assert info.value.code == "no_phase_model"


def test_default_registry_lookup() -> None:
    new = transition(state_in("stabilisation"), "rehabilitation", {}, dt.date(2025, 1, 1))
    assert new.phase == "rehabilitation"


def test_state_round_trip() -> None:
    state = transition(state_in("assessment", {}), "treatment-start", ELIGIBLE,
                       dt.date(2024, 2, 1), LARO)
    data = state.as_dict()
    assert data["history"][-1] == ["treatment-start", "2024-02-01"]
    assert PhaseState.from_dict(data) == state
