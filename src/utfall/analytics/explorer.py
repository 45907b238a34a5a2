"""What the indicator explorer, the funnel plots and the manager dashboard show, read
from one stored run (never computed on a page load).

Everything comes from the run's protected release (``docs/disclosure-control.md``):
a view selects rows of it and never combines cells into new numbers, so whatever a
user can put side by side — table, trend, funnel, download — was protected together.
Filters therefore narrow the *levels* of the chosen breakdown (a unit, the units of an
organisation or principal type or care level, one sex, age band or substance group);
a filter on another dimension than the breakdown would need a cross-tabulation that
the release does not contain, and is reported as not applied instead of computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from utfall.analytics.runs import StoredRun

# The breakdowns the explorer offers, in menu order.
BREAKDOWNS: tuple[str, ...] = ("total", "unit_id", "organisation", "principal_type",
                               "care_level", "sex", "age_band", "dx_group", "municipality")
FILTERS: tuple[str, ...] = ("unit", "organisation", "principal", "care_level", "sex",
                            "age_band", "dx_group")
# which unit attribute a unit-level filter checks, per breakdown it can narrow
_UNIT_FILTERS = {"unit": "unit_id", "organisation": "organisation",
                 "principal": "principal_type", "care_level": "care_level"}
_LEVEL_FILTERS = {"sex": "sex", "age_band": "age_band", "dx_group": "dx_group"}
# catalogue groups by id prefix (first match), in menu order
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kva", ("kva_", "persons_substance")),
    ("medication", ("alcohol_relapse",)),
    ("laro", ("laro_",)),
    ("outcomes", ("alcohol_", "followup_")),
    ("care", ("cooccurring_", "continuity_")),
    ("rates", ("rate_",)),
)


def group_of(indicator_id: str) -> str:
    """The catalogue group of an indicator (``other`` when none matches)."""
    for key, prefixes in GROUPS:
        if indicator_id.startswith(prefixes):
            return key
    return "other"


@dataclass
class Query:
    """The explorer's state, as in the query string (shareable URLs)."""

    indicator: str = ""
    breakdown: str = "unit_id"
    years: list[str] = field(default_factory=list)
    filters: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Query:
        """From query parameters (``getlist``-able mapping or plain dict of lists)."""

        def many(name: str) -> list[str]:
            if hasattr(params, "getlist"):
                values = params.getlist(name)
            else:
                raw = params.get(name)
                values = raw if isinstance(raw, list) else ([] if raw is None else [raw])
            return [str(v)[:120] for v in values if str(v).strip()][:100]

        breakdown = (many("breakdown") or ["unit_id"])[0]
        return cls(indicator=(many("indicator") or [""])[0],
                   breakdown=breakdown if breakdown in BREAKDOWNS else "unit_id",
                   years=many("year"),
                   filters={f: many(f) for f in FILTERS if many(f)})

    def params(self, **change: Any) -> list[tuple[str, str]]:
        """Query parameters of this state (with ``change`` applied)."""
        data = {"indicator": self.indicator, "breakdown": self.breakdown, "year": self.years,
                **self.filters, **change}
        out: list[tuple[str, str]] = []
        for key, value in data.items():
            for v in value if isinstance(value, list) else [value]:
                if v not in (None, ""):
                    out.append((key, str(v)))
        return out


