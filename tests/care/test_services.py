"""Round trip of the care services: register, enrol, record, due list, timeline."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine, select

from utfall.access.audit import Actor, verify_chain
from utfall.access.policy import AccessDenied
from utfall.care import (
    CareError,
    change_phase,
    due_list,
    end_enrolment,
    enrol,
    find_person,
    phase_history,
    record_assessment,
    register_person,
    timeline,
    timeline_chart_svg,
)
from utfall.store.canonical import canonical_tables
from utfall.store.models import AuditEvent, Enrolment, Person
from utfall.store.models_access import Consent

from .conftest import (
    AUDIT_ANSWERS,
    CLINICIAN,
    LIFE,
    PNR_MAN,
    PNR_WOMAN,
    PNR_YOUNG,
    SOCIAL,
    START,
    SYSTEM,
    laro_facts,
    seed,
)


def give_consent(conn, person_key: str, categories: list[str]) -> None:
    """The person's consent that the region shares ``categories`` with the municipality."""
    conn.execute(Consent.__table__.insert().values(
        person_key=person_key, from_organisation_id=1, to_organisation_id=2,
        categories=categories, valid_from=dt.date(2025, 1, 1), form="written",
        recorded_by="dr.a", recorded_unit_id="R-LARO",
        recorded_at=dt.datetime(2025, 1, 15, tzinfo=dt.UTC)))


