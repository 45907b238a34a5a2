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


# --------------------------------------------------------------------------- published gaps

PUBLISHED_GAP_SCHEMA = pa.schema(
    [
        ("indicator_id", pa.string()),
        ("period", pa.string()),
        ("breakdown", pa.string()),
        ("level", pa.string()),
        ("direction", pa.string()),
        ("numerator", pa.int64()),
        ("denominator", pa.int64()),
        ("value", pa.float64()),
        ("target", pa.float64()),
        ("target_source", pa.string()),
        ("gap_pp", pa.float64()),
        ("gap_persons", pa.int64()),
        ("withheld", pa.bool_()),
    ]
)


def _gap_indicator(ind: object) -> bool:
    kind = getattr(ind, "kind", None)
    if kind in ("proportion", "retention"):
        return True
    change = getattr(ind, "change", None)
    if kind == "change" and change is not None and change.statistic == "share_improved":
        return True
    return kind == "time_to" and getattr(ind, "statistic", None) == "share"


def gap_indicators(catalogue: Catalogue | None = None) -> list[str]:
    """Indicators a gap is computed for: proportions with a target level, or with a
    guideline priority (then the regional value is the target)."""
    catalogue = catalogue or load_catalogue()
    return [i.id for i in catalogue.indicators
            if _gap_indicator(i) and (i.target is not None or i.priority is not None)]


def published_gaps(
    protected: pa.Table,
    *,
    catalogue: Catalogue | None = None,
    breakdowns: tuple[str, ...] = ("total", "unit_id"),
    indicators: list[str] | None = None,
    periods: list[str] | None = None,
) -> pa.Table:
    """Gaps from a PROTECTED release (``Release.results`` or a stored run).

    Every gap is a function of published cells only: the row's published numerator,
    denominator and value (and, for a target taken from the region, the published
    regional value). Where any of them is masked, the gap is withheld
    (``withheld = True``, gap columns null): ``gap_persons = ceil(target × den − num)``
    would otherwise give a masked numerator back from a published denominator. With the
    cell-key method the published (noisy) counts are used, never the raw ones. So a gap
    adds nothing a reader could not already compute from the release itself.
    """
    catalogue = catalogue or load_catalogue()
    wanted = set(indicators or gap_indicators(catalogue)) & set(gap_indicators(catalogue))
    keep_periods = set(periods) if periods else None
    rows = [r for r in protected.to_pylist()
            if r["indicator_id"] in wanted and r["breakdown"] in (*breakdowns, "total")
            and (keep_periods is None or r["period"] in keep_periods)]
    regional = {(r["indicator_id"], r["period"]): r["value"]
                for r in rows if r["breakdown"] == "total"}
    out = []
    for r in rows:
        if r["breakdown"] not in breakdowns:
            continue
        ind = catalogue.get(r["indicator_id"])
        target, source = ind.target, "catalogue"
        if target is None:
            target, source = regional.get((r["indicator_id"], r["period"])), "regional"
            if r["breakdown"] == "total":
                continue  # the region against its own value has no gap
        num, den, value = r["numerator"], r["denominator"], r["value"]
        published = num is not None and den is not None and value is not None and den > 0
        gap_pp = persons = None
        if published and target is not None:
            if ind.direction == "lower":
                gap_pp = (value - target) * 100
                persons = math.ceil(num - target * den - 1e-9)
            else:
                gap_pp = (target - value) * 100
                persons = math.ceil(target * den - num - 1e-9)
            gap_pp, persons = round(gap_pp, 9), max(0, persons)
        out.append({
            "indicator_id": r["indicator_id"], "period": r["period"],
            "breakdown": r["breakdown"], "level": r["level"], "direction": ind.direction,
            "numerator": num if published else None,
            "denominator": den if published else None,
            "value": value if published else None,
            "target": target, "target_source": source,
            "gap_pp": gap_pp, "gap_persons": persons,
            "withheld": not published or target is None,
        })
    order = {i: n for n, i in enumerate(catalogue.ids)}
    out.sort(key=lambda r: (order.get(r["indicator_id"], 0), r["period"],
                            r["breakdown"] != "total", r["level"]))
    return pa.Table.from_pylist(out, schema=PUBLISHED_GAP_SCHEMA).replace_schema_metadata(
        protected.schema.metadata)


def percent_text(share: float, locale: str = "sv", decimals: int = 1) -> str:
    """``0.5`` → ``50 %``, ``0.0892`` → ``8,9 %`` (sv: decimal comma, no-break space)."""
    text = f"{share * 100:,.{decimals}f}"
    if decimals and text.endswith("." + "0" * decimals):
        text = text[: -decimals - 1]
    if locale == "sv":
        return text.replace(",", "\u202f").replace(".", ",") + "\u00a0%"
    return text + "\u00a0%"


def gap_sentence(row: dict, locale: str = "sv") -> str:
    """``23 fler personer behöver få AU119 för att nå målet 50 %`` for one gap row."""
    from utfall.i18n import messages, t

    if row["withheld"] or row["gap_persons"] is None:
        return t("quality.gap_withheld", locale)
    target = percent_text(row["target"], locale)
    goal = t(f"quality.goal_{row['target_source']}", locale, target=target)
    if row["gap_persons"] <= 0:
        return t("quality.gap_reached", locale, goal=goal)
    key = f"quality.action.{row['indicator_id']}"
    action = t(key, locale) if key in messages("sv") else t("quality.action_default", locale)
    which = "quality.gap_fewer" if row["direction"] == "lower" else "quality.gap_more"
    n = f"{row['gap_persons']:,}".replace(",", "\u202f" if locale == "sv" else ",")
    return t(which, locale, n=n, action=action, goal=goal)
