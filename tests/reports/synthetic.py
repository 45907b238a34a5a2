"""A seeded, mid-sized canonical data set for report tests (big enough for real numbers)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from utfall.analytics.schema import TABLES, conform

UNITS = {
    "U1": ("Beroendemottagning Nord", 0.55),  # name, share of contacts with AU119
    "U2": ("Beroendemottagning Syd", 0.35),
    "U3": ("Mottagning Väst", 0.05),  # under-coding unit
}
GROUPS = {"F10": 0.5, "F11": 0.18, "F12": 0.1, "F14": 0.02, "F15": 0.08, "F19": 0.12}


def synthetic_tables(persons: int = 500, seed: int = 7) -> dict[str, pa.Table]:
    """Canonical Arrow tables for ``persons`` synthetic persons, years 2021–2022."""
    rng = random.Random(seed)
    person_rows, contacts, procedures = [], [], []
    n_contact = 0
    for k in range(persons):
        pk = f"p{k:05d}"
        person_rows.append(
            {"person_key": pk, "sex": rng.choice("MF"), "birth_year": rng.randint(1950, 2003)}
        )
        group = rng.choices(list(GROUPS), weights=list(GROUPS.values()))[0]
        home = rng.choice(list(UNITS))
        for year in (2021, 2022):
            if rng.random() < 0.25:
                continue
            for _ in range(rng.randint(1, 3)):
                unit = home if rng.random() < 0.85 else rng.choice(list(UNITS))
                date = dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
                main = rng.choice([f"{group}2", f"{group}1"]) if rng.random() > 0.03 else None
                n_contact += 1
                cid = f"c{n_contact:06d}"
                contacts.append(
                    {
                        "contact_id": cid,
                        "person_key": pk,
                        "unit_id": unit,
                        "date": date,
                        "contact_type": "outpatient",
                        "main_dx": main,
                        "dx_group": main[:3] if main else None,
                    }
                )
                linked = cid if rng.random() < 0.8 else None
                if rng.random() < UNITS[unit][1]:
                    procedures.append(_proc(pk, unit, date, linked, "AU119"))
                if rng.random() < 0.12:
                    procedures.append(_proc(pk, unit, date, linked, "DU119"))
                if year == 2022 and rng.random() < 0.01:
                    procedures.append(_proc(pk, unit, date, linked, "AU124"))
    units = [
        {"unit_id": u, "name": name, "organisation": "Region Test", "principal_type": "region"}
        for u, (name, _share) in UNITS.items()
    ]
    return {
        "person": conform("person", pa.Table.from_pylist(person_rows)),
        "unit": conform("unit", pa.Table.from_pylist(units)),
        "contact": conform("contact", pa.Table.from_pylist(contacts)),
        "procedure": conform("procedure", pa.Table.from_pylist(procedures)),
    }


def _proc(pk: str, unit: str, date: dt.date, cid: str | None, code: str) -> dict:
    return {"person_key": pk, "unit_id": unit, "date": date, "contact_id": cid, "kva_code": code}


def write_parquet(folder: Path, tables: dict[str, pa.Table]) -> Path:
    """One ``<name>.parquet`` per canonical table (empty ones included)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        pq.write_table(tables.get(name, TABLES[name].empty_table()), folder / f"{name}.parquet")
    return folder