def round_trip(engine: Engine) -> None:
    """Enrol + record + due + timeline; shared by the SQLite and PostgreSQL tests."""
    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_WOMAN, municipality_code="0180")
        assert register_person(conn, CLINICIAN, PNR_WOMAN) == key  # idempotent
        assert find_person(conn, CLINICIAN, PNR_WOMAN[2:]) == key  # 10 digits works too
        assert find_person(conn, CLINICIAN, PNR_MAN) is None
        enrolment = enrol(conn, CLINICIAN, key, "vip-beroende", "R-LARO", START,
                          responsible_worker="dr.a", municipal_unit_id="K-SOC")
        audit_id = record_assessment(conn, CLINICIAN, key, "audit", AUDIT_ANSWERS,
                                     stage="intake", unit_id="R-LARO", on_date=START)
        record_assessment(conn, CLINICIAN, key, "life-situation", LIFE, stage="intake",
                          enrolment_id=enrolment, unit_id="R-LARO",
                          on_date=START + dt.timedelta(days=2))
        later = dict(LIFE, item_1=2, item_17=15, item_18=14, item_19=7)
        record_assessment(conn, CLINICIAN, key, "life-situation", later, stage="month-6",
                          enrolment_id=enrolment, unit_id="R-LARO",
                          on_date=dt.date(2025, 7, 20))
        record_assessment(conn, CLINICIAN, key, "audit", dict(AUDIT_ANSWERS, item_1=0),
                          stage="month-6", unit_id="R-LARO", on_date=dt.date(2025, 7, 20))
    with engine.begin() as conn:
        row = conn.execute(select(Person.__table__).where(Person.person_key == key)).one()
        assert PNR_WOMAN.encode() not in row.pnr_encrypted
        # intake done in window, month-6 done in window, month-12 due
        items = due_list(conn, CLINICIAN, today=dt.date(2026, 1, 20), lookback_days=None)
        by_stage = {i.stage_id: i for i in items}
        assert by_stage["intake"].status == "done_in_window"
        assert by_stage["intake"].instruments_done == ["audit", "life-situation"]
        assert by_stage["month-6"].status == "done_in_window"
        assert by_stage["month-12"].status == "due"
        assert by_stage["month-12"].person == "19950615-****"
        assert by_stage["month-12"].worker == "dr.a"
        assert all(i.unit_id == "R-LARO" for i in items)
        # by default stages settled more than a year ago drop off the list
        recent = due_list(conn, CLINICIAN, today=dt.date(2026, 1, 20))
        assert [i.stage_id for i in recent] == ["month-12", "month-6"]
        assert due_list(conn, CLINICIAN, today=dt.date(2026, 1, 20), worker="someone") == []
        assert due_list(conn, CLINICIAN, today=dt.date(2026, 1, 20),
                        principal="municipality") == []
        end_enrolment(conn, CLINICIAN, enrolment, end_date=dt.date(2026, 1, 25),
                      reason="completed")
        # social services meet the person and record a screening of their own
        record_assessment(conn, SOCIAL, key, "audit-c", {"item_1": 1, "item_2": 0, "item_3": 0},
                          unit_id="K-SOC", on_date=dt.date(2026, 3, 2))
        # after discharge: the municipality's list has the post-discharge stage
        municipal = due_list(conn, SOCIAL, today=dt.date(2026, 7, 10))
        assert [(i.stage_id, i.status, i.principal_type) for i in municipal] == [
            ("post-discharge-6", "due", "municipality")]
        assert due_list(conn, SYSTEM, unit_id="K-SOC", principal="municipality",
                        today=dt.date(2026, 7, 10))[0].unit_name == "Socialtjänsten vuxen"
        own = timeline(conn, SOCIAL, key)  # no consent: only the municipality's own entries
        assert [a.instrument for a in own.assessments] == ["audit-c"]
        assert own.enrolments == [] and own.goals == [] and own.hidden == 5
        assert own.assessments[0].principal_type == "municipality"
        tl = timeline(conn, CLINICIAN, key)
        assert [a.instrument for a in tl.assessments] == [
            "audit", "life-situation", "audit", "life-situation"]  # not the municipality's
        assert tl.hidden == 1
        assert tl.assessments[0].score == 10 and tl.assessments[0].band
        assert tl.assessments[0].band_label is not None
        assert tl.assessments[0].principal_type == "region"
        assert tl.enrolments[0].end_reason == "completed"
        assert [g.text for g in tl.goals] == ["Få ett eget boende"] * 2
        assert [g.attainment for g in tl.goals] == [3, 7]
        measures = {(p.measure, p.date) for p in tl.profile}
        assert ("quality_of_life", dt.date(2025, 7, 20)) in measures
        assert ("total", START) in measures
        svg = timeline_chart_svg(tl, "sv")
        assert svg.startswith("<svg") and "Livskvalitet" in svg
        assert "Quality of life" in timeline_chart_svg(tl, "en")
    tables = canonical_tables(engine)
    captured = tables["assessment"].to_pylist()
    assert len(captured) == 5
    first = next(r for r in captured if r["instrument"] == "audit" and r["stage"] == "intake")
    assert first["unit_id"] == "R-LARO" and first["score"] == 10 and first["band"]
    life = next(r for r in captured if r["instrument"] == "life-situation")
    assert json.loads(life["subscores"])["quality_of_life"] in (8, 14)
    enrolments = tables["enrolment"].to_pylist()
    assert enrolments[0]["enrolment_id"] == enrolment
    assert enrolments[0]["end_reason"] == "completed"
    assert audit_id


def test_round_trip_sqlite(engine: Engine) -> None:
    round_trip(engine)
    with engine.connect() as conn:
        events = list(conn.execute(select(AuditEvent.__table__).order_by(AuditEvent.id)))
    assert not verify_chain(events)
    actions = {(e.action, e.detail.get("what")) for e in events}
    assert {("create", "person"), ("create", "enrolment"), ("create", "assessment"),
            ("read", "due_list"), ("read", "timeline"), ("change", "end_enrolment"),
            ("read", "person_lookup")} <= actions
    text = " ".join(json.dumps(e.detail) + e.actor for e in events)
    for pnr in (PNR_WOMAN, PNR_MAN, PNR_WOMAN[2:], PNR_WOMAN[:8] + "-" + PNR_WOMAN[8:]):
        assert pnr not in text
    assert all(e.person_key for e in events if e.action != "read" or
               e.detail.get("found") is not False)


