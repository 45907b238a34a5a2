"""The canonical analytics schema read from the operational store (no identity numbers)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, Row, text

from utfall.domain.canonical_schema import TABLES, conform

QUERIES: dict[str, str] = {
    "person": "SELECT person_key, sex, birth_date, municipality_code AS municipality, death_date "
              "FROM person",
    "unit": "SELECT u.unit_id, u.name, o.name AS organisation, o.principal_type, u.care_level, "
            "u.municipality_code FROM unit u JOIN organisation o ON o.id = u.organisation_id",
    "contact": "SELECT contact_id, person_key, unit_id, date, end_date, contact_type, main_dx, "
               "dx_group, other_dx, psych_groups FROM contact",
    "procedure": "SELECT person_key, unit_id, date, contact_id, kva_code FROM procedure",
    "medication": "SELECT person_key, unit_id, atc, start_date, end_date FROM medication",
    "enrolment": "SELECT row_key AS enrolment_id, person_key, programme, unit_id, start_date, "
                 "end_date, phase, end_reason FROM enrolment",
    # the current version of each assessment; voided ones are left out (care.corrections)
    "assessment": "SELECT person_key, unit_id, instrument, stage, date, score, subscores, band "
                  "FROM assessment WHERE row_key NOT IN "
                  "(SELECT assessment_id FROM care_assessment_void)",
}
BATCH = 200_000


def _fetch(engine: Engine, sql: str) -> pa.Table:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True).execute(text(sql))
        names = list(result.keys())
        batches: list[Sequence[Row[Any]]] = []
        while rows := result.fetchmany(BATCH):
            batches.append(rows)
    columns: dict[str, list] = {n: [] for n in names}
    for rows in batches:
        for i, n in enumerate(names):
            columns[n].extend(r[i] for r in rows)
    return pa.table({n: _array(v) for n, v in columns.items()}) if names else pa.table({})


def _array(values: list) -> pa.Array:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, dict):
        import json

        return pa.array([json.dumps(v, sort_keys=True) if v is not None else None
                         for v in values], pa.string())
    return pa.array(values)


def _dates(table: pa.Table, name: str) -> pa.Table:
    schema = TABLES[name]
    for field in schema:
        if field.name in table.column_names and pa.types.is_date(field.type):
            col = table[field.name]
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) \
                    or pa.types.is_null(col.type):
                col = pc.cast(col, pa.date32()) if not pa.types.is_null(col.type) \
                    else pa.nulls(len(col), pa.date32())
                table = table.set_column(table.column_names.index(field.name), field.name, col)
    return table


def canonical_tables(engine: Engine) -> dict[str, pa.Table]:
    """All canonical tables as Arrow tables, keyed by ``person_key`` only."""
    tables: dict[str, pa.Table] = {}
    for name, sql in QUERIES.items():
        table = _fetch(engine, sql)
        if table.num_rows == 0:
            tables[name] = TABLES[name].empty_table()
            continue
        if name == "person":
            birth = table["birth_date"]
            if pa.types.is_string(birth.type):
                birth = pc.cast(birth, pa.date32())
            table = table.append_column("birth_year", pc.year(birth).cast(pa.int32()))
        tables[name] = conform(name, _dates(table, name))
    return tables


def write_parquet(tables: dict[str, pa.Table], folder: Path) -> list[Path]:
    """Write one Parquet file per canonical table into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in TABLES:
        path = folder / f"{name}.parquet"
        pq.write_table(tables.get(name, TABLES[name].empty_table()), path)
        paths.append(path)
    return paths
