"""Audit events on PostgreSQL are appended at commit: committed work is logged and
chained, rolled-back work leaves nothing, and nothing leaks through the pool."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from utfall.access.audit import Actor, log_event, verify_chain
from utfall.store.db import get_engine, upgrade
from utfall.store.models import AuditEvent

pytestmark = pytest.mark.postgres
ACTOR = Actor("anna", "clinician", "U1")


def _events(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(AuditEvent).order_by(AuditEvent.id)).all()


def test_commit_appends_rollback_discards(pg_url: str) -> None:
    engine = get_engine(pg_url)
    upgrade(engine)
    with engine.begin() as conn:
        log_event(conn, ACTOR, "read", "k1", {"what": "timeline"})
        log_event(conn, ACTOR, "change", "k1", {"what": "assessment"})
        # buffered until commit: not yet in the table inside the transaction
        assert conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 0
    with pytest.raises(RuntimeError), engine.begin() as conn:
        log_event(conn, ACTOR, "read", "k2")
        raise RuntimeError("request failed")
    # a connection closed without commit: its buffer must not reach the next transaction
    conn = engine.connect()
    conn.begin()
    log_event(conn, ACTOR, "read", "k3")
    conn.close()
    with engine.begin() as conn:
        log_event(conn, ACTOR, "read", "k4")
    rows = _events(engine)
    assert [(r.action, r.person_key) for r in rows] == [
        ("read", "k1"), ("change", "k1"), ("read", "k4")]
    assert verify_chain(rows) == []
    assert rows[0].detail == {"what": "timeline"}