def unit_attributes(units: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """unit_id → {unit_id, name, organisation, principal_type, care_level}."""
    return {str(u["unit_id"]): {"unit_id": str(u["unit_id"]), "name": str(u["name"]),
                                "organisation": str(u["organisation"]),
                                "principal_type": str(u["principal_type"]),
                                "care_level": str(u["care_level"] or "")}
            for u in units}


def _matches(breakdown: str, level: str, filters: Mapping[str, list[str]],
             units: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether a level of ``breakdown`` passes the filters that apply to it."""
    for name, wanted in filters.items():
        if not wanted:
            continue
        if breakdown == "unit_id" and name in _UNIT_FILTERS:
            attrs = units.get(level)
            if attrs is None or attrs[_UNIT_FILTERS[name]] not in wanted:
                return False
        elif breakdown == "organisation" and name in ("organisation", "principal"):
            if name == "organisation" and level not in wanted:
                return False
            if name == "principal" and not any(
                    u["organisation"] == level and u["principal_type"] in wanted
                    for u in units.values()):
                return False
        elif ((breakdown == "principal_type" and name == "principal")
              or (breakdown == "care_level" and name == "care_level")
              or _LEVEL_FILTERS.get(name) == breakdown) and level not in wanted:
            return False
    return True


def applied_filters(breakdown: str, filters: Mapping[str, list[str]]) -> tuple[list[str],
                                                                                list[str]]:
    """``(applied, not applicable)`` filter names for a breakdown."""
    applies = {"unit_id": set(_UNIT_FILTERS), "organisation": {"organisation", "principal"},
               "principal_type": {"principal"}, "care_level": {"care_level"},
               "sex": {"sex"}, "age_band": {"age_band"}, "dx_group": {"dx_group"}}
    ok = applies.get(breakdown, set())
    used = [f for f in FILTERS if filters.get(f)]
    return [f for f in used if f in ok], [f for f in used if f not in ok]


def explore(run: StoredRun, query: Query, units: Mapping[str, Mapping[str, str]]
            ) -> dict[str, Any]:
    """Table rows, trend series and the periods for one explorer query.

    Rows carry the protected display strings and (where published) the value and its
    confidence interval; nothing is recomputed.
    """
    periods = run.periods(query.indicator)
    years = [y for y in query.years if y in periods] or periods[-1:]
    rows = [r for r in run.rows(query.indicator, query.breakdown)
            if str(r["period"]) in years
            and (query.breakdown == "total"
                 or _matches(query.breakdown, str(r["level"]), query.filters, units))]
    rows.sort(key=lambda r: (str(r["level"]), str(r["period"])))
    shown_levels = sorted({str(r["level"]) for r in rows})
    # trend: the region and (up to 8) shown levels, every period of the run
    series: list[dict[str, Any]] = [{"level": None, "points": _points(
        run.rows(query.indicator, "total"), None)}]
    if query.breakdown != "total":
        every = run.rows(query.indicator, query.breakdown)
        for level in shown_levels[:8]:
            series.append({"level": level, "points": _points(every, level)})
    applied, not_applied = applied_filters(query.breakdown, query.filters)
    return {"rows": rows, "years": years, "periods": periods, "series": series,
            "applied": applied, "not_applied": not_applied,
            "more_series": max(0, len(shown_levels) - 8)}


def _points(rows: Sequence[Mapping[str, Any]], level: str | None) -> list[dict[str, Any]]:
    return [{"period": str(r["period"]), "value": r["value"], "ci_low": r["ci_low"],
             "ci_high": r["ci_high"], "value_display": r["value_display"]}
            for r in rows if level is None or str(r["level"]) == level]


def funnel_view(run: StoredRun, indicator_id: str, breakdown: str, year: str | None
                ) -> dict[str, Any]:
    """Stored funnel points (published cells), limit curves and the regional value of
    one indicator, breakdown and explicitly chosen year (default: the latest year with
    points, shown on the page)."""
    periods = run.funnel_periods(indicator_id, breakdown)
    chosen = year if year in periods else (periods[-1] if periods else None)
    if chosen is None:
        return {"periods": periods, "year": None, "points": [], "curves": [], "target": None}
    points, curves = run.funnel_rows(indicator_id, breakdown, chosen)
    target = points[0]["target"] if points else None
    return {"periods": periods, "year": chosen, "points": points, "curves": curves,
            "target": target}


def outlier_words(flag: str) -> str:
    """Message key for a funnel flag (``high_998`` → over the 99.8 % limit)."""
    return {"high_998": "analytics.funnel.high_998", "high_95": "analytics.funnel.high_95",
            "low_95": "analytics.funnel.low_95", "low_998": "analytics.funnel.low_998"
            }.get(flag, "analytics.funnel.within")


def unit_overview(run: StoredRun, unit_id: str | None, kinds: Mapping[str, str],
                  indicator_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The dashboard's indicator rows: the unit's latest published year per indicator
    beside the region in the same year (both from the run's protected release)."""
    out = []
    for ind in indicator_ids:
        mine = [r for r in run.rows(ind, "unit_id") if r["level"] == unit_id]
        if not mine:
            continue
        # the latest year with a published value (else the latest year, masked)
        row = max(mine, key=lambda r: (r["value"] is not None, str(r["period"])))
        total = next((r for r in run.rows(ind, "total") if r["period"] == row["period"]), None)
        out.append({"indicator_id": ind, "kind": kinds.get(ind, ""), "period": row["period"],
                    "unit": row, "region": total})
    return out
