"""Statistics for indicator results: Wilson intervals, funnel limits, trends, comparisons.

All functions are plain numpy/pyarrow on already aggregated counts, so they give
the same numbers whatever engine produced the counts.

References
----------
- Wilson EB (1927). Probable inference, the law of succession, and statistical
  inference. JASA 22:209–212.
- Newcombe RG (1998). Two-sided confidence intervals for the single proportion:
  comparison of seven methods. Stat Med 17:857–872 (method 3: Wilson score).
- Newcombe RG (1998). Interval estimation for the difference between independent
  proportions. Stat Med 17:873–890 (method 10: hybrid score).
- Spiegelhalter DJ (2005). Funnel plots for comparing institutional performance.
  Stat Med 24:1185–1202.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Z95 = NormalDist().inv_cdf(0.975)  # 1.959964…


def z_for(level: float) -> float:
    """Two-sided standard normal quantile for a confidence ``level`` (0.95 → 1.96)."""
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson(numerator, denominator, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (no continuity correction), vectorised.

    Returns ``(low, high)`` arrays; NaN where the denominator is 0 or missing.
    """
    r = np.asarray(numerator, dtype="float64")
    n = np.asarray(denominator, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = r / n
        z2 = z * z
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    low[(r == 0) & (n > 0)] = 0.0  # exact at the boundaries (no rounding residue)
    high[(r == n) & (n > 0)] = 1.0
    bad = ~(n > 0)
    low[bad] = np.nan
    high[bad] = np.nan
    return low, high


def newcombe_difference(r1, n1, r2, n2, z: float = Z95) -> tuple[float, float, float]:
    """Difference p2 − p1 of independent proportions with Newcombe's hybrid score interval."""
    p1, p2 = r1 / n1, r2 / n2
    (l1,), (u1,) = wilson([r1], [n1], z)
    (l2,), (u2,) = wilson([r2], [n2], z)
    d = p2 - p1
    low = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return d, low, high


def _table(rows: list[dict]) -> pa.Table:
    if not rows:
        return pa.table({"indicator_id": pa.array([], pa.string())})
    return pa.Table.from_pylist(rows)


# ------------------------------------------------------------------------- funnel plot


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X ≤ k) for X ~ Bin(n, p), summed in log space (exact enough for n ≤ 10⁶)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    lp, lq = math.log(p), math.log1p(-p)
    lg = math.lgamma
    base = lg(n + 1)
    terms = [base - lg(i + 1) - lg(n - i + 1) + i * lp + (n - i) * lq for i in range(k + 1)]
    m = max(terms)
    return min(1.0, math.exp(m) * sum(math.exp(t - m) for t in terms))


def _binom_quantile(q: float, n: int, p: float) -> int:
    """Smallest r with P(X ≤ r) ≥ q."""
    mean = n * p
    sd = math.sqrt(max(n * p * (1 - p), 1e-12))
    r = max(0, int(mean + NormalDist().inv_cdf(q) * sd) - 3)
    while r > 0 and _binom_cdf(r - 1, n, p) >= q:
        r -= 1
    while _binom_cdf(r, n, p) < q:
        r += 1
    return r


def funnel_limit(p0: float, n: int, q: float, *, exact: bool = True) -> float:
    """Funnel limit at tail probability ``q`` (e.g. 0.025 / 0.975) for a unit of size ``n``.

    ``exact`` follows Spiegelhalter (2005, appendix A.1.1): the binomial quantile
    ``r_q`` of Bin(n, p0), interpolated as ``(r_q − α)/n`` with
    ``α = (F(r_q) − q) / (F(r_q) − F(r_q − 1))``. Otherwise the normal approximation
    ``p0 ± z·√(p0(1−p0)/n)``.

    A regional proportion of exactly 0 or 1 makes Bin(n, p0) a point mass: every
    limit is ``p0`` itself, so a unit at ``p0`` (e.g. 1/1 when ``p0 = 1``) is never
    flagged, on either side (the interpolation would otherwise give ``(n − 1)/n``).
    """
    if n <= 0:
        return float("nan")
    if p0 <= 0.0 or p0 >= 1.0:
        return min(1.0, max(0.0, float(p0)))
    if not exact:
        z = NormalDist().inv_cdf(q)
        return min(1.0, max(0.0, p0 + z * math.sqrt(p0 * (1 - p0) / n)))
    r = _binom_quantile(q, n, p0)
    f_r = _binom_cdf(r, n, p0)
    f_r1 = _binom_cdf(r - 1, n, p0)
    alpha = (f_r - q) / (f_r - f_r1) if f_r > f_r1 else 0.0
    return min(1.0, max(0.0, (r - alpha) / n))


