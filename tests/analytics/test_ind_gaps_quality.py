"""Gap analysis and data-quality checks on the hand-made example."""

from __future__ import annotations

import pytest

from utfall.analytics.example import AS_OF, YEARS, example_tables
from utfall.analytics.executor.backends import duckdb_tables
from utfall.analytics.executor.run import compute_catalogue
from utfall.analytics.gaps import gap_analysis
from utfall.analytics.quality import QualityThresholds, data_quality, quality_for


@pytest.fixture(scope="module")
def tables():
    return duckdb_tables(example_tables())


def test_gap_analysis_per_unit(tables) -> None:
    res = compute_catalogue(tables, indicators=["kva_au119", "kva_du119", "laro_retention_12m"],
                            breakdowns=["total", "unit_id"], years=YEARS, as_of=AS_OF)
    gaps = {(r["indicator_id"], r["period"], r["level"]): r
            for r in gap_analysis(res).to_pylist()}
    # AU119 (target 0.5, priority 1), U3 2021: 0 of 2 persons -> gap 50 pp, 1 more person.
    g = gaps[("kva_au119", "2021", "U3")]
    assert (g["target"], g["target_source"], g["priority"]) == (0.5, "catalogue", 1)
    assert g["gap_pp"] == pytest.approx(50.0)
    assert g["gap_persons"] == 1
    # U1 2021: 2 of 4 = target reached -> no gap.
    assert gaps[("kva_au119", "2021", "U1")]["gap_persons"] == 0
    # DU119 has priority 2 but no target: the regional value 2/6 is the target.
    # U1 2021 (p1 p2 p3 p4, none with DU119 on a U1 contact): ceil(1/3 * 4 − 0) = 2 persons.
    g = gaps[("kva_du119", "2021", "U1")]
    assert g["target_source"] == "regional"
    assert g["target"] == pytest.approx(1 / 3)
    assert g["gap_persons"] == 2
    assert g["gap_pp"] == pytest.approx(100 / 3)
    # Retention (target 0.7): U5 2021 2 of 3 -> ceil(2.1 − 2) = 1 person, 3.33 pp.
    g = gaps[("laro_retention_12m", "2021", "U5")]
    assert g["gap_persons"] == 1
    assert g["gap_pp"] == pytest.approx(70 - 200 / 3)


def test_data_quality_checks(tables) -> None:
    q = data_quality(tables, years=YEARS, thresholds=QualityThresholds(min_persons=1))
    rows = {(r["check"], r["period"], r["unit_id"]): r for r in q.to_pylist()}
    # Coding completeness 2021, U1: substance persons p1 p2 p3 p4; KVÅ registered by U1 in
    # 2021 for p1 (AU119 03-01), p2 (AU119), p3 (AU119 06-02, unlinked but still a code) ->
    # only p4 uncoded -> 1/4.
    r = rows[("uncoded_persons", "2021", "U1")]
    assert (r["numerator"], r["denominator"]) == (1, 4)
    assert r["flag"] is False
    # U3 2021: p1 and p4 (inpatient), nothing coded at U3 -> 2/2, flagged.
    r = rows[("uncoded_persons", "2021", "U3")]
    assert (r["numerator"], r["denominator"], r["flag"]) == (2, 2, True)
    # Missing main dx 2021, U1: c1 c3 c4 c6 c9 -> c9 lacks it -> 1/5 = 0.2 (flag at >= 0.2).
    r = rows[("missing_main_dx", "2021", "U1")]
    assert (r["numerator"], r["denominator"], r["flag"]) == (1, 5, True)
    # Social-services contacts are not held to a main diagnosis: no U4 row.
    assert ("missing_main_dx", "2021", "U4") not in rows
    # Volume: U1 had 5 contacts in 2021 and 2 in 2022 -> −60 %, flagged (threshold 30 %).
    r = rows[("volume_drop", "2022", "U1")]
    assert r["value"] == pytest.approx(-0.6) and r["flag"] is True
    # Coverage 2022: U1 U2 U3 U5 reported; U4 and U6 did not -> 4/6.
    r = rows[("coverage", "2022", "")]
    assert (r["numerator"], r["denominator"], r["flag"]) == (4, 6, True)
    assert rows[("coverage", "2022", "U6")]["flag"] is True
    # shown next to an indicator
    affects = quality_for("kva_au119", q)
    assert set(affects["check"].to_pylist()) == {
        "uncoded_persons", "missing_main_dx", "volume_drop", "coverage"
    }
    assert "uncoded_persons" not in set(quality_for("laro_persons", q)["check"].to_pylist())
