"""Self-report links: signed, single use, expiring, tamper-proof; the person acts."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select

from utfall.care import (
    CareError,
    SelfReportRefused,
    enrol,
    issue_self_report_link,
    open_self_report,
    register_person,
    submit_self_report,
)
from utfall.store.models import Assessment, AuditEvent
from utfall.store.models_care import SelfReportToken

from .conftest import CLINICIAN, PNR_WOMAN, START

NOW = dt.datetime(2025, 7, 10, 8, 0, tzinfo=dt.UTC)
WHO5 = {f"item_{i}": 3 for i in range(1, 6)}


def _setup(engine: Engine) -> tuple[str, str, str]:
    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_WOMAN)
        enrolment = enrol(conn, CLINICIAN, key, "vip-beroende", "R-LARO", START)
        token = issue_self_report_link(conn, CLINICIAN, enrolment, "month-6",
                                       instruments=["who-5"], now=NOW)
    return key, enrolment, token


def test_single_use(engine: Engine) -> None:
    key, _enrolment, token = _setup(engine)
    assert key not in token and PNR_WOMAN not in token
    with engine.begin() as conn:
        form = open_self_report(conn, token, now=NOW + dt.timedelta(days=1))
        assert [d.id for d in form.instruments] == ["who-5"] and form.locale == "sv"
        assert form.stage == "month-6" and not hasattr(form, "person_key")
        # invalid answers: refused with item + reason, the link stays usable
        with pytest.raises(CareError) as bad:
            submit_self_report(conn, token, dict(WHO5, item_1=9), now=NOW)
        assert bad.value.issues[0].where == "item_1"
        ids = submit_self_report(conn, token, WHO5, now=NOW + dt.timedelta(days=1))
        assert len(ids) == 1
    with engine.begin() as conn:
        row = conn.execute(select(Assessment.__table__)).one()
        assert (row.source, row.stage, row.instrument, row.score) == (
            "self_report", "month-6", "who-5", 15)
        assert row.date == dt.date(2025, 7, 11)
        with pytest.raises(SelfReportRefused) as used:
            submit_self_report(conn, token, WHO5, now=NOW + dt.timedelta(days=2))
        assert used.value.code == "self_report_used"
        assert "redan" in used.value.sv and "already" in used.value.en
        with pytest.raises(SelfReportRefused):
            open_self_report(conn, token, now=NOW + dt.timedelta(days=2))
        events = conn.execute(select(AuditEvent.__table__).where(
            AuditEvent.role == "person")).all()
    assert {e.action for e in events} == {"read", "create"}
    assert all(e.person_key == key for e in events)


def test_expiry(engine: Engine) -> None:
    _, _, token = _setup(engine)
    with engine.begin() as conn:
        open_self_report(conn, token, now=NOW + dt.timedelta(days=13, hours=23))
        with pytest.raises(SelfReportRefused) as expired:
            submit_self_report(conn, token, WHO5, now=NOW + dt.timedelta(days=14))
    assert expired.value.code == "self_report_expired"
    assert "gått ut" in str(expired.value) and "expired" in str(expired.value)


def test_tampered_token(engine: Engine) -> None:
    _, _, token = _setup(engine)
    payload, _, signature = token.rpartition(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    with engine.begin() as conn:
        for bad in (forged, token + "x", "nonsense", ""):
            with pytest.raises(SelfReportRefused) as caught:
                open_self_report(conn, bad, now=NOW)
            assert caught.value.code == "self_report_tampered"
        # only the hash of the token is stored
        stored = conn.execute(select(SelfReportToken.token_hash)).scalar_one()
        assert stored != token and len(stored) == 64


def test_link_for_unknown_stage(engine: Engine) -> None:
    _, enrolment, _ = _setup(engine)
    with engine.begin() as conn, pytest.raises(CareError) as caught:
        issue_self_report_link(conn, CLINICIAN, enrolment, "month-99", now=NOW)
    assert caught.value.issues[0].where == "stage"


def test_several_instruments(engine: Engine) -> None:
    _, enrolment, _ = _setup(engine)
    with engine.begin() as conn:
        token = issue_self_report_link(conn, CLINICIAN, enrolment, "month-6",
                                       instruments=["who-5", "audit-c"], locale="en", now=NOW)
        assert open_self_report(conn, token, now=NOW).locale == "en"
        with pytest.raises(CareError):
            submit_self_report(conn, token, WHO5, now=NOW)
        ids = submit_self_report(conn, token, {"who-5": WHO5, "audit-c": {
            "item_1": 1, "item_2": 0, "item_3": 0}}, now=NOW)
    assert len(ids) == 2
