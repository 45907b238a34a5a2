"""Gap analysis: per unit, how far each recommended intervention is from its target.

For every proportion indicator with a target level or a recommendation priority
(Socialstyrelsen's guideline), and every unit cell of the results::

    gap_pp      = (target − value) × 100                (higher is better)
                  (value − target) × 100                (lower is better)
    gap_persons = ceil(target × denominator − numerator)  (higher is better; ≥ 0)
                  ceil(numerator − target × denominator)  (lower is better; ≥ 0)

"gap_persons more persons would have needed the intervention" to reach the
target. Without a target level the regional (``total``) value of the same
period is used and ``target_source`` says ``regional``.
"""

from __future__ import annotations

import math

import pyarrow as pa

from utfall.analytics.semantics.catalogue import Catalogue, load_catalogue

GAP_SCHEMA = pa.schema(
    [
        ("indicator_id", pa.string()),
        ("period", pa.string()),
        ("breakdown", pa.string()),
        ("level", pa.string()),
        ("priority", pa.int64()),
        ("numerator", pa.int64()),
        ("denominator", pa.int64()),
        ("value", pa.float64()),
        ("target", pa.float64()),
        ("target_source", pa.string()),
        ("gap_pp", pa.float64()),
        ("gap_persons", pa.int64()),
    ]
)


def gap_analysis(
    results: pa.Table,
    *,
    catalogue: Catalogue | None = None,
    breakdown: str = "unit_id",
) -> pa.Table:
    """Gap per ``breakdown`` cell for indicators with a target or a priority."""
    catalogue = catalogue or load_catalogue()
    rows = results.to_pylist()
    totals = {
        (r["indicator_id"], r["period"]): r["value"]
        for r in rows
        if r["breakdown"] == "total"
    }
    out = []
    for r in rows:
        if r["breakdown"] != breakdown:
            continue
        try:
            ind = catalogue.get(r["indicator_id"])
        except KeyError:
            continue
        if ind.kind not in ("proportion", "retention", "change", "time_to"):
            continue
        if ind.kind == "change" and ind.change and ind.change.statistic != "share_improved":
            continue
        if ind.kind == "time_to" and ind.statistic != "share":
            continue
        if ind.target is None and ind.priority is None:
            continue
        if r["numerator"] is None or not r["denominator"]:
            continue
        target, source = ind.target, "catalogue"
        if target is None:
            target, source = totals.get((r["indicator_id"], r["period"])), "regional"
        if target is None:
            continue
        num, den, value = r["numerator"], r["denominator"], r["numerator"] / r["denominator"]
        if ind.direction == "lower":
            gap_pp = (value - target) * 100
            persons = math.ceil(num - target * den - 1e-9)
        else:
            gap_pp = (target - value) * 100
            persons = math.ceil(target * den - num - 1e-9)
        out.append(
            {
                "indicator_id": r["indicator_id"],
                "period": r["period"],
                "breakdown": breakdown,
                "level": r["level"],
                "priority": ind.priority,
                "numerator": num,
                "denominator": den,
                "value": value,
                "target": target,
                "target_source": source,
                "gap_pp": round(gap_pp, 9),
                "gap_persons": max(0, persons),
            }
        )
    return pa.Table.from_pylist(out, schema=GAP_SCHEMA)
