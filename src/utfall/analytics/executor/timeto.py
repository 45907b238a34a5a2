"""``time_to`` indicators that share their index events, computed together.

The continuity indicators (median days, share within 7 and 30 days) all measure
the same index events (e.g. inpatient discharges) and the days to the next
contact (:func:`utfall.analytics.semantics.compiler.time_to_events`). Every event is its
own subject, so no stage needs de-duplicating: the events are enriched once
with person and unit attributes, and each breakdown's cells of all the group's
indicators come from one ``GROUP BY``. Counts are ``COUNT(DISTINCT subject)``
with a filter, which is exactly what the per-indicator stages count, so the
numbers equal each indicator's own expression (``compile_indicator``; tested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from utfall.analytics.schema import raw_cells
from utfall.analytics.semantics.catalogue import Indicator
from utfall.analytics.semantics.compiler import (
    CompileContext,
    discharge_subject,
    enrich,
    level_of,
    year_of,
)


def enriched_events(
    tables: Mapping[str, ir.Table], events: ir.Table, ctx: CompileContext
) -> ir.Table:
    """Index events with ``period`` (year of ``end_date``), ``subject`` and attributes."""
    ev = events.select(
        period=year_of(events.end_date).cast("int64"), subject=discharge_subject(events),
        person_key=events.person_key, unit_id=events.unit_id.cast("string"),
        dx_group=events.dx_group.cast("string"), end_date=events.end_date, days=events.days,
    )
    ev = ev.filter(ev.period.isin(list(ctx.years)))
    return enrich(ev, tables, ctx)


def subjects_unique(enriched: ir.Table) -> bool:
    """One row per subject (contact ids are unique in canonical data): then plain
    counts are distinct counts."""
    row = enriched.aggregate(n=enriched.count(), u=enriched.subject.nunique())
    row = row.to_pyarrow().to_pylist()[0]
    return row["n"] == row["u"]


def cells(
    enriched: ir.Table, inds: Sequence[Indicator], ctx: CompileContext, breakdown: str,
    unique: bool = False,
) -> ir.Table:
    """Wide cells of one breakdown: ``period, level`` and per indicator k ``d{k}``
    (subjects in the population) and ``n{k}`` (share: within the window) or ``s{k}``
    (median days). ``unique``: rows are one per subject (count rows, not distinct)."""
    g = enriched.mutate(level=level_of(enriched, breakdown))
    as_of = ibis.literal(ctx.as_of)

    def subjects(where: ir.BooleanValue) -> ir.IntegerValue:
        n = g.count(where=where) if unique else g.subject.nunique(where=where)
        return n.cast("int64")

    metrics: dict[str, ir.Value] = {}
    for k, ind in enumerate(inds):
        if ind.statistic == "share":
            within = ind.window.days or 0
            observable = as_of.delta(g.end_date, unit="day") >= within
            hit = observable & g.days.notnull() & (g.days <= within)
            metrics[f"d{k}"] = subjects(observable)
            metrics[f"n{k}"] = subjects(hit)
        else:
            measured = g.days.notnull()
            metrics[f"d{k}"] = subjects(measured)
            # median() skips nulls: the same rows as the measured ones
            metrics[f"s{k}"] = g.days.cast("float64").median().cast("float64")
    return g.group_by("period", "level").aggregate(**metrics)


def unfuse(wide: pa.Table, inds: Sequence[Indicator], breakdown: str) -> list[pa.Table]:
    """Wide cells → the raw long rows of each indicator (cells with subjects only)."""
    out = []
    for k, ind in enumerate(inds):
        if breakdown not in ind.allowed_breakdowns:
            continue
        w = wide.filter(pc.greater(wide[f"d{k}"], 0))
        share = ind.statistic == "share"
        out.append(raw_cells(
            ind.id, breakdown, w["period"], w["level"],
            w[f"n{k}"] if share else None, w[f"d{k}"], None if share else w[f"s{k}"],
        ))
    return out
