"""Register coverage (issue 14, part 3): are eligible persons actually reported?

The indicator catalogue cannot express these yet (no "established in treatment"
population and no event reading the delivery log; docs/interoperability.md), so they
are computed here, in the catalogue's long result format, and go through the same
disclosure control before anything is shown:

* ``register_new_within_30d`` – of the persons established in treatment at a unit in
  the year (established at least 30 days before the cut-off), the share whose new
  registration was delivered (and not rejected) within 30 days of being established;
* ``register_followup_12m`` – of the persons whose 12-month follow-up fell due in the
  year (by the cut-off), the share whose 12-month follow-up was delivered.

Both per unit and year (``breakdown`` ``unit_id``) and in total. The persons missing
from each numerator (the gaps) are returned separately, for the unit's own use only.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, select

from utfall.interop.register.build import add_months, established, load_data
from utfall.interop.register.mapping import Mapping
from utfall.store.models_register import RegisterDelivery

NEW_WITHIN_30D = "register_new_within_30d"
FOLLOWUP_12M = "register_followup_12m"
DAYS = 30


@dataclass
class Coverage:
    """Raw coverage cells (not for display) and the persons missing per cell."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    missing: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)

    def table(self) -> pa.Table:
        from utfall.analytics.schema import RESULT_SCHEMA

        return pa.Table.from_pylist(self.rows, schema=RESULT_SCHEMA)


def _deliveries(conn: Connection, register: str) -> dict[tuple[str, str, str], dt.date]:
    """(form, person, unit) → first delivery date of a form that was not rejected."""
    t = RegisterDelivery.__table__
    out: dict[tuple[str, str, str], dt.date] = {}
    for r in conn.execute(select(t.c.form, t.c.person_key, t.c.unit_id, t.c.delivered_at)
                          .where(t.c.register == register, t.c.rejected.is_(False))
                          .order_by(t.c.delivered_at)):
        out.setdefault((r.form, r.person_key, r.unit_id), r.delivered_at.date())
    return out


def _cells(indicator: str, members: dict[tuple[str, str], set[str]],
           hits: dict[tuple[str, str], set[str]], out: Coverage) -> None:
    from utfall.analytics.stats import wilson

    totals: dict[str, set[tuple[str, str]]] = defaultdict(set)
    total_hits: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for (year, unit), persons in sorted(members.items()):
        done = hits.get((year, unit), set())
        totals[year] |= {(p, unit) for p in persons}
        total_hits[year] |= {(p, unit) for p in done}
        out.missing[(indicator, year, unit)] = sorted(persons - done)
        out.rows.append(_row(indicator, year, "unit_id", unit, len(done), len(persons), wilson))
    for year in sorted(totals):  # person-unit pairs: a person established at two units
        out.rows.append(_row(indicator, year, "total", "", len(total_hits[year]),
                             len(totals[year]), wilson))


def _row(indicator: str, year: str, breakdown: str, level: str, num: int, den: int,
         wilson: Any) -> dict[str, Any]:
    low, high = wilson([num], [den])
    return {"indicator_id": indicator, "period": year, "breakdown": breakdown, "level": level,
            "numerator": num, "denominator": den, "value": num / den if den else None,
            "ci_low": float(low[0]) if den else None, "ci_high": float(high[0]) if den else None}


def coverage(conn: Connection, mapping: Mapping, as_of: dt.date) -> Coverage:
    """Raw coverage cells per unit and year (pass ``.table()`` through disclosure)."""
    data = load_data(conn)
    sent = _deliveries(conn, mapping.register_id)
    new_members: dict[tuple[str, str], set[str]] = defaultdict(set)
    new_hits: dict[tuple[str, str], set[str]] = defaultdict(set)
    fu_members: dict[tuple[str, str], set[str]] = defaultdict(set)
    fu_hits: dict[tuple[str, str], set[str]] = defaultdict(set)
    for person_key in data.persons:
        for unit, (_start, when) in established(mapping, data, person_key).items():
            if when + dt.timedelta(days=DAYS) <= as_of:
                key = (str(when.year), unit)
                new_members[key].add(person_key)
                delivered = sent.get(("new_registration", person_key, unit))
                if delivered is not None and delivered <= when + dt.timedelta(days=DAYS):
                    new_hits[key].add(person_key)
            due = add_months(when, 12)
            if due <= as_of:
                key = (str(due.year), unit)
                fu_members[key].add(person_key)
                if ("followup_12", person_key, unit) in sent:
                    fu_hits[key].add(person_key)
    out = Coverage()
    _cells(NEW_WITHIN_30D, new_members, new_hits, out)
    _cells(FOLLOWUP_12M, fu_members, fu_hits, out)
    return out


def external_rows(conn: Connection, indicators: Any, as_of: dt.date) -> pa.Table:
    """Raw rows of the catalogue's register-coverage indicators (``external_indicators``
    with ``source: register_coverage``), for the release; one mapping at a time."""
    from utfall.interop.register import load_mapping

    wanted: dict[str, set[str]] = {}
    for ind in indicators:
        wanted.setdefault(ind.mapping, set()).add(ind.id)
    rows: list[dict[str, Any]] = []
    for mapping_id, ids in sorted(wanted.items()):
        cells = coverage(conn, load_mapping(mapping_id), as_of)
        rows.extend(r for r in cells.rows if r["indicator_id"] in ids)
    return Coverage(rows=rows).table()


def disclosed_coverage(conn: Connection, mapping: Mapping, as_of: dt.date) -> pa.Table:
    """Coverage after the project's disclosure control (for display and export)."""
    from utfall.analytics.disclosure import apply_disclosure

    return apply_disclosure(coverage(conn, mapping, as_of).table())


__all__ = ["FOLLOWUP_12M", "NEW_WITHIN_30D", "Coverage", "coverage", "disclosed_coverage",
           "external_rows"]