@pytest.mark.postgres
def test_round_trip_postgres(settings, pg_url: str) -> None:
    from utfall.store.db import get_engine

    engine = get_engine(pg_url)
    seed(engine)
    round_trip(engine)


def test_laro_entry_check_failure_message(engine: Engine) -> None:
    with engine.begin() as conn:
        young = register_person(conn, CLINICIAN, PNR_YOUNG)
        enrolment = enrol(conn, CLINICIAN, young, "laro", "R-LARO", dt.date(2024, 3, 1),
                          facts=laro_facts(opioid_dependence_months=6))
    with engine.begin() as conn, pytest.raises(CareError) as caught:
        change_phase(conn, CLINICIAN, enrolment, "treatment-start", on_date=dt.date(2024, 3, 10))
    err = caught.value
    assert err.code == "entry_check_failed"
    codes = {i.code for i in err.issues}
    assert "laro.age_below_20_without_special_reason" in codes
    assert "laro.opioid_dependence_under_1_year" in codes
    text = str(err)
    assert "yngre än 20 år" in text and "younger than 20" in text
    with engine.begin() as conn:  # nothing changed
        assert conn.execute(select(Enrolment.phase)).scalar_one() == "assessment"
        # with special reasons and a long enough dependence the transition works
        entry = change_phase(conn, CLINICIAN, enrolment, "treatment-start",
                             on_date=dt.date(2024, 3, 10),
                             facts={"special_reason": "Särskilda skäl dokumenterade",
                                    "opioid_dependence_months": 14},
                             reason="Bedömningsmöte med socialtjänsten")
        assert entry.phase == "treatment-start" and entry.from_phase == "assessment"


def test_laro_phase_history_and_involuntary_discharge(engine: Engine) -> None:
    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_MAN)
        enrolment = enrol(conn, CLINICIAN, key, "laro", "R-LARO", dt.date(2024, 1, 10),
                          facts=laro_facts(), reason="Remiss")
        change_phase(conn, CLINICIAN, enrolment, "treatment-start", on_date=dt.date(2024, 2, 1))
        with pytest.raises(CareError) as early:
            change_phase(conn, CLINICIAN, enrolment, "stabilisation",
                         on_date=dt.date(2024, 3, 1),
                         facts={"care_plan_goals": "Stabil dos", "self_administration": True})
        assert "laro.self_administration_within_3_months" in {i.code for i in early.value.issues}
        change_phase(conn, CLINICIAN, enrolment, "stabilisation", on_date=dt.date(2024, 5, 2),
                     facts={"care_plan_goals": "Stabil dos", "self_administration": True},
                     reason="Stabil")
        with pytest.raises(CareError) as forbidden:
            change_phase(conn, CLINICIAN, enrolment, "assessment", on_date=dt.date(2024, 6, 1))
        assert forbidden.value.code == "forbidden_transition"
        with pytest.raises(CareError) as no_ground:
            end_enrolment(conn, CLINICIAN, enrolment, end_date=dt.date(2024, 9, 1),
                          reason="involuntary_discharge")
        assert "medical_ground" in {i.where for i in no_ground.value.issues}
        end_enrolment(conn, CLINICIAN, enrolment, end_date=dt.date(2024, 9, 1),
                      reason="involuntary_discharge",
                      medical_ground="Upprepade överdoser med sidomissbruk, medicinsk risk")
        history = phase_history(conn, CLINICIAN, enrolment)
    assert [(h.phase, h.on_date) for h in history] == [
        ("assessment", dt.date(2024, 1, 10)), ("treatment-start", dt.date(2024, 2, 1)),
        ("stabilisation", dt.date(2024, 5, 2)), ("ending", dt.date(2024, 9, 1))]
    assert history[0].reason == "Remiss" and history[2].reason == "Stabil"
    assert all(h.actor == "dr.a" and h.recorded for h in history)
    with engine.connect() as conn:
        row = conn.execute(select(Enrolment.__table__)).one()
    assert row.end_date == dt.date(2024, 9, 1) and row.end_reason == "involuntary_discharge"
    assert row.phase == "ending"
    assert row.details["facts"]["medical_ground"].startswith("Upprepade")


