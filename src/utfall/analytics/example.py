"""A tiny hand-made canonical data set (for tests, docs and the engine parity check).

Every indicator's expected value on it is worked out by hand in
``tests/analytics/test_ind_catalogue.py``. Data cut-off: :data:`AS_OF`.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from utfall.analytics.schema import TABLES

AS_OF = dt.date(2023, 6, 30)
YEARS = (2021, 2022)


def _d(s: str | None) -> dt.date | None:
    return dt.date.fromisoformat(s) if s else None


def _table(name: str, cols: list[str], rows: list[tuple]) -> pa.Table:
    schema = TABLES[name]
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    for f in schema:
        if pa.types.is_date32(f.type) and f.name in data:
            data[f.name] = [_d(v) for v in data[f.name]]
    arrays = [
        pa.array(data.get(f.name, [None] * len(rows)), f.type) for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def example_tables() -> dict[str, pa.Table]:
    """The example data set as canonical Arrow tables."""
    unit = _table(
        "unit",
        ["unit_id", "name", "organisation", "principal_type", "care_level", "municipality_code"],
        [
            ("U1", "Beroende A", "Region X", "region", "specialist_outpatient", "1280"),
            ("U2", "Beroende B", "Klinik AB", "private", "specialist_outpatient", "1280"),
            ("U3", "Avgiftning", "Region X", "region", "specialist_inpatient", "1280"),
            ("U4", "Socialtjänst", "Malmö stad", "municipality", "social_services", "1280"),
            ("U5", "LARO", "Region X", "region", "laro", "1280"),
            ("U6", "Psykiatri", "Region X", "region", "specialist_outpatient", "1280"),
        ],
    )
    person = _table(
        "person",
        ["person_key", "sex", "birth_year", "municipality", "death_date"],
        [
            ("p1", "M", 1980, "1280", None),
            ("p2", "F", 1990, "1280", None),
            ("p3", "M", 2000, "1281", None),
            ("p4", "F", 1970, "1283", None),
            ("p5", "M", 1985, "1280", None),
            ("p6", "F", 1995, "1281", "2022-06-01"),
            ("p7", "M", 1960, "9999", None),
            ("p8", "F", 2005, None, None),
            ("p9", "M", 1988, "1280", None),
        ],
    )
    contact = _table(
        "contact",
        ["contact_id", "person_key", "unit_id", "date", "end_date", "contact_type", "main_dx",
         "dx_group", "psych_groups"],
        [
            ("c1", "p1", "U1", "2021-03-01", None, "outpatient", "F102", "F10", None),
            ("c2", "p1", "U2", "2021-05-01", None, "outpatient", "F102", "F10", None),
            ("c3", "p2", "U1", "2021-04-01", None, "outpatient", "F101", "F10", "mood"),
            ("c4", "p3", "U1", "2021-06-01", None, "outpatient", "F122", "F12", None),
            ("c5", "p4", "U3", "2021-02-01", "2021-02-10", "inpatient", "F103", "F10", None),
            ("c6", "p4", "U1", "2021-02-15", None, "outpatient", "F102", "F10", None),
            ("c7", "p5", "U5", "2021-01-10", None, "outpatient", "F112", "F11", None),
            ("c8", "p6", "U5", "2021-01-20", None, "outpatient", "F112", "F11", "anxiety"),
            ("c9", "p7", "U1", "2021-07-01", None, "outpatient", None, None, None),
            ("c10", "p2", "U6", "2021-09-01", None, "outpatient", "F32", None, None),
            ("c11", "p8", "U4", "2021-08-01", None, "social_services", None, None, None),
            ("c12", "p1", "U3", "2021-10-01", "2021-10-05", "inpatient", "F102", "F10", None),
            ("c13", "p1", "U4", "2021-11-20", None, "social_services", None, None, None),
            ("c14", "p1", "U1", "2022-02-01", None, "outpatient", "F102", "F10", None),
            ("c15", "p3", "U1", "2022-03-01", None, "outpatient", "F122", "F12", None),
            ("c16", "p5", "U5", "2022-01-15", None, "outpatient", "F112", "F11", None),
            ("c17", "p6", "U5", "2022-02-01", None, "outpatient", "F112", "F11", None),
            ("c18", "p7", "U2", "2022-04-01", None, "outpatient", "F192", "F19", None),
            ("c19", "p4", "U3", "2022-12-20", "2022-12-28", "inpatient", "F102", "F10", None),
            ("c20", "p9", "U5", "2022-05-01", None, "outpatient", "F112", "F11", None),
        ],
    )
    procedure = _table(
        "procedure",
        ["person_key", "unit_id", "date", "contact_id", "kva_code"],
        [
            ("p1", "U1", "2021-03-01", "c1", "AU119"),
            ("p2", "U1", "2021-04-01", None, "AU119"),  # no contact id: same person/unit/day as c3
            ("p3", "U1", "2021-06-02", None, "AU119"),  # the day after c4: no link
            ("p1", "U2", "2021-05-01", "c2", "DU119"),
            ("p2", "U6", "2021-09-01", "c10", "AU124"),  # on a psychiatric contact: not counted
            ("p1", "U1", "2022-02-01", "c14", "AU119"),
            ("p6", "U5", "2021-01-20", "c8", "DU119"),
            ("p3", "U1", "2022-03-01", "c15", "DU119"),
        ],
    )
    medication = _table(
        "medication",
        ["person_key", "unit_id", "atc", "start_date", "end_date"],
        [
            ("p1", "U1", "N07BB04", "2020-06-01", "2021-01-31"),
            ("p4", "U1", "N02AX02", "2021-01-01", "2021-12-31"),
            ("p2", "U1", "N07BB03", "2021-05-01", None),
            ("p4", "U3", "N07BB01", "2022-12-29", None),
            ("p5", "U5", "N02AA01", "2021-01-01", "2021-02-01"),
            ("p6", "U5", "N07BC02", "2021-01-20", "2022-06-01"),
            ("p9", "U5", "N02AA01", "2022-04-01", None),
        ],
    )
    enrolment = _table(
        "enrolment",
        ["enrolment_id", "person_key", "programme", "unit_id", "start_date", "end_date",
         "end_reason"],
        [
            ("e1", "p5", "laro", "U5", "2020-05-01", None, None),
            ("e2", "p6", "laro", "U5", "2021-03-01", "2022-06-01", "deceased"),
            ("e3", "p9", "laro", "U5", "2021-02-01", "2021-08-01", "dropout"),
            ("e4", "p3", "laro", "U5", "2021-06-01", "2022-01-15", "transferred"),
            ("e5", "p7", "laro", "U5", "2022-03-01", "2022-09-01", "involuntary_discharge"),
            ("e6", "p2", "vip-beroende", "U1", "2021-01-10", "2021-12-31", "completed"),
            ("e7", "p1", "vip-beroende", "U1", "2021-02-01", None, None),
        ],
    )
    assessment = _table(
        "assessment",
        ["person_key", "unit_id", "instrument", "stage", "date", "score"],
        [
            ("p1", "U1", "audit", "intake", "2021-02-01", 20.0),
            ("p1", "U1", "audit", "month-6", "2021-08-05", 14.0),
            ("p1", "U1", "audit", "month-12", "2022-02-03", 10.0),
            ("p1", "U1", "audit-c", "intake", "2021-02-01", 8.0),
            ("p1", "U1", "audit-c", "month-6", "2021-08-05", 4.0),
            ("p2", "U1", "audit-c", "intake", "2021-01-12", 6.0),
            ("p2", "U1", "audit-c", "month-6", "2021-07-15", 7.0),
            ("p4", "U1", "audit", "intake", "2021-02-12", 25.0),
            ("p4", "U1", "audit-c", "month-6", "2021-08-10", 5.0),
            ("p4", "U1", "audit", "month-6", "2021-08-12", 25.0),
            ("p3", "U1", "audit", "intake", "2021-06-01", 12.0),
            ("p3", "U1", "audit", "month-6", "2021-12-01", 8.0),
        ],
    )
    return {
        "person": person,
        "unit": unit,
        "contact": contact,
        "procedure": procedure,
        "medication": medication,
        "enrolment": enrolment,
        "assessment": assessment,
    }


def example_population() -> pa.Table:
    """Inhabitants for the example: 1280 has 1000 M + 1000 F, 1281 500 + 500, both years."""
    rows = [
        (m, y, s, n)
        for y in YEARS
        for m, n in (("1280", 1000), ("1281", 500))
        for s in ("M", "F")
    ]
    return pa.table(
        {
            "municipality": [r[0] for r in rows],
            "year": pa.array([r[1] for r in rows], pa.int64()),
            "sex": [r[2] for r in rows],
            "population": pa.array([r[3] for r in rows], pa.int64()),
        }
    )
