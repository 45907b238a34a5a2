"""A small two-principal world for web and access tests.

Organisations: Region Syd (region), Malmö stad (municipality), Lunds kommun
(municipality). Units: ``reg-ber`` and ``reg-laro`` (region), ``soc-malmo``,
``soc-lund``. Persons (synthetic numbers): ``P_REGION`` known to the region only,
``P_SOC`` known to Malmö only, ``P_BOTH`` known to both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, insert

from utfall.access.accounts import create_user
from utfall.access.audit import Actor
from utfall.care import record_assessment, register_person
from utfall.store.db import ensure_schema, get_engine
from utfall.store.models import Contact, Organisation, Procedure, Unit

PASSWORD = "correct horse battery"
P_REGION = "198506152381"  # synthetic, valid check digits
P_SOC = "199001012385"
P_BOTH = "197712242390"
P_NEW = "200002292381"
SYSTEM = Actor("test", "system")

USERS = {
    "clin": ("clinician", ["reg-ber"]),
    "clin2": ("clinician", ["reg-laro"]),
    "soc": ("social_worker", ["soc-malmo"]),
    "soc_lund": ("social_worker", ["soc-lund"]),
    "boss": ("unit_manager", ["reg-ber"]),
    "soc_boss": ("unit_manager", ["soc-malmo"]),
    "ana": ("analyst", ["reg-ber"]),
    "root": ("admin", []),
}


@dataclass
class World:
    engine: Engine
    keys: dict[str, str]
    org: dict[str, int]


def _valid(number: str) -> str:
    from utfall.domain.identity import parse_identity_number

    return parse_identity_number(number).canonical


def build_world(url: str) -> World:
    """Create the schema, organisations, units, persons, records and users."""
    engine = get_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:
        org = {}
        for name, kind in (("Region Syd", "region"), ("Malmö stad", "municipality"),
                           ("Lunds kommun", "municipality")):
            org[name] = conn.execute(insert(Organisation).values(name=name, principal_type=kind)
                                     .returning(Organisation.id)).scalar_one()
        for unit_id, name, o, level, code in (
                ("reg-ber", "Beroendemottagning Malmö", "Region Syd", "specialist_outpatient",
                 "1280"),
                ("reg-laro", "LARO Lund", "Region Syd", "laro", "1281"),
                ("soc-malmo", "Socialtjänsten Malmö", "Malmö stad", "social_services", "1280"),
                ("soc-lund", "Socialtjänsten Lund", "Lunds kommun", "social_services", "1281")):
            conn.execute(insert(Unit).values(unit_id=unit_id, name=name,
                                             organisation_id=org[o], care_level=level,
                                             municipality_code=code))
        keys = {}
        for label, number in (("region", P_REGION), ("soc", P_SOC), ("both", P_BOTH)):
            keys[label] = register_person(conn, SYSTEM, _valid(number))
        day = dt.date(2026, 1, 10)
        rows = [("c1", keys["region"], "reg-ber"), ("c2", keys["both"], "reg-ber"),
                ("c3", keys["soc"], "soc-malmo"), ("c4", keys["both"], "soc-malmo")]
        for cid, key, unit in rows:
            conn.execute(insert(Contact).values(contact_id=cid, person_key=key, unit_id=unit,
                                                date=day, contact_type="visit",
                                                main_dx="F10.2", dx_group="F10"))
        conn.execute(insert(Procedure).values(row_key="p1", person_key=keys["both"],
                                              unit_id="reg-ber", date=day, kva_code="AU119"))
        record_assessment(conn, SYSTEM, keys["both"], "audit-c",
                          {"item_1": 3, "item_2": 2, "item_3": 2}, unit_id="reg-ber",
                          on_date=day, source="capture")
        record_assessment(conn, SYSTEM, keys["region"], "audit-c",
                          {"item_1": 2, "item_2": 1, "item_3": 1}, unit_id="reg-ber",
                          on_date=day, source="capture")
        for user, (role, units) in USERS.items():
            create_user(conn, user, role, units, password=PASSWORD)
    return World(engine, keys, {k: int(v) for k, v in org.items()})