def test_imported_enrolment_without_history(engine: Engine) -> None:
    with engine.begin() as conn:
        key = register_person(conn, SYSTEM, PNR_MAN)
        conn.execute(Enrolment.__table__.insert().values(
            row_key="imp1", person_key=key, unit_id="R-LARO", programme="laro",
            start_date=dt.date(2023, 1, 1), phase="stabilisation"))
        history = phase_history(conn, SYSTEM, "imp1")
        assert [(h.phase, h.recorded) for h in history] == [("stabilisation", False)]
        change_phase(conn, SYSTEM, "imp1", "rehabilitation", on_date=dt.date(2024, 1, 1),
                     facts={"care_plan_goals": "Arbete"})
        assert [h.phase for h in phase_history(conn, SYSTEM, "imp1")] == ["rehabilitation"]
        items = due_list(conn, SYSTEM, unit_id="R-LARO", today=dt.date(2024, 1, 10))
        assert {i.stage for i in items} == {"intake", "review"}
        assert all(i.principal_type == "region" for i in items)
        # a LARO review recorded by base id goes to the nearest occurrence
        record_assessment(conn, SYSTEM, key, "who-5", {f"item_{i}": 3 for i in range(1, 6)},
                          stage="review", unit_id="R-LARO", on_date=dt.date(2024, 1, 5))
        done = [i for i in due_list(conn, SYSTEM, unit_id="R-LARO", today=dt.date(2024, 1, 10))
                if i.completed_on]
        assert [(i.stage_id, i.status) for i in done] == [("review-2", "done_in_window")]


def test_invalid_answers_name_item_and_reason(engine: Engine) -> None:
    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_MAN)
        with pytest.raises(CareError) as caught:
            record_assessment(conn, CLINICIAN, key, "audit", dict(AUDIT_ANSWERS, item_9=3,
                                                                  item_2="x"),
                              unit_id="R-LARO", on_date=dt.date(2024, 1, 1))
    where = {i.where: i for i in caught.value.issues}
    assert where["item_9"].code == "not_allowed"
    assert where["item_2"].code == "not_integer"
    assert "item_9" in str(caught.value)
    with engine.begin() as conn, pytest.raises(CareError) as unknown:
        record_assessment(conn, CLINICIAN, key, "nope", {}, unit_id="R-LARO",
                          on_date=dt.date(2024, 1, 1))
    assert unknown.value.issues[0].where == "instrument"


def test_enrolment_data_validated(engine: Engine) -> None:
    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_MAN)
        with pytest.raises(CareError) as caught:
            enrol(conn, CLINICIAN, key, "rop", "R-LARO", START, facts={"sip_consent": True})
        assert {"sip_consent_date", "overall_responsibility"} <= {
            i.where for i in caught.value.issues}
        with pytest.raises(CareError) as municipal:
            enrol(conn, CLINICIAN, key, "vip-beroende", "R-LARO", START,
                  municipal_unit_id="R-BER")
        assert municipal.value.code == "not_municipal"


