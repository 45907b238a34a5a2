"""Fixtures of the care service tests: a migrated store with a region and a municipality."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from utfall.access.audit import Actor
from utfall.config import Settings
from utfall.store.db import ensure_schema, get_engine
from utfall.store.models import Organisation, Unit

PNR_MAN = "198001011231"  # valid, male, born 1980-01-01
PNR_WOMAN = "199506152348"  # valid, female
PNR_YOUNG = "200512034562"  # valid, female, born 2005-12-03
SYSTEM = Actor("tester", "system")
CLINICIAN = Actor("dr.a", "clinician", "R-LARO")
SOCIAL = Actor("sw.b", "social_worker", "K-SOC")
START = dt.date(2025, 1, 15)


def seed(engine: Engine) -> None:
    """Two organisations and three units."""
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(Organisation.__table__.insert(), [
            {"id": 1, "name": "Region Test", "principal_type": "region"},
            {"id": 2, "name": "Testkommun", "principal_type": "municipality"},
        ])
        conn.execute(Unit.__table__.insert(), [
            {"unit_id": "R-LARO", "name": "LARO-mottagningen", "organisation_id": 1,
             "care_level": "laro", "municipality_code": None},
            {"unit_id": "R-BER", "name": "Beroendemottagningen", "organisation_id": 1,
             "care_level": "specialist_outpatient", "municipality_code": None},
            {"unit_id": "K-SOC", "name": "Socialtjänsten vuxen", "organisation_id": 2,
             "care_level": "social_services", "municipality_code": "0180"},
        ])


@pytest.fixture
def engine(settings: Settings, sqlite_url: str) -> Engine:
    """A migrated, seeded SQLite store."""
    eng = get_engine(sqlite_url)
    seed(eng)
    return eng


def laro_facts(**overrides: object) -> dict[str, object]:
    """Facts that pass LARO's entry checks for treatment start."""
    facts: dict[str, object] = {
        "opioid_dependence_months": 36, "dependence_assessed_by_physician": True,
        "responsible_physician_specialist": True, "medication": "buprenorphine",
        "treatment_plan": True, "supervised_intake": True,
        "concurrent_dependence_clear_risk": False,
    }
    facts.update(overrides)
    return facts


AUDIT_ANSWERS = {f"item_{i}": 1 for i in range(1, 9)} | {"item_9": 0, "item_10": 2}
LIFE = {"item_1": 10, "item_2": 0, "item_3": 0, "item_4": 0, "item_5": 0, "item_6": 0,
        "item_7": 0, "item_9": 0, "item_10": 8, "item_11": 9, "item_12": 0,
        "item_13": 0, "item_14": 1, "item_15": 0, "item_16": 0, "item_17": 10, "item_18": 8,
        "goal_text": "Få ett eget boende", "item_19": 3}
