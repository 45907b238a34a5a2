"""The external indicator "share of persons with goals reviewed at follow-up"
(``source: goal_review`` in ``content/indicators/80_goals.yaml``).

Goals live in the operational store (``care_goal``, ``care_goal_review``), not in the
analysis tables, so the indicator is computed here over the store like the register
coverage, and its raw rows join the engine's results before disclosure control.

Per calendar year and unit: the denominator is the persons with at least one own goal
recorded at the unit who had a follow-up measurement (an assessment at a stage other
than ``intake``) at that unit in the year, on or after the goal was set; the numerator
is those of them with a review of one of their goals (by staff or by the person in the
self-report) recorded at the unit in the same year. Only years up to ``as_of``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, select

from utfall.store.models import Assessment
from utfall.store.models_goals import Goal, GoalReview

BASELINE_STAGES = frozenset({"intake"})


def _day(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def goal_review_cells(conn: Connection, as_of: dt.date
                      ) -> tuple[dict[tuple[str, str], set[str]], dict[tuple[str, str], set[str]]]:
    """``(members, hits)``: (year, unit) → person keys (raw, never for display)."""
    g, r, a = Goal.__table__, GoalReview.__table__, Assessment.__table__
    first_goal: dict[tuple[str, str], dt.date] = {}
    for row in conn.execute(select(g.c.person_key, g.c.unit_id, g.c.recorded_at)):
        key = (row.person_key, row.unit_id)
        day = _day(row.recorded_at)
        if key not in first_goal or day < first_goal[key]:
            first_goal[key] = day
    members: dict[tuple[str, str], set[str]] = defaultdict(set)
    if not first_goal:
        return members, defaultdict(set)
    persons = sorted({p for p, _ in first_goal})
    for row in conn.execute(select(a.c.person_key, a.c.unit_id, a.c.date, a.c.stage)
                            .where(a.c.person_key.in_(persons))):
        since = first_goal.get((row.person_key, row.unit_id))
        if since is None or row.stage in BASELINE_STAGES or row.stage is None:
            continue
        if since <= row.date <= as_of:
            members[(str(row.date.year), row.unit_id)].add(row.person_key)
    hits: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in conn.execute(select(g.c.person_key, r.c.unit_id, r.c.reviewed_at)
                            .join(g, g.c.id == r.c.goal_id)):
        day = _day(row.reviewed_at)
        cell = (str(day.year), row.unit_id)
        if day <= as_of and row.person_key in members.get(cell, set()):
            hits[cell].add(row.person_key)
    return members, hits


def external_rows(conn: Connection, indicators: Any, as_of: dt.date) -> pa.Table:
    """Raw result rows (``RESULT_SCHEMA``) per unit and year, and the total per year
    (person-unit pairs), for every ``goal_review`` indicator of the catalogue."""
    from utfall.analytics.schema import RESULT_SCHEMA
    from utfall.analytics.stats import wilson

    members, hits = goal_review_cells(conn, as_of)

    def row(ind: str, year: str, breakdown: str, level: str, num: int, den: int
            ) -> dict[str, Any]:
        low, high = wilson([num], [den])
        return {"indicator_id": ind, "period": year, "breakdown": breakdown, "level": level,
                "numerator": num, "denominator": den, "value": num / den if den else None,
                "ci_low": float(low[0]) if den else None,
                "ci_high": float(high[0]) if den else None}

    rows: list[dict[str, Any]] = []
    for ind in indicators:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (year, unit), persons in sorted(members.items()):
            done = len(hits.get((year, unit), set()))
            rows.append(row(ind.id, year, "unit_id", unit, done, len(persons)))
            totals[year][0] += done
            totals[year][1] += len(persons)
        for year, (num, den) in sorted(totals.items()):
            rows.append(row(ind.id, year, "total", "", num, den))
    return pa.Table.from_pylist(rows, schema=RESULT_SCHEMA)
