"""Every catalogue indicator on the hand-made example (utfall.analytics.example).

Expected numbers are worked out by hand from the rows of ``example.py``; the
comments give the reasoning. Data cut-off 2023-06-30, years 2021–2022.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
import yaml

from utfall.analytics.example import AS_OF, YEARS, example_population, example_tables
from utfall.analytics.executor.backends import duckdb_tables
from utfall.analytics.executor.run import (
    RESULT_SCHEMA,
    compute_catalogue,
    load_results,
    store_results,
)
from utfall.analytics.semantics.catalogue import build_catalogue, load_catalogue


@pytest.fixture(scope="module")
def results() -> pa.Table:
    tables = duckdb_tables(example_tables())
    return compute_catalogue(tables, years=YEARS, as_of=AS_OF, population=example_population())


@pytest.fixture(scope="module")
def cells(results: pa.Table) -> dict[tuple[str, str, str, str], dict]:
    return {
        (r["indicator_id"], r["period"], r["breakdown"], r["level"]): r
        for r in results.to_pylist()
    }


def nd(cells, ind: str, period: str, breakdown: str = "total", level: str = "") -> tuple:
    """(numerator, denominator) of one cell."""
    r = cells[(ind, period, breakdown, level)]
    return r["numerator"], r["denominator"]


def value(cells, ind: str, period: str, breakdown: str = "total", level: str = "") -> float:
    return cells[(ind, period, breakdown, level)]["value"]


def test_result_format(results: pa.Table) -> None:
    assert results.schema.equals(RESULT_SCHEMA)
    assert set(results["breakdown"].to_pylist()) <= {
        "total", "unit_id", "organisation", "principal_type", "care_level", "dx_group", "sex",
        "age_band", "municipality",
    }
    totals = results.filter(pa.compute.equal(results["breakdown"], "total"))
    assert set(totals["level"].to_pylist()) == {""}


def test_every_indicator_has_a_result(results: pa.Table) -> None:
    assert set(results["indicator_id"].to_pylist()) == set(load_catalogue().ids)


def test_kva_au119(cells) -> None:
    # 2021 persons with a substance main-dx contact: p1 p2 p3 p4 p5 p6 (p7's c9 has no dx,
    # c10 is F32, c11/c13 social services without dx) -> 6.
    # AU119: p1 via contact_id c1; p2 without contact_id but same person/unit/day as c3;
    # p3's code is the day after c4 -> no link. -> 2/6.
    assert nd(cells, "kva_au119", "2021") == (2, 6)
    # 2022: p1 p3 p4 p5 p6 p7 p9 -> 7; only p1 (c14) -> 1/7.
    assert nd(cells, "kva_au119", "2022") == (1, 7)
    # by unit 2021: U1 has p1 (c1), p2 (c3), p3 (c4), p4 (c6); coded p1, p2 -> 2/4.
    # U2 has p1 via c2, but the AU119 was on c1 at U1 -> 0/1.
    assert nd(cells, "kva_au119", "2021", "unit_id", "U1") == (2, 4)
    assert nd(cells, "kva_au119", "2021", "unit_id", "U2") == (0, 1)
    # by substance group 2021: F10 = p1 p2 p4 (2 coded); F12 = p3 (0).
    assert nd(cells, "kva_au119", "2021", "dx_group", "F10") == (2, 3)
    assert nd(cells, "kva_au119", "2021", "dx_group", "F12") == (0, 1)
    # by sex: M p1 p3 p5 (p1 coded); F p2 p4 p6 (p2 coded).
    assert nd(cells, "kva_au119", "2021", "sex", "M") == (1, 3)
    assert nd(cells, "kva_au119", "2021", "sex", "F") == (1, 3)
    # ages in 2021: p1 41, p2 31, p5 36, p6 26 -> 25-44 (p1 p2 coded); p3 21; p4 51.
    assert nd(cells, "kva_au119", "2021", "age_band", "25-44") == (2, 4)
    assert nd(cells, "kva_au119", "2021", "age_band", "18-24") == (0, 1)
    # organisation: U1/U3/U5 are Region X (all six persons); U2 is Klinik AB (p1).
    assert nd(cells, "kva_au119", "2021", "organisation", "Region X") == (2, 6)
    assert nd(cells, "kva_au119", "2021", "principal_type", "private") == (0, 1)
    # municipality of residence 2021: 1280 = p1 p2 p5.
    assert nd(cells, "kva_au119", "2021", "municipality", "1280") == (2, 3)


def test_kva_du119_and_au124(cells) -> None:
    # DU119: p1 on c2 (contact_id) and p6 on c8 -> 2/6; 2022: p3 on c15 -> 1/7.
    assert nd(cells, "kva_du119", "2021") == (2, 6)
    assert nd(cells, "kva_du119", "2022") == (1, 7)
    # AU124 was only registered on p2's psychiatric contact c10 (F32) -> not counted.
    assert nd(cells, "kva_au124", "2021") == (0, 6)


def test_persons_substance_dx(cells) -> None:
    assert value(cells, "persons_substance_dx", "2021") == 6
    assert value(cells, "persons_substance_dx", "2022") == 7
    assert value(cells, "persons_substance_dx", "2022", "dx_group", "F11") == 3  # p5 p6 p9


def test_alcohol_relapse_medication(cells) -> None:
    # F10.2 contacts 2021: p1 (c1, c2, c12) and p4 (c6; c5 is F10.3). p1's naltrexone runs
    # 2020-06-01..2021-01-31 (active in 2021); p4 has tramadol (N02AX) only; p2 has
    # acamprosate but F10.1 -> not in the population. -> 1/2.
    assert nd(cells, "alcohol_relapse_medication", "2021") == (1, 2)
    # 2022: p1 (c14) and p4 (c19); p4 starts disulfiram 2022-12-29 -> 1/2.
    assert nd(cells, "alcohol_relapse_medication", "2022") == (1, 2)
    assert nd(cells, "alcohol_relapse_medication", "2022", "unit_id", "U3") == (1, 1)


def test_laro_share_and_persons(cells) -> None:
    # F11.2 2021: p5 (LARO e1 ongoing) and p6 (methadone N07BC02) -> 2/2.
    assert nd(cells, "laro_opioid_dependence_treated", "2021") == (2, 2)
    # 2022: p5, p6 and p9; p9 has morphine (N02AA01) only - analgesics never count -> 2/3.
    assert nd(cells, "laro_opioid_dependence_treated", "2022") == (2, 3)
    # LARO active any day: 2021 e1 e2 e3 e4 (p5 p6 p9 p3); 2022 e1 e2 e4 e5 (p5 p6 p3 p7).
    assert value(cells, "laro_persons", "2021") == 4
    assert value(cells, "laro_persons", "2022") == 4


def test_laro_retention(cells) -> None:
    # Started 2021: e2 (457 days, then died -> retained), e3 (dropout after 181 days -> not),
    # e4 (transferred after 228 days -> not a failure). -> 2/3.
    assert nd(cells, "laro_retention_12m", "2021") == (2, 3)
    # Started 2022: e5 (involuntary discharge after 184 days). -> 0/1.
    assert nd(cells, "laro_retention_12m", "2022") == (0, 1)


def test_laro_discharges_by_reason(cells) -> None:
    # Ended 2021: e3 (dropout). Ended 2022: e2 deceased, e4 transferred, e5 involuntary.
    assert nd(cells, "laro_discharge.dropout", "2021") == (1, 1)
    assert nd(cells, "laro_discharge.deceased", "2022") == (1, 3)
    assert nd(cells, "laro_discharge.transferred", "2022") == (1, 3)
    assert nd(cells, "laro_discharge.involuntary", "2022") == (1, 3)
    assert nd(cells, "laro_discharge.completed", "2022") == (0, 3)
    assert nd(cells, "laro_discharge.other", "2021") == (0, 1)


def test_laro_deaths_and_completion(cells) -> None:
    # p6 died 2022-06-01 while enrolled in e2 -> 1 of the 4 persons (p5 p6 p3 p7) in 2022.
    assert nd(cells, "laro_deaths_in_treatment", "2021") == (0, 4)
    assert nd(cells, "laro_deaths_in_treatment", "2022") == (1, 4)
    # Completion-or-continuation 2021: e1 ongoing, e2 and e4 continue past year end
    # (continued treatment is NOT failure), e3 dropped out -> 3/4.
    assert nd(cells, "laro_completion_or_continuation", "2021") == (3, 4)
    # 2022: e1 ongoing, e4 transferred (good); e2 died, e5 involuntary -> 2/4.
    assert nd(cells, "laro_completion_or_continuation", "2022") == (2, 4)


def test_alcohol_change(cells) -> None:
    # p1: AUDIT 20 at intake, latest follow-up month-12 2022-02-03 = 10 -> improved, period
    #     2022, change -10 (p1's AUDIT-C pair is ignored: AUDIT is preferred).
    # p2: AUDIT-C 6 -> 7 (2021-07-15) -> worse, +1.
    # p4: AUDIT 25 -> AUDIT 25 (the AUDIT-C follow-up does not pair with AUDIT) -> 0.
    # p3: improved, but F12 (no F10 contact in the intake year) -> not in the population.
    assert nd(cells, "alcohol_reduced_use", "2021") == (0, 2)
    assert nd(cells, "alcohol_reduced_use", "2022") == (1, 1)
    assert value(cells, "alcohol_mean_change", "2021") == pytest.approx(0.5)  # (+1 + 0)/2
    assert value(cells, "alcohol_mean_change", "2022") == pytest.approx(-10.0)
    assert cells[("alcohol_mean_change", "2021", "total", "")]["numerator"] is None


def test_followup_in_window(cells) -> None:
    # Only programmes whose schedule has the stage (vip-beroende, rop; not LARO, whose
    # p3/e4 "hit" was an alcohol-stream assessment linked by person only).
    # 6 months = start + 182 days, +-30. Due 2021: e6 p2 due 07-11, month-6 07-15 (hit),
    # e7 p1 due 08-02, month-6 08-05 (hit) -> 2/2. Due 2022: none (e5 is LARO).
    assert nd(cells, "followup_6m_in_window", "2021") == (2, 2)
    assert ("followup_6m_in_window", "2022", "total", "") not in cells
    # 12 months = start + 365, -30/+60. Due 2022: e6 e7; only e7 (p1 month-12 2022-02-03,
    # due 2022-02-01) -> 1/2. Due 2021: only LARO's e1 -> no cell.
    assert ("followup_12m_in_window", "2021", "total", "") not in cells
    assert nd(cells, "followup_12m_in_window", "2022") == (1, 2)


def test_followup_programmes_schedule_the_stage() -> None:
    """An assessment_in_window indicator lists only programmes that schedule its stages."""
    from utfall.content import content_text, list_content

    stages: dict[str, set[str]] = {}
    for path in list_content("programmes"):
        doc = yaml.safe_load(content_text(path))
        stages[doc["id"]] = {s["id"] for s in doc.get("stages", [])}
    checked = 0
    for ind in load_catalogue().indicators:
        if ind.numerator and ind.numerator.event == "assessment_in_window":
            for prog in ind.population.programmes or []:
                assert set(ind.numerator.stages or []) <= stages[prog], (ind.id, prog)
                checked += 1
    assert checked >= 4
    assert "month-6" not in stages["laro"]


def test_deaths_count_persons_once() -> None:
    """One death during two overlapping LARO enrolments (two units) counts once in the
    total; each unit whose enrolment was ongoing counts the person."""
    from utfall.analytics.schema import conform

    d = dt.date
    enrolment = [
        ("a1", "q1", "laro", "U5", d(2021, 1, 1), None, None),
        ("a2", "q1", "laro", "U6", d(2021, 3, 1), d(2021, 9, 1), "deceased"),
        ("a3", "q2", "laro", "U5", d(2021, 2, 1), None, None),
        ("a4", "q3", "laro", "U6", d(2021, 1, 1), d(2021, 4, 1), "dropout"),
        ("a5", "q3", "laro", "U5", d(2021, 5, 1), None, None),  # died at U5, not U6's a4
    ]
    cols = ["enrolment_id", "person_key", "programme", "unit_id", "start_date", "end_date",
            "end_reason"]
    data = {
        "person": conform("person", pa.Table.from_pylist([
            {"person_key": "q1", "death_date": d(2021, 9, 1)},
            {"person_key": "q2"},
            {"person_key": "q3", "death_date": d(2021, 10, 1)},
        ])),
        "unit": conform("unit", pa.Table.from_pylist([{"unit_id": "U5"}, {"unit_id": "U6"}])),
        "enrolment": conform("enrolment", pa.Table.from_pylist(
            [dict(zip(cols, r, strict=True)) for r in enrolment])),
    }
    for materialize in (True, False):
        res = compute_catalogue(duckdb_tables(data), indicators=["laro_deaths_in_treatment"],
                                breakdowns=["total", "unit_id"], years=[2021],
                                as_of=d(2021, 12, 31), materialize=materialize)
        got = {r["level"]: (r["numerator"], r["denominator"]) for r in res.to_pylist()}
        assert got == {"": (2, 3), "U5": (2, 3), "U6": (1, 2)}


def test_cooccurring_psych(cells) -> None:
    # Substance contacts with a psychiatric group 2021: c3 (p2, mood), c8 (p6, anxiety).
    # p2 also had c10 with main dx F32 in 2021 -> treated in parallel; p6 not. -> 1/2.
    assert nd(cells, "cooccurring_psych_parallel", "2021") == (1, 2)
    assert nd(cells, "cooccurring_psych_parallel", "2021", "unit_id", "U1") == (1, 1)
    assert ("cooccurring_psych_parallel", "2022", "total", "") not in cells


def test_continuity(cells) -> None:
    # Discharges: c5 (p4, 2021-02-10) -> c6 outpatient 02-15 = 5 days;
    # c12 (p1, 2021-10-05) -> c13 social services 11-20 = 46 days;
    # c19 (p4, 2022-12-28) -> no later contact.
    assert value(cells, "continuity_median_days", "2021") == pytest.approx(25.5)
    assert nd(cells, "continuity_within_7d", "2021") == (1, 2)
    assert nd(cells, "continuity_within_30d", "2021") == (1, 2)
    assert nd(cells, "continuity_within_30d", "2022") == (0, 1)
    assert nd(cells, "continuity_within_7d", "2021", "unit_id", "U3") == (1, 2)


def test_rates(cells) -> None:
    # Residents (municipality in the population table 1280/1281): p1 p2 p5 p9 (1280),
    # p3 p6 (1281); 1500 M + 1500 F inhabitants each year.
    # 2021 substance dx (excl. F17): p1 p2 p3 p4 p5 p6 -> residents p1 p2 p3 p5 p6 = 5.
    assert nd(cells, "rate_substance_dx", "2021") == (5, 3000)
    assert value(cells, "rate_substance_dx", "2021") == pytest.approx(5 / 3000 * 100_000)
    assert nd(cells, "rate_substance_dx", "2021", "sex", "M") == (3, 1500)  # p1 p3 p5
    assert nd(cells, "rate_substance_dx", "2021", "sex", "F") == (2, 1500)  # p2 p6
    assert nd(cells, "rate_substance_dx", "2021", "municipality", "1281") == (2, 1000)
    # alcohol 2021: p1 p2 p4 -> p4 lives in 1283 (not in the table) -> 2.
    assert nd(cells, "rate_alcohol_dx", "2021") == (2, 3000)
    # a municipality of the population table without any resident case is a 0 cell
    assert nd(cells, "rate_alcohol_dx", "2021", "municipality", "1281") == (0, 1000)
    assert value(cells, "rate_alcohol_dx", "2021", "municipality", "1281") == 0.0
    # LARO 2022: p5 p6 p3 p7 -> p7 lives in 9999 -> 3.
    assert nd(cells, "rate_laro", "2022") == (3, 3000)
    assert ("rate_laro", "2022", "unit_id", "U5") not in cells  # no unit breakdown for rates


def test_wilson_interval_attached(cells) -> None:
    r = cells[("kva_au119", "2021", "total", "")]
    assert r["ci_low"] < r["value"] < r["ci_high"]
    assert cells[("persons_substance_dx", "2021", "total", "")]["ci_low"] is None


def test_age_bands_configurable() -> None:
    from utfall.analytics.semantics.compiler import parse_age_bands

    tables = duckdb_tables(example_tables())
    res = compute_catalogue(
        tables, indicators=["kva_au119"], breakdowns=["age_band"], years=[2021], as_of=AS_OF,
        age_bands=parse_age_bands("0-29,30-49,50+"),
    )
    got = {r["level"]: (r["numerator"], r["denominator"]) for r in res.to_pylist()}
    # ages 2021: p3 21, p6 26 | p1 41, p2 31, p5 36 | p4 51
    assert got == {"0-29": (0, 2), "30-49": (2, 3), "50+": (0, 1)}


def test_parquet_source_and_stored_results(tmp_path) -> None:
    import pyarrow.parquet as pq

    for name, table in example_tables().items():
        pq.write_table(table, tmp_path / f"{name}.parquet")
    res = compute_catalogue(duckdb_tables(tmp_path), indicators=["kva_au119"], years=YEARS,
                            as_of=AS_OF)
    assert res.num_rows > 0
    run = store_results(res, tmp_path / "runs", run_id="r1")
    back, meta = load_results(tmp_path / "runs")
    assert meta["run_id"] == "r1" and meta["catalogue_version"] == load_catalogue().version
    assert back.select(res.column_names).equals(res)
    assert (run / "results.parquet").exists()


def test_catalogue_validation_rejects_bad_definitions() -> None:
    bad = """
