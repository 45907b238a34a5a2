"""The canonical analytics schema: long, tidy tables keyed by a pseudonymous person_key.

The contract between the store (``store/canonical.py`` writes it) and analytics (every
engine reads only these tables). Pure data: Arrow schemas and two helpers. The tables
contain no identity numbers. ``start``/``end`` of DESIGN.md are named
``start_date``/``end_date`` because ``end`` is reserved in SQL.
"""

from __future__ import annotations

import pyarrow as pa

TABLES: dict[str, pa.Schema] = {
    "person": pa.schema(
        [
            ("person_key", pa.string()),  # keyed hash of the identity number
            ("sex", pa.string()),  # M / F
            ("birth_year", pa.int32()),
            ("municipality", pa.string()),  # 4-digit municipality code, may be null
            ("death_date", pa.date32()),
        ]
    ),
    "unit": pa.schema(
        [
            ("unit_id", pa.string()),
            ("name", pa.string()),
            ("organisation", pa.string()),
            ("principal_type", pa.string()),  # region / municipality / private
            ("care_level", pa.string()),
            ("municipality_code", pa.string()),
        ]
    ),
    "contact": pa.schema(
        [
            ("contact_id", pa.string()),
            ("person_key", pa.string()),
            ("unit_id", pa.string()),
            ("date", pa.date32()),
            ("end_date", pa.date32()),  # inpatient stays
            ("contact_type", pa.string()),  # outpatient / inpatient / social_services / digital
            ("main_dx", pa.string()),  # normalised ICD-10-SE without dot, e.g. F102
            ("dx_group", pa.string()),  # F10..F19 of main_dx, else null
            ("other_dx", pa.string()),  # ';'-separated normalised codes, may be null
            ("psych_groups", pa.string()),  # ';'-separated co-occurring psychiatric groups
        ]
    ),
    "procedure": pa.schema(
        [
            ("person_key", pa.string()),
            ("unit_id", pa.string()),
            ("date", pa.date32()),
            ("contact_id", pa.string()),  # may be null
            ("kva_code", pa.string()),
        ]
    ),
    "medication": pa.schema(
        [
            ("person_key", pa.string()),
            ("unit_id", pa.string()),
            ("atc", pa.string()),
            ("start_date", pa.date32()),
            ("end_date", pa.date32()),
        ]
    ),
    "enrolment": pa.schema(
        [
            ("enrolment_id", pa.string()),
            ("person_key", pa.string()),
            ("programme", pa.string()),
            ("unit_id", pa.string()),
            ("start_date", pa.date32()),
            ("end_date", pa.date32()),
            ("phase", pa.string()),  # current phase id (LARO), may be null
            ("end_reason", pa.string()),
        ]
    ),
    "assessment": pa.schema(
        [
            ("person_key", pa.string()),
            ("unit_id", pa.string()),
            ("instrument", pa.string()),
            ("stage", pa.string()),
            ("date", pa.date32()),
            ("score", pa.float64()),  # total score
            ("subscores", pa.string()),  # JSON object {subscale: value}
            ("band", pa.string()),  # interpretation band id, may be null
        ]
    ),
}

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)


def empty_table(name: str) -> pa.Table:
    """An empty Arrow table with the canonical schema of ``name``."""
    return TABLES[name].empty_table()


def conform(name: str, table: pa.Table) -> pa.Table:
    """Select and cast ``table`` to the canonical schema of ``name`` (missing columns → null)."""
    schema = TABLES[name]
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table[field.name].cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)
