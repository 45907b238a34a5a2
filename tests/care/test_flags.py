"""Clinical flags: raised on every save path, labelled from the instrument, open until
acknowledged with a note (audited, access-checked); the unit inbox."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from utfall.access.audit import Actor, verify_chain
from utfall.access.policy import AccessDenied
from utfall.care import CareError, enrol, record_assessment, register_person
from utfall.care._common import NotFound
from utfall.care.flags import (
    acknowledge_flag,
    flag_label,
    open_flag_counts,
    open_flags,
    raise_flags_bulk,
)
from utfall.care.inbox import inbox_count, mark_self_report_seen, unit_inbox
from utfall.config import Settings
from utfall.store.models import AuditEvent
from utfall.store.models_flags import CareFlag

from .conftest import CLINICIAN, PNR_MAN, PNR_WOMAN, SOCIAL, START

PHQ_OK = {f"item_{i}": 1 for i in range(1, 9)} | {"item_9": 0}
PHQ_RISK = PHQ_OK | {"item_9": 3}
MANAGER = Actor("chef.c", "unit_manager", "R-LARO")
OTHER_CLINICIAN = Actor("dr.x", "clinician", "R-BER")


def _person(engine: Engine, pnr: str = PNR_WOMAN) -> str:
    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, pnr, municipality_code="0180")
        enrol(conn, CLINICIAN, key, "vip-beroende", "R-LARO", START, responsible_worker="dr.a")
    return key


def _phq(engine: Engine, key: str, answers: dict[str, int], source: str = "capture") -> str:
    with engine.begin() as conn:
        return record_assessment(conn, CLINICIAN, key, "phq-9", answers, unit_id="R-LARO",
                                 on_date=START + dt.timedelta(days=3), source=source)


def test_phq9_item9_raises_one_labelled_flag(engine: Engine) -> None:
    key = _person(engine)
    _phq(engine, key, PHQ_OK)
    with engine.connect() as conn:
        assert open_flags(conn, key) == []
    assessment = _phq(engine, key, PHQ_RISK)
    with engine.connect() as conn:
        flags = open_flags(conn, key)
        counts = open_flag_counts(conn, [key, "0" * 64])
    assert len(flags) == 1
    flag = flags[0]
    assert flag["assessment_id"] == assessment and flag["code"] == "suicidal_thoughts"
    assert flag["label"]["sv"].startswith("Tankar på döden")
    assert flag["label"]["en"].startswith("Thoughts of death")
    assert flag["instrument_title"]["sv"].startswith("PHQ-9")
    assert flag["unit_name"] == "LARO-mottagningen" and flag["status"] == "open"
    assert flag["assessment_date"] == (START + dt.timedelta(days=3)).isoformat()
    assert counts == {key: 1}
    # an unknown flag is never shown by its raw id
    assert flag_label("phq-9", "nope")["sv"] == "Flagga som behöver uppmärksammas"


def test_audit_zone_iv_and_self_report_submission_raise_flags(engine: Engine) -> None:
    from utfall.care import issue_self_report_link, submit_self_report

    key = _person(engine)
    now = dt.datetime(2025, 7, 10, 8, 0, tzinfo=dt.UTC)
    with engine.begin() as conn:
        # woman, AUDIT 18 = zone IV (Bergman & Källmén 2002)
        record_assessment(conn, CLINICIAN, key, "audit",
                          {"item_1": 4, "item_2": 4, "item_3": 4, "item_4": 2, "item_5": 2,
                           "item_6": 0, "item_7": 0, "item_8": 0, "item_9": 0,
                           "item_10": 2}, unit_id="R-LARO", on_date=START)
        record_assessment(conn, CLINICIAN, key, "audit",
                          {"item_1": 4, "item_2": 4, "item_3": 4, "item_4": 2, "item_5": 2,
                           "item_6": 0, "item_7": 0, "item_8": 0, "item_9": 0,
                           "item_10": 0}, unit_id="R-LARO", on_date=START)  # 16: zone III
        assert len(conn.execute(select(CareFlag.assessment_id)).all()) == 1  # zone IV only
        from utfall.store.models import Enrolment

        enrolment_id = conn.execute(select(Enrolment.row_key)).scalar_one()
        token = issue_self_report_link(conn, CLINICIAN, enrolment_id, "month-6",
                                       instruments=["phq-9"], now=now)
        submit_self_report(conn, token, PHQ_RISK, now=now + dt.timedelta(days=1))
        flags = open_flags(conn, key)
    assert sorted(f["code"] for f in flags) == ["possible_dependence", "suicidal_thoughts"]
    audit_flag = next(f for f in flags if f["code"] == "possible_dependence")
    assert audit_flag["label"]["sv"].startswith("Zon IV")
    with engine.begin() as conn:
        box = unit_inbox(conn, CLINICIAN)
    assert len(box["flags"]) == 2 and len(box["self_reports"]) == 1


def test_acknowledge_needs_note_role_and_organisation(engine: Engine) -> None:
    key = _person(engine)
    _phq(engine, key, PHQ_RISK)
    with engine.connect() as conn:
        flag_id = open_flags(conn, key)[0]["flag_id"]
    with engine.begin() as conn, pytest.raises(CareError) as blank:
        acknowledge_flag(conn, CLINICIAN, flag_id, "  ")
    assert blank.value.issues[0].where == "note"
    with engine.begin() as conn, pytest.raises(AccessDenied):
        acknowledge_flag(conn, MANAGER, flag_id, "Läst")
    with engine.begin() as conn, pytest.raises(NotFound):
        acknowledge_flag(conn, SOCIAL, flag_id, "Läst")  # another principal's flag
    with engine.begin() as conn, pytest.raises(NotFound):
        acknowledge_flag(conn, CLINICIAN, 999_999, "Läst")
    with engine.begin() as conn:
        done = acknowledge_flag(conn, CLINICIAN, flag_id, "Suicidriskbedömning gjord, låg risk.")
    assert done["status"] == "acknowledged" and done["closed_by"] == "dr.a"
    assert done["note"] == "Suicidriskbedömning gjord, låg risk."
    with engine.begin() as conn:
        assert open_flags(conn, key) == []
        assert open_flag_counts(conn, [key]) == {}
        with pytest.raises(CareError) as twice:
            acknowledge_flag(conn, CLINICIAN, flag_id, "igen")
        assert twice.value.code == "flag_closed"
        events = conn.execute(select(AuditEvent.__table__)
                              .where(AuditEvent.person_key == key)).all()
    acks = [e for e in events if (e.detail or {}).get("what") == "flag_acknowledged"]
    assert len(acks) == 1 and acks[0].action == "change" and acks[0].actor == "dr.a"
    assert acks[0].detail["flag_id"] == flag_id
    with engine.connect() as conn:
        chain = conn.execute(select(AuditEvent.__table__).order_by(AuditEvent.id)).all()
    assert not verify_chain(chain)


def test_open_flags_for_actor_follow_scope(engine: Engine) -> None:
    key = _person(engine)
    _phq(engine, key, PHQ_RISK)
    from utfall.access.relations import create_relation

    with engine.begin() as conn:
        create_relation(conn, CLINICIAN, key, unit_id="K-SOC", basis="referral")
        # the municipality sees no region flag without the person's consent
        assert open_flags(conn, key, actor=SOCIAL) == []
        assert len(open_flags(conn, key, actor=CLINICIAN)) == 1


def test_inbox_lists_flags_and_new_self_reports(engine: Engine) -> None:
    key = _person(engine)
    other = _person(engine, PNR_MAN)
    _phq(engine, key, PHQ_RISK)
    report = _phq(engine, other, PHQ_OK, source="self_report")
    with engine.begin() as conn:
        assert inbox_count(conn, CLINICIAN) == 2
        assert inbox_count(conn, Actor("ana", "analyst", None)) == 0
        box = unit_inbox(conn, CLINICIAN)
    assert box["total"] == 2 and box["unit_name"] == "LARO-mottagningen"
    assert [f["person_key"] for f in box["flags"]] == [key]
    assert box["flags"][0]["person"].endswith("-****")
    assert [r["assessment_id"] for r in box["self_reports"]] == [report]
    with engine.begin() as conn:
        with pytest.raises(AccessDenied):
            unit_inbox(conn, Actor("ana", "analyst", None))
        with pytest.raises(NotFound):
            mark_self_report_seen(conn, OTHER_CLINICIAN, report)  # not their unit
        mark_self_report_seen(conn, CLINICIAN, report)
        mark_self_report_seen(conn, CLINICIAN, report)  # idempotent
        assert inbox_count(conn, CLINICIAN) == 1
        assert unit_inbox(conn, CLINICIAN)["self_reports"] == []
        assert unit_inbox(conn, OTHER_CLINICIAN)["total"] == 0
        reads = conn.execute(select(AuditEvent.__table__)
                             .where(AuditEvent.person_key == key)).all()
    assert any((e.detail or {}).get("what") == "inbox" for e in reads)


def test_bulk_raise_is_idempotent(engine: Engine) -> None:
    key = _person(engine)
    first = _phq(engine, key, PHQ_OK)
    second = _phq(engine, key, PHQ_OK)
    rows = [{"row_key": first, "person_key": key, "unit_id": "R-LARO", "instrument": "phq-9",
             "answers": PHQ_RISK},
            {"row_key": second, "person_key": key, "unit_id": "R-LARO",
             "instrument": "phq-9", "answers": PHQ_OK},
            {"row_key": second, "person_key": key, "unit_id": "R-LARO",
             "instrument": "audit", "answers": {"item_1": 4}}]
    with engine.begin() as conn:
        assert raise_flags_bulk(conn, rows) == 1
        assert raise_flags_bulk(conn, rows) == 0
        assert [f["assessment_id"] for f in open_flags(conn, key)] == [first]


def test_import_raises_flags(tmp_path: Path, settings: Settings, sqlite_url: str) -> None:
    from tests.foundation.extract_factory import P1, P2, TABLES, write_extract
    from utfall.interop.extract_load import import_extract
    from utfall.store.db import get_engine

    def phq(person: str, item9: int) -> dict[str, str]:
        items = {f"item_{i}": "1" for i in range(1, 9)} | {"item_9": str(item9), "item_10": ""}
        return {"person_id": person, "unit_id": "U1", "date": "2021-03-02",
                "instrument": "phq-9", "stage": "intake", **items}

    rows = [*TABLES["assessments"], phq(P1, 2), phq(P2, 0)]
    engine = get_engine(sqlite_url)
    import_extract(write_extract(tmp_path / "x", assessments=rows), engine, settings=settings)
    import_extract(write_extract(tmp_path / "y", assessments=rows), engine, settings=settings)
    with engine.connect() as conn:
        flags = conn.execute(select(CareFlag.__table__)).all()
    # the AUDIT intake of P1 scores 24 (zone IV); the PHQ-9 with item 9 = 2; imported twice
    assert sorted((f.instrument, f.flag_id, f.status, f.unit_id) for f in flags) == [
        ("audit", "possible_dependence", "open", "U1"),
        ("phq-9", "suicidal_thoughts", "open", "U1")]


def test_score_cli_json_lists_flags() -> None:
    from utfall.cli import app

    runner = CliRunner()
    risk = json.loads(runner.invoke(app, ["score", "phq-9", "--answers",
                                          "1,1,1,1,1,1,1,1,2"]).stdout)
    calm = json.loads(runner.invoke(app, ["score", "phq-9", "--answers",
                                          "1,1,1,1,1,1,1,1,0"]).stdout)
    assert [f["id"] for f in risk["flags"]] == ["suicidal_thoughts"]
    assert risk["flags"][0]["sv"].startswith("Tankar på döden")
    assert calm["flags"] == [] and set(calm) == {"instrument", "total", "subscales", "band",
                                                 "flags"}
