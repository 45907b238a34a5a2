"""Phase changes and discharge as use cases: 409 with the allowed set, field issues,
audit, access, and the post-discharge stage on the municipal unit's work list."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, select

from utfall.access.audit import Actor
from utfall.access.policy import AccessDenied, PersonNotFound
from utfall.care import CareError, due_list, enrol, register_person
from utfall.care.phases import PhaseRefused, discharge, phase_form, set_phase
from utfall.store.models import AuditEvent

from .conftest import CLINICIAN, PNR_MAN, SOCIAL, laro_facts

TODAY = dt.date(2025, 3, 1)
START = dt.date(2024, 1, 10)


def _enrolled(engine: Engine, **kw: Any) -> tuple[str, str]:
    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_MAN)
        enrolment = enrol(conn, CLINICIAN, key, "laro", "R-LARO", START, facts=laro_facts(),
                          **kw)
    return key, enrolment


def _events(engine: Engine, what: str) -> list[Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.__table__)).all()
    return [r for r in rows if (r.detail or {}).get("what") == what]


def test_each_phase_then_discharge_schedules_the_municipal_follow_up(engine: Engine) -> None:
    _key, enrolment = _enrolled(engine, municipal_unit_id=None)
    with engine.begin() as conn:
        view = set_phase(conn, CLINICIAN, enrolment, "treatment-start",
                         on_date=dt.date(2024, 2, 1), today=TODAY)
        assert view.phase == "treatment-start" and view.phase_name.sv == "Behandlingsstart"
        assert [a.id for a in view.allowed] == ["stabilisation", "ending"]
        view = set_phase(conn, CLINICIAN, enrolment, "stabilisation", on_date=dt.date(2024, 5, 2),
                         facts={"care_plan_goals": "Stabil dos"}, today=TODAY)
        view = set_phase(conn, CLINICIAN, enrolment, "rehabilitation",
                         on_date=dt.date(2024, 8, 1), today=TODAY)
        assert [h["phase"] for h in view.history] == [
            "assessment", "treatment-start", "stabilisation", "rehabilitation"]
        view = discharge(conn, CLINICIAN, enrolment, on_date=dt.date(2025, 2, 1),
                         end_reason="completed", municipal_unit_id="K-SOC", today=TODAY)
    assert view.end_date == dt.date(2025, 2, 1) and view.phase == "ending"
    assert view.end_reason_label is not None and view.end_reason_label.sv == "Planerat avslut"
    post = [s for s in view.pending if s.stage_id == "post-discharge-6"]
    assert post and post[0].unit_id == "K-SOC" and post[0].due_date == dt.date(2025, 8, 1)
    assert view.allowed == []
    # the municipality sees the follow-up on its work list from the discharge on
    with engine.begin() as conn:
        items = due_list(conn, SOCIAL, unit_id="K-SOC", today=TODAY)
    assert [(i.stage_id, i.status, i.due_date) for i in items] == [
        ("post-discharge-6", "upcoming", dt.date(2025, 8, 1))]
    # every change is audited as a change of the person's data
    phases = _events(engine, "phase")
    assert [e.detail["to_phase"] for e in phases] == [
        "treatment-start", "stabilisation", "rehabilitation"]
    assert all(e.action == "change" and e.person_key for e in phases)
    assert _events(engine, "end_enrolment")[0].detail["end_reason"] == "completed"
    assert _events(engine, "stage_owner")[0].detail["unit_id"] == "K-SOC"


def test_forbidden_transition_names_the_allowed_set(engine: Engine) -> None:
    _key, enrolment = _enrolled(engine)
    with engine.begin() as conn, pytest.raises(PhaseRefused) as refused:
        set_phase(conn, CLINICIAN, enrolment, "rehabilitation", on_date=START, today=TODAY)
    assert refused.value.code == "forbidden_transition"
    assert [a.id for a in refused.value.allowed] == ["treatment-start", "ending"]
    assert "Behandlingsstart" in refused.value.sv and "Utredning" in refused.value.sv
    assert _events(engine, "phase") == []


def test_entry_checks_and_bad_input_are_field_issues(engine: Engine) -> None:
    _key, enrolment = _enrolled(engine)
    with engine.begin() as conn:
        with pytest.raises(CareError) as checks:
            set_phase(conn, CLINICIAN, enrolment, "treatment-start", on_date=dt.date(2024, 2, 1),
                      facts={"opioid_dependence_months": 6}, today=TODAY)
        assert checks.value.code == "entry_check_failed"
        assert "laro.opioid_dependence_under_1_year" in {i.code for i in checks.value.issues}
        with pytest.raises(CareError) as typed:
            set_phase(conn, CLINICIAN, enrolment, "treatment-start", on_date=dt.date(2024, 2, 1),
                      facts={"opioid_dependence_months": "many", "colour": "red"}, today=TODAY)
        assert {i.where for i in typed.value.issues} == {"opioid_dependence_months",
                                                         "facts.colour"}
        with pytest.raises(CareError) as future:
            set_phase(conn, CLINICIAN, enrolment, "treatment-start",
                      on_date=TODAY + dt.timedelta(days=1), today=TODAY)
        assert future.value.issues[0].where == "date"
        with pytest.raises(CareError) as unknown:
            set_phase(conn, CLINICIAN, enrolment, "flying", on_date=START, today=TODAY)
        assert unknown.value.issues[0].where == "phase" and not isinstance(unknown.value,
                                                                            PhaseRefused)


def test_involuntary_discharge_needs_medical_grounds(engine: Engine) -> None:
    _key, enrolment = _enrolled(engine)
    with engine.begin() as conn:
        with pytest.raises(CareError) as missing:
            discharge(conn, CLINICIAN, enrolment, on_date=dt.date(2024, 3, 1),
                      end_reason="involuntary_discharge", today=TODAY)
        assert "medical_ground" in {i.where for i in missing.value.issues}
        view = discharge(conn, CLINICIAN, enrolment, on_date=dt.date(2024, 3, 1),
                         end_reason="involuntary_discharge",
                         facts={"medical_ground": "Påtaglig medicinsk risk vid sidomissbruk"},
                         today=TODAY)
        assert view.end_reason == "involuntary_discharge"
        with pytest.raises(PhaseRefused) as again:
            discharge(conn, CLINICIAN, enrolment, on_date=dt.date(2024, 3, 2),
                      end_reason="completed", today=TODAY)
        assert again.value.code == "enrolment_ended" and again.value.allowed == []


def test_access_other_unit_other_principal_and_form(engine: Engine) -> None:
    _key, enrolment = _enrolled(engine)
    with engine.begin() as conn:
        with pytest.raises(PersonNotFound):  # no relation at the other unit
            set_phase(conn, Actor("dr.b", "clinician", "R-BER"), enrolment, "treatment-start",
                      on_date=dt.date(2024, 2, 1), today=TODAY)
        with pytest.raises(PersonNotFound):  # the municipality has no relation either
            discharge(conn, SOCIAL, enrolment, on_date=dt.date(2024, 2, 1),
                      end_reason="completed", today=TODAY)
        with pytest.raises(AccessDenied):  # managers read but do not record
            set_phase(conn, Actor("boss", "unit_manager", "R-LARO"), enrolment,
                      "treatment-start", on_date=dt.date(2024, 2, 1), today=TODAY)
        form = phase_form(conn, CLINICIAN, enrolment, "treatment-start")
    ids = [f.id for f in form.fields]
    assert ids[:3] == ["age", "special_reason", "opioid_dependence_months"]
    assert "supervised_intake" in ids and "end_reason" not in ids
    assert form.facts["opioid_dependence_months"] == 36
    assert form.check_fields["laro.age_below_20_without_special_reason"] == "age"
    assert form.municipal_stages == ["post-discharge-6"]
    assert _events(engine, "phase_form")


def test_imported_enrolment_without_phase_starts_from_the_initial_phase(engine: Engine) -> None:
    from utfall.care.phases import enrolment_view
    from utfall.store.models import Enrolment

    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_MAN)
        conn.execute(Enrolment.__table__.insert().values(
            row_key="imp-laro", person_key=key, unit_id="R-LARO", programme="laro",
            start_date=START, phase=None, details={"source": "import"}))
        view = enrolment_view(conn, "imp-laro", TODAY)
        assert view.phase is None and [a.id for a in view.allowed] == ["treatment-start",
                                                                       "ending"]
        view = set_phase(conn, CLINICIAN, "imp-laro", "treatment-start",
                         on_date=dt.date(2024, 2, 1), facts=laro_facts(age=44), today=TODAY)
    assert view.phase == "treatment-start"
    assert [h["phase"] for h in view.history] == ["treatment-start"]
