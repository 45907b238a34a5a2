"""Data-quality checks per unit and year, shaped to sit next to the indicators they affect.

Result (pyarrow, long, one row per check × unit × year)::

    check        str    uncoded_persons | missing_main_dx | volume_drop | coverage
    period       str    "2021"
    unit_id      str    "" for the region-wide coverage row
    numerator    int64  e.g. persons without any KVÅ code
    denominator  int64  e.g. persons with a substance main diagnosis
    value        float64 share (0–1) or, for volume_drop, the relative change from
                        the previous year (−0.4 = 40 % fewer contacts)
    flag         bool   the check signals a problem (thresholds in QualityThresholds)
    affects      str    ';'-joined indicator ids the check bears on

The DOMAIN caveat: units code differently and stigma leads to under-coding, so a
low KVÅ indicator next to a high ``uncoded_persons`` share reads as a coding gap,
not necessarily a care gap.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa

from utfall.analytics.schema import RESULT_SCHEMA

KVA_INDICATORS = ("kva_au119", "kva_du119", "kva_au124")
DX_INDICATORS = (
    "kva_au119", "kva_du119", "kva_au124", "persons_substance_dx", "alcohol_relapse_medication",
    "laro_opioid_dependence_treated", "cooccurring_psych_parallel", "rate_substance_dx",
    "rate_alcohol_dx", "rate_narcotics_dx",
)

QUALITY_SCHEMA = pa.schema(
    [
        ("check", pa.string()),
        ("period", pa.string()),
        ("unit_id", pa.string()),
        ("numerator", pa.int64()),
        ("denominator", pa.int64()),
        ("value", pa.float64()),
        ("flag", pa.bool_()),
        ("affects", pa.string()),
    ]
)


@dataclass(frozen=True)
class QualityThresholds:
    """When a check is flagged."""

    uncoded_share: float = 0.9  # ≥ 90 % of persons with a substance dx have no KVÅ at all
    missing_dx_share: float = 0.2  # ≥ 20 % of health-care contacts lack a main diagnosis
    volume_drop: float = 0.3  # contacts fell ≥ 30 % from the previous year
    coverage: float = 0.9  # < 90 % of expected units reported
    min_persons: int = 5  # no flag below this denominator


def _year(col: ir.DateValue) -> ir.IntegerValue:
    return col.year().cast("int64")


def _rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def data_quality(
    tables: Mapping[str, ir.Table],
    *,
    years: Sequence[int] | None = None,
    thresholds: QualityThresholds | None = None,
    expected_units: Sequence[str] | None = None,
) -> pa.Table:
    """Data-quality checks per unit and year over canonical Ibis ``tables``.

    ``expected_units`` defaults to every unit in the ``unit`` table.
    """
    th = thresholds or QualityThresholds()
    c = tables["contact"].mutate(period=lambda t: _year(t.date))
    p = tables["procedure"].mutate(period=lambda t: _year(t.date))
    if years:
        c = c.filter(c.period.isin(list(years)))
        p = p.filter(p.period.isin(list(years)))
    out: list[dict] = []

    # 1. coding completeness: persons with a substance main dx at the unit and year
    #    but no KVÅ code at all registered by that unit that year
    sub = c.filter(c.dx_group.notnull()).select("unit_id", "period", "person_key").distinct()
    coded = p.select("unit_id", "period", "person_key").distinct().mutate(coded=True)
    j = sub.left_join(coded, ["unit_id", "period", "person_key"])
    j = j.mutate(coded=j.coded.fill_null(False))
    agg = j.group_by("unit_id", "period").aggregate(
        den=j.person_key.nunique(), num=j.person_key.nunique(where=~j.coded)
    )
    for r in _rows(agg.to_pyarrow()):
        share = r["num"] / r["den"] if r["den"] else None
        out.append(dict(check="uncoded_persons", period=str(r["period"]), unit_id=r["unit_id"],
                        numerator=r["num"], denominator=r["den"], value=share,
                        flag=bool(share is not None and r["den"] >= th.min_persons
                                  and share >= th.uncoded_share),
                        affects=";".join(KVA_INDICATORS)))

    # 2. contacts without main diagnosis (health care; social services may lack one)
    hc = c.filter(c.contact_type != "social_services")
    agg = hc.group_by("unit_id", "period").aggregate(
        den=hc.count(), num=hc.count(where=hc.main_dx.isnull() | (hc.main_dx == ""))
    )
    volumes: dict[tuple[str, int], int] = {}
    for r in _rows(agg.to_pyarrow()):
        share = r["num"] / r["den"] if r["den"] else None
        out.append(dict(check="missing_main_dx", period=str(r["period"]), unit_id=r["unit_id"],
                        numerator=r["num"], denominator=r["den"], value=share,
                        flag=bool(share is not None and r["den"] >= th.min_persons
                                  and share >= th.missing_dx_share),
                        affects=";".join(DX_INDICATORS)))

    # 3. sudden drops in volume (all contacts) between consecutive years
    vol = c.group_by("unit_id", "period").aggregate(n=c.count())
    for r in _rows(vol.to_pyarrow()):
        volumes[(r["unit_id"], int(r["period"]))] = int(r["n"])
    all_years = sorted({y for _, y in volumes} | set(years or ()))
    units = sorted({u for u, _ in volumes})
    for u in units:
        for prev, cur in itertools.pairwise(all_years):
            before = volumes.get((u, prev), 0)
            now = volumes.get((u, cur), 0)
            if before == 0:
                continue
            change = now / before - 1
            out.append(dict(check="volume_drop", period=str(cur), unit_id=u, numerator=now,
                            denominator=before, value=change,
                            flag=bool(before >= th.min_persons and -change >= th.volume_drop),
                            affects="*"))

    # 4. register coverage: share of expected units with at least one contact in the year
    if expected_units is None:
        expected_units = tables["unit"].select("unit_id").to_pyarrow()["unit_id"].to_pylist()
    expected = set(expected_units)
    for y in all_years:
        reporting = {u for (u, yy), n in volumes.items() if yy == y and n > 0} & expected
        share = len(reporting) / len(expected) if expected else None
        out.append(dict(check="coverage", period=str(y), unit_id="", numerator=len(reporting),
                        denominator=len(expected), value=share,
                        flag=bool(share is not None and share < th.coverage), affects="*"))
        for u in sorted(expected):
            out.append(dict(check="coverage", period=str(y), unit_id=u,
                            numerator=int(u in reporting), denominator=1,
                            value=float(u in reporting), flag=u not in reporting,
                            affects="*"))
    out.sort(key=lambda r: (r["check"], r["period"], r["unit_id"]))
    return pa.Table.from_pylist(out, schema=QUALITY_SCHEMA)


def quality_for(indicator_id: str, quality: pa.Table) -> pa.Table:
    """The quality rows bearing on one indicator (``affects`` lists it, or ``*``)."""
    keep = [
        a == "*" or indicator_id in a.split(";") for a in quality["affects"].to_pylist()
    ]
    return quality.filter(pa.array(keep, pa.bool_()))


# ----------------------------------------------------------------------- indicator format
# (moved here from utfall.reports.quality so that stored runs can keep them)

_SCHEMA = RESULT_SCHEMA.append(pa.field("flag", pa.bool_()))
REPORT_CHECKS = CHECKS = ("uncoded_persons", "missing_main_dx", "volume_drop")


def _unlinked_procedures(tables: Mapping[str, ir.Table]) -> list[dict]:
    """Procedures matching no contact, per unit and year (raw counts)."""
    contact = tables["contact"]
    procedure = tables["procedure"]
    c = contact.filter(contact.date.notnull())
    ids = c.select("contact_id").distinct()
    keys = c.select("person_key", "unit_id", "date").distinct()
    p = procedure.filter(procedure.date.notnull())
    q1 = p.left_join(ids, p.contact_id == ids.contact_id).select(
        *[p[col] for col in p.columns], id_ok=ids.contact_id.notnull()
    )
    q2 = q1.left_join(
        keys,
        (q1.person_key == keys.person_key) & (q1.unit_id == keys.unit_id) & (q1.date == keys.date),
    ).select(
        q1.unit_id,
        year=q1.date.year(),
        hit=~(q1.id_ok | (q1.contact_id.isnull() & keys.person_key.notnull())),
    )
    agg = q2.group_by(["year", "unit_id"]).aggregate(
        numerator=q2.hit.cast("int64").sum(), denominator=q2.count()
    )
    out = []
    for r in agg.to_pyarrow().to_pylist():
        den, num = int(r["denominator"]), int(r["numerator"] or 0)
        out.append(
            {
                "indicator_id": "dq_procedure_unlinked",
                "period": str(r["year"]),
                "breakdown": "unit_id",
                "level": r["unit_id"] or "unknown",
                "numerator": num,
                "denominator": den,
                "value": num / den if den else None,
                "ci_low": None,
                "ci_high": None,
                "flag": bool(den >= 5 and num / den >= 0.1),
            }
        )
    return out


def quality_results(tables: Mapping[str, ir.Table]) -> pa.Table:
    """Raw data-quality rows (indicator format plus ``flag``) for the report's notes."""
    rows: list[dict] = []
    for r in data_quality(tables).to_pylist():
        if r["check"] not in CHECKS or not r["unit_id"]:
            continue
        rows.append(
            {
                "indicator_id": f"dq_{r['check']}",
                "period": r["period"],
                "breakdown": "unit_id",
                "level": r["unit_id"],
                "numerator": r["numerator"],
                "denominator": r["denominator"],
                "value": r["value"],
                "ci_low": None,
                "ci_high": None,
                "flag": bool(r["flag"]),
            }
        )
    rows += _unlinked_procedures(tables)
    rows.sort(key=lambda r: (r["indicator_id"], r["period"], r["level"]))
    return pa.Table.from_pylist(rows, schema=_SCHEMA) if rows else _SCHEMA.empty_table()




