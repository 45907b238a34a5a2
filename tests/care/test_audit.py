"""Every read and write of personal data leaves an audit event (without identity numbers)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from utfall.access.audit import verify_chain
from utfall.care import (
    assign_stage,
    change_phase,
    due_list,
    end_enrolment,
    enrol,
    find_person,
    issue_self_report_link,
    open_self_report,
    phase_history,
    record_assessment,
    register_person,
    submit_self_report,
    timeline,
)
from utfall.store.models import AuditEvent

from .conftest import AUDIT_ANSWERS, CLINICIAN, PNR_MAN, laro_facts

NOW = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


def _audited(conn: Connection, action: str, role: str, call: Callable[[], Any]) -> Any:
    before = conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    result = call()
    rows = conn.execute(select(AuditEvent.__table__).order_by(AuditEvent.id.desc())
                        .limit(1)).all()
    after = conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    assert after > before, f"no audit event for {call}"
    assert rows[0].action == action and rows[0].role == role
    assert rows[0].person_key
    return result


def test_every_service_call_is_audited(engine: Engine) -> None:
    c = CLINICIAN
    with engine.begin() as conn:
        key = _audited(conn, "create", "clinician", lambda: register_person(conn, c, PNR_MAN))
        _audited(conn, "read", "clinician", lambda: find_person(conn, c, PNR_MAN))
        enrolment = _audited(conn, "create", "clinician", lambda: enrol(
            conn, c, key, "laro", "R-LARO", dt.date(2024, 1, 10), facts=laro_facts(),
            municipal_unit_id="K-SOC"))
        _audited(conn, "create", "clinician", lambda: record_assessment(
            conn, c, key, "audit", AUDIT_ANSWERS, stage="intake", unit_id="R-LARO",
            on_date=dt.date(2024, 1, 12)))
        _audited(conn, "change", "clinician", lambda: change_phase(
            conn, c, enrolment, "treatment-start", on_date=dt.date(2024, 2, 1)))
        _audited(conn, "change", "clinician", lambda: assign_stage(
            conn, c, enrolment, "review", worker="dr.b"))
        _audited(conn, "read", "clinician", lambda: phase_history(conn, c, enrolment))
        _audited(conn, "read", "clinician",
                 lambda: due_list(conn, c, today=dt.date(2024, 2, 1)))
        _audited(conn, "read", "clinician", lambda: timeline(conn, c, key))
        token = _audited(conn, "create", "clinician", lambda: issue_self_report_link(
            conn, c, enrolment, "review", instruments=["who-5"], now=NOW))
        _audited(conn, "read", "person", lambda: open_self_report(conn, token, now=NOW))
        _audited(conn, "create", "person", lambda: submit_self_report(
            conn, token, {f"item_{i}": 2 for i in range(1, 6)}, now=NOW))
        _audited(conn, "change", "clinician", lambda: end_enrolment(
            conn, c, enrolment, end_date=dt.date(2024, 6, 1), reason="transferred"))
    with engine.connect() as conn:
        events = conn.execute(select(AuditEvent.__table__).order_by(AuditEvent.id)).all()
    assert not verify_chain(events)
    text = " ".join(json.dumps(e.detail) + e.actor for e in events)
    assert PNR_MAN not in text and PNR_MAN[2:] not in text and "19800101-" not in text
