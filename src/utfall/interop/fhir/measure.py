"""``MeasureReport`` (summary) from the stored, disclosure-controlled indicator run.

Only published values leave: a masked count or value is sent as the
``data-absent-reason`` extension (``masked``), never as a number. One report per
indicator and period, stratified by every breakdown present in the stored run
(unit, dx group, sex, age band, …), and one report per indicator stratified by year.
"""

from __future__ import annotations

import re
from typing import Any

from utfall.interop.fhir.common import (
    CANONICAL,
    EXT_DATA_ABSENT,
    fhir_id,
    local_system,
    text_fields,
    validated,
)

POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
MASKED = {"extension": [{"url": EXT_DATA_ABSENT, "valueCode": "masked"}]}
BREAKDOWN_SYSTEM = local_system("indicator-breakdown")
YEAR = "year"


def measure_url(indicator_id: str) -> str:
    return f"{CANONICAL}/Measure/{indicator_id}"


def report_id(indicator_id: str, period: str | None = None) -> str:
    """FHIR id of a report: ``<indicator>`` or ``<indicator>.<period>`` (``_`` → ``-``)."""
    ident = fhir_id(indicator_id)
    if period:
        ident += "." + re.sub(r"[^A-Za-z0-9\-.]", "-", period)
    return ident[:64]


def _period(period: str) -> dict[str, str]:
    match = re.fullmatch(r"(\d{4})", period or "")
    if match:
        return {"start": f"{period}-01-01", "end": f"{period}-12-31"}
    match = re.fullmatch(r"(\d{4})-(\d{4})", period or "")
    if match:
        return {"start": f"{match[1]}-01-01", "end": f"{match[2]}-12-31"}
    return {}


def _cells(row: dict[str, Any]) -> dict[str, Any]:
    """Populations and score of one result row: published numbers or ``masked``."""
    pops = []
    for name, code in (("numerator", "numerator"), ("denominator", "denominator")):
        value = row.get(name)
        if value is None and not row.get(f"{name}_display"):
            continue  # not applicable to this indicator kind
        pop: dict[str, Any] = {"code": {"coding": [{"system": POPULATION, "code": code}]}}
        if value is None or "(" + name + ")" in (row.get("suppression_reason") or ""):
            pop["_count"] = MASKED
        else:
            pop["count"] = int(value)
        pops.append(pop)
    out: dict[str, Any] = {}
    if pops:
        out["population"] = pops
    reason = row.get("suppression_reason") or ""
    if row.get("value") is None:
        out["measureScore"] = {"extension": [{"url": EXT_DATA_ABSENT,
                                              "valueCode": "not-applicable"}]}
    elif row.get("suppressed") and ("(value)" in reason or "(numerator)" in reason
                                    or "(denominator)" in reason):
        out["measureScore"] = MASKED
    else:
        out["measureScore"] = {"value": round(float(row["value"]), 6)}
    return out


def _report(ident: str, indicator_id: str, title: Any, period: dict[str, str],
            total: dict[str, Any] | None, strata: dict[str, list[dict[str, Any]]],
            meta: dict[str, str]) -> dict[str, Any]:
    group: dict[str, Any] = {"code": {"coding": [{"system": local_system("indicator"),
                                                  "code": indicator_id,
                                                  **text_fields("display", title)}]}}
    if total is not None:
        group.update(_cells(total))
    stratifiers = []
    for breakdown, rows in sorted(strata.items()):
        stratifiers.append({
            "code": [{"coding": [{"system": BREAKDOWN_SYSTEM, "code": breakdown}]}],
            "stratum": [{"value": {"text": str(r["level"] or "unknown")}, **_cells(r)}
                        for r in sorted(rows, key=lambda r: str(r["level"]))]})
    if stratifiers:
        group["stratifier"] = stratifiers
    resource: dict[str, Any] = {
        "resourceType": "MeasureReport", "id": ident, "status": "complete",
        "type": "summary", "measure": measure_url(indicator_id),
        "period": period or {"start": "1900-01-01"}, "group": [group]}
    if meta.get("computed_at"):
        resource["date"] = meta["computed_at"]
    if meta.get("run_id"):
        resource["identifier"] = [{"system": local_system("indicator-run"),
                                   "value": meta["run_id"]}]
    return validated(resource)


def measure_reports(rows: list[dict[str, Any]], titles: dict[str, Any],
                    meta: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Every report of a disclosure-controlled result table, by FHIR id."""
    meta = meta or {}
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["indicator_id"], row["period"])
        slot = by_key.setdefault(key, {"total": None, "strata": {}})
        if row["breakdown"] == "total":
            slot["total"] = row
        else:
            slot["strata"].setdefault(row["breakdown"], []).append(row)
    out: dict[str, dict[str, Any]] = {}
    years: dict[str, list[dict[str, Any]]] = {}
    for (indicator, period), slot in sorted(by_key.items()):
        ident = report_id(indicator, period)
        out[ident] = _report(ident, indicator, titles.get(indicator), _period(period),
                             slot["total"], slot["strata"], meta)
        if slot["total"] is not None:
            years.setdefault(indicator, []).append({**slot["total"], "level": period})
    for indicator, rows_ in years.items():
        ident = report_id(indicator)
        periods = [_period(r["level"]) for r in rows_]
        starts = [p["start"] for p in periods if p]
        ends = [p["end"] for p in periods if p]
        span = {"start": min(starts), "end": max(ends)} if starts else {}
        out[ident] = _report(ident, indicator, titles.get(indicator), span, None,
                             {YEAR: rows_}, meta)
    return out
