"""Fast path (engine) == single expressions (compiler) == an independent oracle.

The oracle (``tests/analytics/oracle``) is plain Python written from
``docs/indicators.md``; Hypothesis builds small extracts full of the awkward
cases (nulls, orphans, duplicate contact ids, procedures linked by id and by
person/unit/date, year boundaries, codes outside F10–F19, overlapping
enrolments) and every indicator × breakdown must agree on all three paths.

``UTFALL_ORACLE_EXAMPLES`` sets the number of generated examples (default 8, each
merging 1–4 scenarios, derandomised so ``make test`` is reproducible; e.g. 200 for a
longer random run).
"""

from __future__ import annotations

import datetime as dt
import os

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utfall.analytics.example import AS_OF, YEARS, example_population, example_tables
from utfall.analytics.executor.backends import duckdb_tables
from utfall.analytics.executor.run import compile_catalogue, compute_catalogue, finalise
from utfall.analytics.schema import TABLES, conform
from utfall.analytics.semantics.catalogue import ALL_BREAKDOWNS, load_catalogue

from .oracle.evaluator import Band, evaluate

EXAMPLES = int(os.environ.get("UTFALL_ORACLE_EXAMPLES", "8"))
BANDS = (Band("0-12", 0, 12), Band("13-17", 13, 17), Band("18-24", 18, 24),
         Band("25-44", 25, 44), Band("45-64", 45, 64), Band("65+", 65, None))
D = dt.date
CON = None


def _con():
    global CON
    if CON is None:
        CON = ibis.duckdb.connect()
    return CON


def _raw(results: pa.Table) -> dict[tuple, tuple]:
    catalogue = {i.id: i for i in load_catalogue().indicators}
    out = {}
    for r in results.to_pylist():
        ind = catalogue[r["indicator_id"]]
        statistic = (ind.kind == "change" and ind.change.statistic == "mean_change") or (
            ind.kind == "time_to" and ind.statistic == "median")
        stat = round(r["value"], 9) if statistic and r["value"] is not None else None
        out[(r["indicator_id"], r["period"], r["breakdown"], r["level"])] = (
            r["numerator"], r["denominator"], stat)
    return out


def _rows(tables: dict[str, pa.Table]) -> dict[str, list[dict]]:
    return {name: t.to_pylist() for name, t in tables.items()}


def _check(tables: dict[str, pa.Table], years, as_of, population: pa.Table) -> dict:
    catalogue = load_catalogue()
    want = evaluate(_rows(tables), catalogue.indicators, years=years, as_of=as_of,
                    age_bands=BANDS, population=population.to_pylist(),
                    breakdowns=ALL_BREAKDOWNS)
    engine_tables = duckdb_tables(tables, con=_con())
    for materialize in (True, False):
        got = _raw(compute_catalogue(engine_tables, years=years, as_of=as_of,
                                     population=population, materialize=materialize))
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        assert not missing and not extra, (materialize, missing, extra)
        diff = [(k, got[k], want[k]) for k in sorted(want) if got[k] != want[k]][:5]
        assert not diff, (materialize, diff)
    return want


def test_oracle_agrees_on_the_hand_worked_example() -> None:
    want = _check(example_tables(), YEARS, AS_OF, example_population())
    # spot checks from test_ind_catalogue (worked by hand)
    assert want[("kva_au119", "2021", "total", "")] == (2, 6, None)
    assert want[("followup_12m_in_window", "2022", "total", "")] == (1, 2, None)
    assert want[("continuity_median_days", "2021", "total", "")] == (None, 2, 25.5)


# ------------------------------------------------------------------------ generator
# Executing the catalogue costs mostly Ibis compilation (seconds of CPU), so one
# generated example merges 1–4 independent scenarios with disjoint keys (a larger
# extract covers several awkward cases at the cost of one run), and the single
# expressions are compiled to SQL once and replayed on each example's data.

