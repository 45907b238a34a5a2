"""Correcting and voiding assessments: history kept, flags re-evaluated, schedules and
indicators use the current version, access and audit."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select

from utfall.access.audit import Actor
from utfall.access.policy import AccessDenied, PersonNotFound
from utfall.care import CareError, due_list, enrol, record_assessment, register_person, timeline
from utfall.care.corrections import assessment_history, correct_assessment, void_assessment
from utfall.care.flags import open_flags
from utfall.store.canonical import canonical_tables
from utfall.store.models import Assessment, AuditEvent

from .conftest import AUDIT_ANSWERS, CLINICIAN, PNR_WOMAN, SOCIAL, START

PHQ = {f"item_{i}": 1 for i in range(1, 9)} | {"item_9": 0}
MANAGER = Actor("chef.c", "unit_manager", "R-LARO")
COLLEAGUE = Actor("dr.b", "clinician", "R-BER")  # same region, other unit


def _setup(engine: Engine) -> tuple[str, str, str]:
    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_WOMAN, municipality_code="0180")
        enrolment = enrol(conn, CLINICIAN, key, "vip-beroende", "R-LARO", START,
                          responsible_worker="dr.a")
        phq = record_assessment(conn, CLINICIAN, key, "phq-9", PHQ, unit_id="R-LARO",
                                on_date=START)
    return key, enrolment, phq


def test_correction_rescored_flag_raised_history_kept(engine: Engine) -> None:
    key, _, phq = _setup(engine)
    with engine.begin() as conn:
        with pytest.raises(CareError) as no_reason:
            correct_assessment(conn, CLINICIAN, phq, PHQ | {"item_9": 2}, "")
        assert no_reason.value.issues[0].where == "reason"
        with pytest.raises(CareError) as bad:
            correct_assessment(conn, CLINICIAN, phq, PHQ | {"item_9": 7}, "fel")
        assert bad.value.issues[0].where == "item_9"
        out = correct_assessment(conn, CLINICIAN, phq, PHQ | {"item_9": 2},
                                 "Fel svar inmatat på fråga 9")
    assert out["status"] == "corrected" and out["current"]["version"] == 2
    assert out["current"]["score"] == 10 and out["current"]["band_label"]["sv"]
    assert out["previous"][0]["score"] == 8 and out["previous"][0]["version"] == 1
    assert out["previous"][0]["reason"] == "Fel svar inmatat på fråga 9"
    assert out["previous"][0]["changed_by"] == "dr.a"
    row9 = next(r for r in out["current"]["answer_rows"] if r["item"] == "item_9")
    assert row9["text"]["sv"].startswith("Tankar på att")
    assert row9["answer"]["sv"].startswith("2 – ")
    with engine.begin() as conn:
        assert [f["code"] for f in open_flags(conn, key)] == ["suicidal_thoughts"]
        stored = conn.execute(select(Assessment.score).where(Assessment.row_key == phq)).scalar()
        assert stored == 10
        # correcting back withdraws the open flag (kept in the assessment's flag history)
        again = correct_assessment(conn, CLINICIAN, phq, PHQ, "Rättat tillbaka")
        assert open_flags(conn, key) == []
    assert again["current"]["version"] == 3 and len(again["previous"]) == 2
    assert [f["status"] for f in again["flags"]] == ["withdrawn"]
    assert canonical_tables(engine)["assessment"].to_pylist()[0]["score"] == 8


def test_access_rules(engine: Engine) -> None:
    key, _, phq = _setup(engine)
    with engine.begin() as conn:
        with pytest.raises(AccessDenied):
            correct_assessment(conn, MANAGER, phq, PHQ, "x")
        with pytest.raises(AccessDenied):
            void_assessment(conn, Actor("ana", "analyst", None), phq, "x")
        with pytest.raises(AccessDenied):  # no care relation at the municipality: 404
            correct_assessment(conn, SOCIAL, phq, PHQ, "x")
        with pytest.raises(PersonNotFound):  # one answer for unknown and out-of-scope ids
            correct_assessment(conn, CLINICIAN, "nope", PHQ, "x")
    from utfall.access.relations import create_relation

    with engine.begin() as conn:
        create_relation(conn, CLINICIAN, key, unit_id="K-SOC", basis="referral")
    with engine.begin() as conn:
        with pytest.raises(AccessDenied) as other_org:
            correct_assessment(conn, SOCIAL, phq, PHQ, "x")
        assert other_org.value.code == "change"
        with pytest.raises(PersonNotFound):  # the municipality has no consent to see it
            assessment_history(conn, SOCIAL, phq)
        assert assessment_history(conn, CLINICIAN, phq)["status"] == "original"


def test_void_leaves_schedule_timeline_and_indicators(engine: Engine) -> None:
    from utfall.analytics.executor.backends import duckdb_tables
    from utfall.analytics.executor.run import compute_catalogue

    key, enrolment, phq = _setup(engine)
    with engine.begin() as conn:
        month6 = record_assessment(conn, CLINICIAN, key, "audit", AUDIT_ANSWERS,
                                   stage="month-6", enrolment_id=enrolment, unit_id="R-LARO",
                                   on_date=START + dt.timedelta(days=182))

    def followup_6m() -> int:
        result = compute_catalogue(duckdb_tables(canonical_tables(engine)),
                                   indicators=["followup_6m_in_window"], breakdowns=["total"],
                                   years=[2025], as_of=dt.date(2026, 6, 1))
        rows = [r for r in result.to_pylist() if r["breakdown"] == "total"]
        return int(rows[0]["numerator"])

    def month6_status() -> str:
        with engine.begin() as conn:
            items = due_list(conn, CLINICIAN, today=START + dt.timedelta(days=190),
                             lookback_days=None)
        return next(i.status for i in items if i.stage_id == "month-6")

    assert followup_6m() == 1
    assert month6_status() == "done_in_window"
    with engine.begin() as conn:
        with pytest.raises(CareError):
            void_assessment(conn, CLINICIAN, month6, " ")
        out = void_assessment(conn, CLINICIAN, month6, "Registrerad på fel person")
        with pytest.raises(CareError) as twice:
            correct_assessment(conn, CLINICIAN, month6, AUDIT_ANSWERS, "x")
        assert twice.value.code == "assessment_voided"
        ids = [a.assessment_id for a in timeline(conn, CLINICIAN, key).assessments]
    assert out["status"] == "voided" and out["void"]["reason"] == "Registrerad på fel person"
    assert month6 not in ids and phq in ids
    assert followup_6m() == 0
    assert month6_status() == "due"
    assert len(canonical_tables(engine)["assessment"]) == 1
    with engine.connect() as conn:
        events = conn.execute(select(AuditEvent.__table__)
                              .where(AuditEvent.person_key == key)).all()
    whats = [(e.action, (e.detail or {}).get("what")) for e in events]
    assert ("change", "assessment_voided") in whats


def test_colleague_same_organisation_may_correct(engine: Engine) -> None:
    key, _, phq = _setup(engine)
    from utfall.access.relations import create_relation

    with engine.begin() as conn:
        create_relation(conn, CLINICIAN, key, unit_id="R-BER", basis="referral")
    with engine.begin() as conn:
        out = correct_assessment(conn, COLLEAGUE, phq, PHQ | {"item_1": 3}, "Felskrivning")
    assert out["previous"][0]["changed_by"] == "dr.b"


@pytest.mark.postgres
def test_flags_and_corrections_postgres(settings: object, pg_url: str) -> None:
    from utfall.care.flags import acknowledge_flag
    from utfall.store.db import get_engine

    from .conftest import seed

    engine = get_engine(pg_url)
    seed(engine)
    key, _, phq = _setup(engine)
    with engine.begin() as conn:
        correct_assessment(conn, CLINICIAN, phq, PHQ | {"item_9": 1}, "Fel svar")
        flag = open_flags(conn, key)[0]
        acknowledge_flag(conn, CLINICIAN, flag["flag_id"], "Bedömt")
        assert open_flags(conn, key) == []
        void_assessment(conn, CLINICIAN, phq, "Fel person")
        history = assessment_history(conn, CLINICIAN, phq)
    assert history["status"] == "voided" and history["previous"][0]["score"] == 8
    assert [f["status"] for f in history["flags"]] == ["acknowledged"]
    assert len(canonical_tables(engine)["assessment"]) == 0