id: broken
kind: retention
title: {sv: a, en: b}
definition: {sv: a, en: b}
data_source: {sv: a, en: b}
population: {source: enrolment}
numerator: {event: retained}
"""
    with pytest.raises(ValueError, match=r"window\.days"):
        build_catalogue({"x.yaml": bad})
    with pytest.raises(ValueError):
        build_catalogue({"x.yaml": bad.replace("kind: retention", "kind: nonsense")})


def test_invariants(results: pa.Table) -> None:
    """Numerator ≤ denominator; no cell of a breakdown exceeds the total; proportions in 0–1."""
    catalogue = load_catalogue()
    totals = {
        (r["indicator_id"], r["period"]): r
        for r in results.to_pylist()
        if r["breakdown"] == "total"
    }
    for r in results.to_pylist():
        kind = catalogue.get(r["indicator_id"]).kind
        if kind in ("proportion", "retention") and r["denominator"]:
            assert 0 <= r["numerator"] <= r["denominator"]
            assert 0.0 <= r["value"] <= 1.0
            assert r["ci_low"] <= r["value"] <= r["ci_high"]
        tot = totals[(r["indicator_id"], r["period"])]
        if kind != "rate" and r["denominator"] is not None:
            assert r["denominator"] <= tot["denominator"]
        if r["numerator"] is not None and tot["numerator"] is not None:
            assert r["numerator"] <= tot["numerator"]