def funnel(
    results: pa.Table,
    *,
    breakdown: str = "unit_id",
    levels: Sequence[float] = (0.95, 0.998),
    exact: bool = True,
) -> pa.Table:
    """Funnel-plot limits around the regional (``total``) value, with outlier flags.

    For each proportion cell of ``breakdown`` the limits of the target value
    ``p0`` (the ``total`` row of the same indicator and period) at each level are
    added (``low_95``/``high_95``, ``low_998``/``high_998``) plus ``flag``:
    ``"high_998"``, ``"high_95"``, ``"low_95"``, ``"low_998"`` or ``""``.
    """
    rows = results.to_pylist()
    totals = {
        (r["indicator_id"], r["period"]): r
        for r in rows
        if r["breakdown"] == "total" and r["denominator"]
    }
    out = []
    for r in rows:
        if r["breakdown"] != breakdown or not r["denominator"] or r["numerator"] is None:
            continue
        tot = totals.get((r["indicator_id"], r["period"]))
        if tot is None or tot["numerator"] is None:
            continue
        p0 = tot["numerator"] / tot["denominator"]
        n = int(r["denominator"])
        value = r["numerator"] / n
        row = {
            "indicator_id": r["indicator_id"],
            "period": r["period"],
            "level": r["level"],
            "numerator": r["numerator"],
            "denominator": n,
            "value": value,
            "target": p0,
        }
        flag = ""
        for lev in sorted(levels):
            tag = f"{lev * 100:g}".replace(".", "")
            lo = funnel_limit(p0, n, (1 - lev) / 2, exact=exact)
            hi = funnel_limit(p0, n, 1 - (1 - lev) / 2, exact=exact)
            row[f"low_{tag}"] = lo
            row[f"high_{tag}"] = hi
            if value > hi:
                flag = f"high_{tag}"
            elif value < lo:
                flag = f"low_{tag}"
        row["flag"] = flag
        out.append(row)
    return _table(out)


# ------------------------------------------------------------------------------ trends


def trend(results: pa.Table, *, breakdown: str = "total") -> pa.Table:
    """Change per year by ordinary least squares of ``value`` on the year, per cell.

    One row per (indicator, breakdown level) with ``first_period``, ``last_period``,
    ``n_periods``, ``first_value``, ``last_value`` and ``slope_per_year`` (value units
    per year; for proportions multiply by 100 for percentage points). Cells with
    fewer than two years with a value have a null slope.
    """
    t = results.filter(pc.equal(results["breakdown"], breakdown))
    groups: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in t.to_pylist():
        if r["value"] is None or not str(r["period"]).isdigit():
            continue
        groups.setdefault((r["indicator_id"], r["level"]), []).append(
            (int(r["period"]), float(r["value"]))
        )
    out = []
    for (ind, level), pts in sorted(groups.items()):
        pts.sort()
        xs = np.array([p[0] for p in pts], dtype=float)
        ys = np.array([p[1] for p in pts], dtype=float)
        slope = None
        if len(pts) >= 2 and np.ptp(xs) > 0:
            slope = float(np.polyfit(xs, ys, 1)[0])
        out.append(
            {
                "indicator_id": ind,
                "breakdown": breakdown,
                "level": level,
                "first_period": str(pts[0][0]),
                "last_period": str(pts[-1][0]),
                "n_periods": len(pts),
                "first_value": float(ys[0]),
                "last_value": float(ys[-1]),
                "slope_per_year": slope,
            }
        )
    return _table(out)


def compare_periods(results: pa.Table, base: str, compare: str) -> pa.Table:
    """Two periods side by side (e.g. 2017 vs 2021) with the change.

    One row per (indicator, breakdown, level) present in either period:
    ``numerator_a/denominator_a/value_a`` (``base``), ``…_b`` (``compare``),
    ``change`` (b − a), ``relative_change`` (b/a − 1) and, for proportions,
    ``change_ci_low``/``change_ci_high`` (Newcombe's hybrid score interval).
    """
    a = {
        (r["indicator_id"], r["breakdown"], r["level"]): r
        for r in results.to_pylist()
        if r["period"] == base
    }
    b = {
        (r["indicator_id"], r["breakdown"], r["level"]): r
        for r in results.to_pylist()
        if r["period"] == compare
    }
    out = []
    for key in sorted(set(a) | set(b)):
        ra, rb = a.get(key, {}), b.get(key, {})
        va, vb = ra.get("value"), rb.get("value")
        row = {
            "indicator_id": key[0],
            "breakdown": key[1],
            "level": key[2],
            "period_a": base,
            "period_b": compare,
            "numerator_a": ra.get("numerator"),
            "denominator_a": ra.get("denominator"),
            "value_a": va,
            "numerator_b": rb.get("numerator"),
            "denominator_b": rb.get("denominator"),
            "value_b": vb,
            "change": vb - va if va is not None and vb is not None else None,
            "relative_change": (vb / va - 1) if va and vb is not None else None,
            "change_ci_low": None,
            "change_ci_high": None,
        }
        na, nb = ra.get("denominator"), rb.get("denominator")
        ca, cb = ra.get("ci_low"), rb.get("ci_low")
        if na and nb and ca is not None and cb is not None and ra.get("numerator") is not None:
            _, lo, hi = newcombe_difference(ra["numerator"], na, rb["numerator"], nb)
            row["change_ci_low"], row["change_ci_high"] = lo, hi
        out.append(row)
    return _table(out)