def protected_quality(tables: Mapping[str, ir.Table], rules: Any = None) -> pa.Table:
    """The data-quality rows in indicator format, disclosure-controlled (what the web
    shows and a stored run keeps as ``quality.parquet``)."""
    from utfall.analytics.disclosure import apply_disclosure

    return apply_disclosure(quality_results(tables), rules)


def store_quality(tables: Mapping[str, ir.Table], run_dir: Path) -> None:
    """Write ``quality.parquet`` (protected) and ``silent_units.json`` (units without any
    contact, per year) into a stored run's folder."""
    import json

    import pyarrow.parquet as pq

    pq.write_table(protected_quality(tables), Path(run_dir) / "quality.parquet")
    (Path(run_dir) / "silent_units.json").write_text(
        json.dumps(silent_units(tables), ensure_ascii=False), encoding="utf-8")


def silent_units(tables: Mapping[str, ir.Table]) -> dict[str, list[str]]:
    """Per year, the units in the ``unit`` table with no contact at all (register coverage)."""
    contact = tables["contact"]
    c = contact.filter(contact.date.notnull())
    seen = c.select("unit_id", year=c.date.year()).distinct().to_pyarrow().to_pylist()
    units = tables["unit"].select("unit_id").to_pyarrow()["unit_id"].to_pylist()
    years = sorted({r["year"] for r in seen})
    active = {(r["unit_id"], r["year"]) for r in seen}
    return {str(y): sorted(u for u in units if u and (u, y) not in active) for y in years}


def stored_silent_units(run_dir: Path) -> dict[str, list[str]] | None:
    """The silent units stored with a run, or None."""
    import json

    path = Path(run_dir) / "silent_units.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def stored_quality(run_dir: Path) -> pa.Table | None:
    """The protected data-quality rows of a stored run, or None if it has none."""
    import pyarrow.parquet as pq

    path = Path(run_dir) / "quality.parquet"
    return pq.read_table(path) if path.exists() else None


__all__ = ["QualityThresholds", "data_quality", "protected_quality", "quality_for",
           "quality_results", "store_quality", "stored_quality"]