def test_access_policy_is_applied(engine: Engine) -> None:
    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_MAN)
        enrol(conn, CLINICIAN, key, "vip-beroende", "R-LARO", START)
        record_assessment(conn, CLINICIAN, key, "audit", AUDIT_ANSWERS, stage="intake",
                          unit_id="R-LARO", on_date=START)
    with engine.begin() as conn:
        # the municipality has no consent: no timeline, and no entries on its list
        with pytest.raises(AccessDenied):
            timeline(conn, SOCIAL, key)
        with pytest.raises(AccessDenied):
            record_assessment(conn, CLINICIAN, key, "audit", AUDIT_ANSWERS, unit_id="R-BER",
                              on_date=START)
        with pytest.raises(AccessDenied):
            due_list(conn, CLINICIAN, unit_id="K-SOC", today=START)
        # emergency access: health care within its own region only, never social services
        with pytest.raises(AccessDenied) as social:
            timeline(conn, SOCIAL, key, emergency_reason="Akut läge, personen medvetslös")
        assert social.value.code == "emergency_role"
        other_unit = Actor("dr.c", "clinician", "R-BER")
        with pytest.raises(AccessDenied):
            timeline(conn, other_unit, key)  # no relation at R-BER
        tl = timeline(conn, other_unit, key, emergency_reason="Akut läge, personen medvetslös")
        assert len(tl.assessments) == 1 and tl.emergency


ROP_FACTS = {
    "sip_consent": True, "sip_consent_date": "2025-01-10",
    "sip_consent_scope": "Inskrivning och uppföljning, region och kommun, ett år",
    "overall_responsibility": "municipality", "interventions_region": "Läkemedel",
    "interventions_municipality": "Boendestöd", "psychiatric_treated_in_parallel": True,
}


def test_consent_shares_categories_with_the_municipality(engine: Engine) -> None:
    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_WOMAN)
        enrol(conn, CLINICIAN, key, "rop", "R-LARO", START, municipal_unit_id="K-SOC",
              facts=ROP_FACTS)
        record_assessment(conn, CLINICIAN, key, "audit", AUDIT_ANSWERS, stage="intake",
                          unit_id="R-LARO", on_date=START)
        give_consent(conn, key, ["enrolments"])
    with engine.begin() as conn:
        shared = timeline(conn, SOCIAL, key)
        assert len(shared.enrolments) == 1 and shared.assessments == [] and shared.hidden == 1
        items = due_list(conn, SOCIAL, today=dt.date(2025, 7, 15))
        assert [(i.stage_id, i.status, i.unit_id) for i in items] == [
            ("month-6", "due", "K-SOC")]
        assert due_list(conn, CLINICIAN, today=dt.date(2025, 7, 15), principal="municipality") \
            == []


def test_other_principal_needs_a_referral_then_enrols_at_own_unit(engine: Engine) -> None:
    from utfall.access.relations import create_relation

    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_MAN)
        enrol(conn, CLINICIAN, key, "vip-beroende", "R-LARO", START)
    with engine.begin() as conn, pytest.raises(AccessDenied) as refused:
        # registering a person known elsewhere does not open them (no self-granted relation)
        register_person(conn, SOCIAL, PNR_MAN)
    assert refused.value.code == "relation_needed"
    with engine.begin() as conn, pytest.raises(AccessDenied):
        enrol(conn, SOCIAL, key, "rop", "K-SOC", START, facts=ROP_FACTS)
    with engine.begin() as conn:
        create_relation(conn, CLINICIAN, key, unit_id="K-SOC", basis="referral")
    with engine.begin() as conn:
        # social services meet the same person after the referral: registering finds them
        assert register_person(conn, SOCIAL, PNR_MAN) == key
        with pytest.raises(AccessDenied):
            enrol(conn, SOCIAL, key, "vip-beroende", "R-LARO", START)  # not their unit
        own = enrol(conn, SOCIAL, key, "rop", "K-SOC", START, facts=ROP_FACTS)
        tl = timeline(conn, SOCIAL, key)
        assert [e.enrolment_id for e in tl.enrolments] == [own]  # the region's stays hidden
        with pytest.raises(AccessDenied):  # nor can they change the region's enrolment
            region = next(e.row_key for e in conn.execute(select(Enrolment.__table__))
                          if e.unit_id == "R-LARO")
            end_enrolment(conn, SOCIAL, region, end_date=START, reason="other")
