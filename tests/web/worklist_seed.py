"""Seeding for the worklist tests: enrolments made through the care service (small,
varied lists) and imported-style LARO enrolments in bulk (lists of a thousand rows)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Engine, insert

from tests.access.authz_support import luhn_number
from utfall.access.audit import Actor
from utfall.care import enrol, register_person
from utfall.store.models import Enrolment

CLIN = Actor("clin", "clinician", "reg-ber")
SYSTEM = Actor("test", "system")


def seed_enrolments(engine: Engine, n: int = 24, unit: str = "reg-ber",
                    actor: Actor = CLIN) -> list[str]:
    """``n`` persons registered and enrolled in VIP beroende at ``unit`` by ``actor``,
    started 0–23 months ago (statuses vary), every other one with ``clin`` responsible;
    returns the person keys."""
    today = dt.date.today()
    keys = []
    with engine.begin() as conn:
        for i in range(n):
            number = luhn_number(f"19{60 + i % 30:02d}0{1 + i % 9}1{i % 10}", 500 + i)
            key = register_person(conn, actor, number)
            start = today - dt.timedelta(days=30 * i + 3)
            enrol(conn, actor, key, "vip-beroende", unit, start,
                  responsible_worker="clin" if i % 2 == 0 else None)
            keys.append(key)
    return keys


def seed_laro(engine: Engine, n: int, unit: str = "reg-laro", first_serial: int = 100
              ) -> list[str]:
    """``n`` persons with an ongoing LARO enrolment at ``unit`` (imported style, started
    1–6 years ago): about three open stages each on the unit's list."""
    today = dt.date.today()
    keys = []
    with engine.begin() as conn:
        for i in range(n):
            number = luhn_number(f"19{55 + i % 40:02d}{1 + i % 12:02d}{10 + i % 18:02d}",
                                 first_serial + i % 800)
            key = register_person(conn, SYSTEM, number)
            keys.append(key)
        conn.execute(insert(Enrolment), [
            {"row_key": uuid.uuid4().hex, "person_key": key, "unit_id": unit,
             "programme": "laro", "start_date": today - dt.timedelta(days=400 + 5 * i),
             "end_date": None, "phase": "stabilisation", "details": {"source": "test"}}
            for i, key in enumerate(keys)])
    return keys
