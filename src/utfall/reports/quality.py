"""Data-quality notes per unit and year for reports, in the indicator result format.

Units code differently and stigma leads to under-coding (DOMAIN.md §6), so every
report shows, per unit and year, the checks of
:func:`utfall.analytics.quality.data_quality` (``uncoded_persons``,
``missing_main_dx``, ``volume_drop``) plus one check of the regional table's own
matching rule:

* ``dq_procedure_unlinked`` – procedures that match no contact (neither by
  ``contact_id`` nor by person, unit and date) / all procedures.

Everything is returned as raw indicator-format rows (``indicator_id = "dq_<check>"``,
``breakdown = "unit_id"``) with the check's ``flag``; pass them through
``apply_disclosure`` before showing them. Register coverage (which units reported
nothing) is a list of units, not a count of persons: see :func:`silent_units`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ibis.expr.types as ir
import pyarrow as pa

from utfall.analytics.schema import RESULT_SCHEMA

QUALITY_TITLES: dict[str, dict[str, str]] = {
    "dq_uncoded_persons": {
        "sv": "Personer med huvuddiagnos F10–F19 utan någon registrerad KVÅ-åtgärd vid enheten",
        "en": "Persons with main diagnosis F10–F19 without any KVÅ code registered by the unit",
    },
    "dq_missing_main_dx": {
        "sv": "Vårdkontakter utan huvuddiagnos",
        "en": "Health-care contacts without a main diagnosis",
    },
    "dq_volume_drop": {
        "sv": "Förändring av antalet kontakter jämfört med föregående år",
        "en": "Change in the number of contacts from the previous year",
    },
    "dq_procedure_unlinked": {
        "sv": "Åtgärder som inte kan kopplas till någon kontakt",
        "en": "Procedures that match no contact",
    },
}

_SCHEMA = RESULT_SCHEMA.append(pa.field("flag", pa.bool_()))
CHECKS = ("uncoded_persons", "missing_main_dx", "volume_drop")


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
    data_quality: Callable[..., pa.Table] | None
    try:
        from utfall.analytics.quality import data_quality
    except ImportError:  # pragma: no cover - shipped by the indicator engine
        data_quality = None
    if data_quality is not None:
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


def silent_units(tables: Mapping[str, ir.Table]) -> dict[str, list[str]]:
    """Per year, the units in the ``unit`` table with no contact at all (register coverage)."""
    contact = tables["contact"]
    c = contact.filter(contact.date.notnull())
    seen = c.select("unit_id", year=c.date.year()).distinct().to_pyarrow().to_pylist()
    units = tables["unit"].select("unit_id").to_pyarrow()["unit_id"].to_pylist()
    years = sorted({r["year"] for r in seen})
    active = {(r["unit_id"], r["year"]) for r in seen}
    return {str(y): sorted(u for u in units if u and (u, y) not in active) for y in years}