CUT_OFF = D(2022, 12, 31)
GEN_YEARS = (2021, 2022)
_days = dt.timedelta
BOUNDARY_DATES = [
    D(2020, 12, 31), D(2021, 1, 1), D(2021, 12, 31), D(2022, 1, 1), CUT_OFF,
    CUT_OFF - _days(7), CUT_OFF - _days(8),  # discharge: 7-day window closes on the cut-off
    CUT_OFF - _days(30), CUT_OFF - _days(31),
    CUT_OFF - _days(212), CUT_OFF - _days(211),  # start: 6-month window (182+30) closes
    CUT_OFF - _days(425), CUT_OFF - _days(424),  # start: 12-month window (365+60) closes
    CUT_OFF - _days(365), CUT_OFF - _days(364),  # start: 12-month retention observable
]


def _dates():
    return st.one_of(st.sampled_from(BOUNDARY_DATES),
                     st.dates(min_value=D(2020, 6, 1), max_value=CUT_OFF))


def _maybe(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def scenario(draw, tag: str) -> dict[str, list[dict]]:
    """One small extract; every key starts with ``tag`` (disjoint from other scenarios)."""
    persons = [f"{tag}p{i}" for i in range(draw(st.integers(1, 5)))]
    people = [
        {"person_key": p,
         "sex": draw(st.sampled_from(["M", "F", None])),
         "birth_year": draw(st.sampled_from([1950, 1980, 2000, 2008, None])),
         "municipality": draw(st.sampled_from(["1280", "1281", "9999", None])),
         "death_date": draw(_maybe(_dates()))}
        for p in persons
    ]
    keys = st.sampled_from([*persons, f"{tag}orphan"])  # orphan: not in the person table
    # U9 is missing from the unit table; None is a missing unit
    units = st.sampled_from([f"{tag}U1", f"{tag}U2", f"{tag}U3", f"{tag}U9", None])
    unit = [{"unit_id": f"{tag}{u}", "organisation": o, "principal_type": t, "care_level": c}
            for u, o, t, c in [("U1", "Region X", "region", "outpatient"),
                               ("U2", "Region X", "region", None),
                               ("U3", None, "private", "laro")]]
    dx = st.sampled_from(["F102", "F112", "F119", "F120", "F199", "F171", "F322", "F200",
                          "F609", "J45", None])  # F17 (tobacco), psychiatric, outside F
    ids = st.sampled_from([f"{tag}c{i}" for i in range(5)] + [None])  # duplicates, nulls
    contacts = []
    for _ in range(draw(st.integers(0, 8))):
        main = draw(dx)
        date = draw(_maybe(_dates()))
        end = None
        if date is not None and draw(st.booleans()):
            end = min(CUT_OFF, date + _days(draw(st.integers(0, 20))))
        contacts.append({
            "contact_id": draw(ids), "person_key": draw(keys), "unit_id": draw(units),
            "date": date, "end_date": end,
            "contact_type": draw(st.sampled_from(
                ["outpatient", "inpatient", "inpatient", "social_services", None])),
            "main_dx": main,
            "dx_group": main[:3] if main and main.startswith("F1") else None,
            "psych_groups": draw(st.sampled_from([None, "", "mood", "anxiety;adhd"])),
        })
    procedures = []
    for _ in range(draw(st.integers(0, 5))):
        on = draw(st.sampled_from(contacts)) if contacts and draw(st.booleans()) else None
        procedures.append({
            # by person/unit/date of a contact, or anything (orphans, other days)
            "person_key": on["person_key"] if on else draw(keys),
            "unit_id": on["unit_id"] if on else draw(units),
            "date": on["date"] if on and draw(st.booleans()) else draw(_maybe(_dates())),
            # linked by id (maybe to a duplicate id, or to no contact: c9), or not linked
            "contact_id": draw(st.sampled_from([f"{tag}c0", f"{tag}c1", f"{tag}c9", None])),
            "kva_code": draw(st.sampled_from(["AU119", "DU119", "AU124", "AU118"])),
        })
    medications = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(_maybe(_dates()))
        medications.append({
            "person_key": draw(keys), "unit_id": f"{tag}U1",
            "atc": draw(st.sampled_from(["N07BB01", "N07BB04", "N07BC02", "N07BC51",
                                         "N02AA01"])),
            "start_date": start,
            "end_date": start + _days(draw(st.integers(0, 400)))
            if start and draw(st.booleans()) else None,
        })
    enrolments = []
    for i in range(draw(st.integers(0, 5))):
        start = draw(_maybe(_dates()))
        end = (min(CUT_OFF, start + _days(draw(st.integers(0, 500))))
               if start and draw(st.booleans()) else None)
        enrolments.append({
            # persons are few, so enrolments of one person often overlap
            "enrolment_id": f"{tag}e{i}", "person_key": draw(keys),
            "programme": draw(st.sampled_from(["laro", "laro", "vip-beroende", "rop"])),
            "unit_id": draw(units), "start_date": start, "end_date": end,
            "end_reason": draw(st.sampled_from(
                [None, "completed", "dropout", "transferred", "deceased",
                 "involuntary_discharge", "other"])) if end else None,
        })
    assessments = [
        {"person_key": draw(keys), "unit_id": f"{tag}U{draw(st.integers(1, 2))}",
         "instrument": draw(st.sampled_from(["audit", "audit-c"])),
         "stage": draw(st.sampled_from(["intake", "month-6", "month-12", "review"])),
         "date": draw(_dates()), "score": draw(_maybe(st.integers(0, 12).map(float)))}
        for _ in range(draw(st.integers(0, 6)))
    ]
    # rows built around others, so the rarer numerators happen: a follow-up near an
    # enrolment's due date, an intake/follow-up pair with an F10 contact in the intake
    # year, a contact some days after an inpatient discharge
    for e in enrolments:
        if e["start_date"] and draw(st.booleans()):
            stage, offset = draw(st.sampled_from([("month-6", 182), ("month-12", 365)]))
            day = e["start_date"] + _days(offset + draw(st.integers(-35, 65)))
            assessments.append({"person_key": e["person_key"], "unit_id": f"{tag}U1",
                                "instrument": "audit", "stage": stage,
                                "date": min(day, CUT_OFF), "score": 5.0})
    for _ in range(draw(st.integers(0, 2))):
        person, day = draw(keys), draw(_dates())
        instrument = draw(st.sampled_from(["audit", "audit-c"]))
        for stage, when in (("intake", day), (draw(st.sampled_from(["month-6", "month-12"])),
                                              day + _days(draw(st.integers(0, 400))))):
            assessments.append({"person_key": person, "unit_id": f"{tag}U{draw(st.integers(1, 2))}",
                                "instrument": instrument, "stage": stage,
                                "date": min(when, CUT_OFF),
                                "score": float(draw(st.integers(0, 12)))})
        if draw(st.booleans()):
            contacts.append({"contact_id": draw(ids), "person_key": person, "unit_id": f"{tag}U1",
                             "date": D(day.year, 6, 1), "end_date": None,
                             "contact_type": "outpatient", "main_dx": "F102", "dx_group": "F10",
                             "psych_groups": None})
    for c in [c for c in contacts if c["end_date"] is not None]:
        if draw(st.booleans()):
            day = c["end_date"] + _days(draw(st.integers(0, 40)))
            contacts.append({"contact_id": draw(ids), "person_key": c["person_key"],
                             "unit_id": draw(units), "date": min(day, CUT_OFF), "end_date": None,
                             "contact_type": draw(st.sampled_from(["outpatient",
                                                                   "social_services"])),
                             "main_dx": draw(dx), "dx_group": None, "psych_groups": None})
    for c in contacts:  # dx_group follows main_dx
        main = c["main_dx"]
        c["dx_group"] = main[:3] if main and main.startswith("F1") else None
    return {"person": people, "unit": unit, "contact": contacts, "procedure": procedures,
            "medication": medications, "enrolment": enrolments, "assessment": assessments}


@st.composite
def extracts(draw) -> dict[str, pa.Table]:
    merged: dict[str, list[dict]] = {name: [] for name in TABLES}
    for k in range(draw(st.integers(1, 4))):
        for name, rows in draw(scenario(f"s{k}")).items():
            merged[name].extend(rows)
    return {name: conform(name, pa.Table.from_pylist(rows)) if rows
            else TABLES[name].empty_table() for name, rows in merged.items()}


class SinglePath:
    """The compiler's single expressions, compiled to SQL once and replayed on the shared
    connection after each example's data replaces the canonical views."""

    def __init__(self) -> None:
        self.sql: dict[str, str] | None = None

    def run(self, tables: dict[str, pa.Table]) -> pa.Table:
        con = _con()
        engine_tables = duckdb_tables(tables, con=con)
        if self.sql is None:
            exprs = compile_catalogue(engine_tables, breakdowns=ALL_BREAKDOWNS,
                                      years=GEN_YEARS, as_of=CUT_OFF,
                                      population=example_population())
            self.sql = {i: str(ibis.to_sql(e, dialect="duckdb")) for i, e in exprs.items()}
        parts = [con.con.sql(sql).to_arrow_table() for sql in self.sql.values()]
        raw = pa.concat_tables([p.cast(parts[0].schema) for p in parts])
        return finalise(raw, load_catalogue())


SINGLE = SinglePath()


@pytest.mark.slow  # generative sweep: the slow lane (make test-slow)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 10,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(extracts())
def test_three_paths_agree_on_generated_extracts(tables: dict[str, pa.Table]) -> None:
    want = evaluate(_rows(tables), load_catalogue().indicators, years=GEN_YEARS,
                    as_of=CUT_OFF, age_bands=BANDS, population=example_population().to_pylist(),
                    breakdowns=ALL_BREAKDOWNS)
    single = _raw(SINGLE.run(tables))
    fast = _raw(compute_catalogue(duckdb_tables(tables, con=_con()), years=GEN_YEARS,
                                  as_of=CUT_OFF, population=example_population()))
    for name, got in (("single", single), ("fast", fast)):
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        assert not missing and not extra, (name, missing, extra)
        diff = [(k, got[k], want[k]) for k in sorted(want) if got[k] != want[k]][:5]
        assert not diff, (name, diff)


def test_window_closing_on_the_cut_off_day_counts() -> None:
    """A discharge exactly 7 days before the cut-off has a complete 7-day window (in the
    denominator); one 6 days before has not (left out)."""
    rows = [{"contact_id": f"c{k}", "person_key": "p", "unit_id": "U1",
             "date": CUT_OFF - _days(k), "end_date": CUT_OFF - _days(k),
             "contact_type": "inpatient", "main_dx": "F102", "dx_group": "F10"}
            for k in (6, 7)]
    tables = {
        "person": conform("person", pa.Table.from_pylist([{"person_key": "p"}])),
        "unit": conform("unit", pa.Table.from_pylist([{"unit_id": "U1"}])),
        "contact": conform("contact", pa.Table.from_pylist(rows)),
    }
    want = evaluate(_rows(tables), load_catalogue().indicators, years=(2022,), as_of=CUT_OFF,
                    age_bands=BANDS, population=[], breakdowns=["total"])
    assert want[("continuity_within_7d", "2022", "total", "")] == (0, 1, None)
    got = compute_catalogue(duckdb_tables(tables, con=_con()), years=[2022], as_of=CUT_OFF,
                            indicators=["continuity_within_7d"], breakdowns=["total"])
    assert [(r["numerator"], r["denominator"]) for r in got.to_pylist()] == [(0, 1)]
