"""Statistics against published values (Wilson 1927 / Newcombe 1998, Spiegelhalter 2005)."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from utfall.analytics.stats import (
    compare_periods,
    funnel,
    funnel_limit,
    newcombe_difference,
    trend,
    wilson,
    z_for,
)


@pytest.mark.parametrize(
    ("r", "n", "low", "high"),
    [
        # Newcombe RG (1998) Stat Med 17:857, Table II, method 3 (Wilson score, no CC)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe_1998(r: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson([r], [n])
    assert round(float(lo[0]), 4) == low
    assert round(float(hi[0]), 4) == high


def test_wilson_vectorised_and_empty_denominator() -> None:
    lo, hi = wilson([0, 5, 3], [0, 10, 3])
    assert math.isnan(lo[0]) and math.isnan(hi[0])
    assert lo[1] < 0.5 < hi[1]
    assert hi[2] == 1.0


def test_newcombe_difference_published_example() -> None:
    # Newcombe RG (1998) Stat Med 17:873, example (a): 56/70 − 48/80 = 0.2000,
    # method 10 (hybrid score) 0.0524 to 0.3339.
    d, lo, hi = newcombe_difference(48, 80, 56, 70)
    assert d == pytest.approx(0.2)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)


def test_funnel_z_values() -> None:
    # Spiegelhalter (2005): 95 % ≈ 2 SD (1.96), 99.8 % ≈ 3 SD (3.09)
    assert z_for(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_for(0.998) == pytest.approx(3.090232, abs=1e-6)


def test_funnel_limit_exact_binomial_by_hand() -> None:
    # Bin(100, 0.5): P(X<=39) = 0.017600, P(X<=40) = 0.028444 (binomial tables).
    # 2.5 % quantile r = 40; alpha = (0.028444 − 0.025)/(0.028444 − 0.017600) = 0.3176;
    # limit = (40 − 0.3176)/100 = 0.3968 (Spiegelhalter 2005, appendix A.1.1).
    assert funnel_limit(0.5, 100, 0.025) == pytest.approx(0.3968, abs=1e-4)
    # 97.5 %: P(X<=59) = 0.971556, P(X<=60) = 0.982400 -> r = 60,
    # alpha = (0.982400 − 0.975)/(0.982400 − 0.971556) = 0.6824 -> (60 − 0.6824)/100 = 0.5932
    assert funnel_limit(0.5, 100, 0.975) == pytest.approx(0.5932, abs=1e-4)
    # normal approximation: 0.5 − 1.96·√(0.25/100) = 0.402
    assert funnel_limit(0.5, 100, 0.025, exact=False) == pytest.approx(0.40200, abs=1e-4)
    # limits narrow as n grows and approach the normal approximation
    assert funnel_limit(0.3, 10_000, 0.001) == pytest.approx(
        funnel_limit(0.3, 10_000, 0.001, exact=False), abs=5e-4
    )


def test_funnel_limit_degenerate_regional_proportion() -> None:
    # p0 = 1: Bin(n, 1) is a point mass at n, so both limits are 1 (was 0.999 for 1/1)
    assert funnel_limit(1.0, 1, 0.999) == 1.0
    assert funnel_limit(1.0, 20, 0.001) == 1.0
    # p0 = 0 symmetric
    assert funnel_limit(0.0, 1, 0.001) == 0.0
    assert funnel_limit(0.0, 20, 0.999) == 0.0
    res = _results([
        ("x", "2021", "total", "", 3, 3, 1.0, None, None),
        ("x", "2021", "unit_id", "A", 1, 1, 1.0, None, None),
        ("y", "2021", "total", "", 0, 3, 0.0, None, None),
        ("y", "2021", "unit_id", "A", 0, 1, 0.0, None, None),
    ])
    assert [r["flag"] for r in funnel(res).to_pylist()] == ["", ""]


def _results(rows: list[tuple]) -> pa.Table:
    cols = ["indicator_id", "period", "breakdown", "level", "numerator", "denominator", "value",
            "ci_low", "ci_high"]
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    return pa.table(data)


def test_funnel_flags_units_outside() -> None:
    # region 500/1000 = 0.5. Unit A 30/100 is far below (99.8 % low limit ≈ 0.35);
    # unit B 59/100 is inside the 95 % limits (0.3968–0.5932); unit C 61/100 is above the
    # 95 % but below the 99.8 % upper limit.
    res = _results([
        ("x", "2021", "total", "", 500, 1000, 0.5, None, None),
        ("x", "2021", "unit_id", "A", 30, 100, 0.3, None, None),
        ("x", "2021", "unit_id", "B", 59, 100, 0.59, None, None),
        ("x", "2021", "unit_id", "C", 61, 100, 0.61, None, None),
    ])
    flags = {r["level"]: r["flag"] for r in funnel(res).to_pylist()}
    assert flags == {"A": "low_998", "B": "", "C": "high_95"}


def test_trend_slope_per_year() -> None:
    res = _results([
        ("x", "2019", "total", "", 10, 100, 0.10, None, None),
        ("x", "2020", "total", "", 12, 100, 0.12, None, None),
        ("x", "2021", "total", "", 14, 100, 0.14, None, None),
    ])
    (row,) = trend(res).to_pylist()
    assert row["slope_per_year"] == pytest.approx(0.02)  # +2 percentage points a year
    assert (row["first_period"], row["last_period"], row["n_periods"]) == ("2019", "2021", 3)


def test_compare_periods_side_by_side() -> None:
    # DOMAIN §6: F11 persons 1476 (2017) → 1615 (2021): +9.4 %
    res = _results([
        ("n", "2017", "dx_group", "F11", 1476, None, 1476.0, None, None),
        ("n", "2021", "dx_group", "F11", 1615, None, 1615.0, None, None),
        ("p", "2017", "total", "", 48, 80, 0.6, 0.49, 0.7),
        ("p", "2021", "total", "", 56, 70, 0.8, 0.69, 0.88),
    ])
    rows = {r["indicator_id"]: r for r in compare_periods(res, "2017", "2021").to_pylist()}
    assert rows["n"]["change"] == 139
    assert rows["n"]["relative_change"] == pytest.approx(0.0942, abs=1e-4)
    assert rows["p"]["change"] == pytest.approx(0.2)
    assert round(rows["p"]["change_ci_low"], 4) == 0.0524


@given(st.integers(min_value=1, max_value=100_000), st.data())
def test_wilson_properties(n: int, data) -> None:
    r = data.draw(st.integers(min_value=0, max_value=n))
    lo, hi = wilson([r], [n])
    p = r / n
    assert 0.0 <= lo[0] <= p + 1e-12
    assert p - 1e-12 <= hi[0] <= 1.0
    # symmetry: the interval of n − r failures mirrors that of r successes
    lo2, hi2 = wilson([n - r], [n])
    assert lo[0] == pytest.approx(1 - hi2[0], abs=1e-9)
    assert hi[0] == pytest.approx(1 - lo2[0], abs=1e-9)
