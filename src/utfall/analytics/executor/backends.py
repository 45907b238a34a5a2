"""Query engines for the canonical tables: DuckDB (default), PostgreSQL, PySpark.

Each function returns ``dict[str, ibis.Table]`` with every canonical table (an
empty one where the source lacks it) so the compiler can run unchanged.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq
from ibis.backends.sql.compilers.pyspark import PySparkCompiler

from utfall.analytics.schema import TABLES, conform

POPULATION_TABLE = "population"


def _spark_bit_or(self: Any, op: Any, *, arg: Any, where: Any) -> Any:
    return self.agg.bit_or(arg, where=where)


# Ibis 12 has no PySpark rule for the bit_or aggregate the fused contact pass uses
# (utfall.analytics.executor.fusion); Spark SQL has had bit_or() since 3.0.
PySparkCompiler.visit_BitOr = _spark_bit_or


class EngineTables(dict):
    """``dict[str, ibis.Table]`` that also keeps its backend connection alive."""

    backend: Any = None


def _arrow_or_empty(name: str, source: Mapping[str, pa.Table]) -> pa.Table:
    table = source.get(name)
    return conform(name, table) if table is not None else TABLES[name].empty_table()


def parquet_path(folder: Path, name: str) -> Path | None:
    """``<folder>/<name>.parquet`` or a ``<folder>/<name>/`` dataset folder, if present."""
    file = folder / f"{name}.parquet"
    if file.exists():
        return file
    sub = folder / name
    if sub.is_dir() and any(sub.glob("*.parquet")):
        return sub
    return None


def read_parquet_folder(folder: str | Path) -> dict[str, pa.Table]:
    """Canonical tables of a Parquet folder (as written by ``utfall export-analytics``)."""
    folder = Path(folder)
    out: dict[str, pa.Table] = {}
    for name in TABLES:
        path = parquet_path(folder, name)
        if path is not None:
            out[name] = conform(name, pq.read_table(path))
    return out


def default_threads() -> int:
    """DuckDB worker threads: one more than the CPUs. The indicator catalogue is ~7 %
    faster with 3 threads than with 2 on the 2-core reference machine (a thread waiting
    on Parquet reads or on spilled blocks leaves a core idle otherwise; see
    docs/performance.md)."""
    return (os.cpu_count() or 1) + 1


def duckdb_tables(
    source: str | Path | Mapping[str, pa.Table],
    con: Any | None = None,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_directory: str | Path | None = None,
) -> EngineTables:
    """Canonical tables on DuckDB from a Parquet folder (read lazily) or Arrow tables.

    ``memory_limit`` (e.g. ``"1GB"``) caps DuckDB's memory; it spills to
    ``temp_directory`` beyond that. ``threads`` defaults to :func:`default_threads`.
    """
    con = con or ibis.duckdb.connect()
    con.raw_sql(f"SET threads = {int(threads or default_threads())}")
    if memory_limit:
        con.raw_sql(f"SET memory_limit = '{memory_limit}'")
    if temp_directory:
        con.raw_sql(f"SET temp_directory = '{temp_directory}'")
    con.raw_sql("SET preserve_insertion_order = false")
    raw = con.con
    out = EngineTables()
    out.backend = con
    if isinstance(source, (str, Path)):
        folder = Path(source)
        for name, schema in TABLES.items():
            path = parquet_path(folder, name)
            if path is None:
                raw.register(f"_empty_{name}", schema.empty_table())
                raw.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM "_empty_{name}"')
            else:
                glob = str(path / "*.parquet") if path.is_dir() else str(path)
                present = set(pq.read_schema(next(iter(_files(path)))).names)
                cols = ", ".join(
                    (
                        f'CAST("{f.name}" AS {_duck_type(f.type)}) AS "{f.name}"'
                        if f.name in present
                        else f'CAST(NULL AS {_duck_type(f.type)}) AS "{f.name}"'
                    )
                    for f in schema
                )
                raw.execute(
                    f'CREATE OR REPLACE VIEW "{name}" AS SELECT {cols} '
                    f"FROM read_parquet('{glob}')"
                )
            out[name] = con.table(name)
    else:
        for name in TABLES:
            raw.register(name, _arrow_or_empty(name, source))
            out[name] = con.table(name)
    return out


def _files(path: Path) -> list[Path]:
    return sorted(path.glob("*.parquet")) if path.is_dir() else [path]


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_date32(t):
        return "DATE"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    raise TypeError(f"unsupported type {t}")


def postgres_tables(
    source: Mapping[str, pa.Table] | str | Path,
    *,
    con: Any | None = None,
    schema: str = "utfall_analytics",
    **connect_kwargs: Any,
) -> dict[str, ir.Table]:
    """Load Arrow tables (or a Parquet folder) into ``schema`` of PostgreSQL and return them.

    ``connect_kwargs`` go to ``ibis.postgres.connect`` (host, user, database…)
    when no connection is given. Existing tables in ``schema`` are replaced.
    """
    if isinstance(source, (str, Path)):
        source = read_parquet_folder(source)
    con = con or ibis.postgres.connect(**connect_kwargs)
    con.raw_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"').close()
    out = EngineTables()
    out.backend = con
    for name in TABLES:
        con.raw_sql(f'DROP TABLE IF EXISTS "{schema}"."{name}"').close()
        out[name] = con.create_table(name, _arrow_or_empty(name, source), database=schema)
    return out


def spark_tables(
    source: Mapping[str, pa.Table] | str | Path, session: Any, *, prefix: str = "utfall_"
) -> dict[str, ir.Table]:
    """Canonical tables as temporary views in a (local-mode) Spark session.

    ``source`` is Arrow tables or a Parquet folder (read by Spark itself).
    """
    con = ibis.pyspark.connect(session)
    out = EngineTables()
    out.backend = con
    if isinstance(source, (str, Path)):
        folder = Path(source)
        for name in TABLES:
            path = parquet_path(folder, name)
            if path is None:
                _spark_view(session, f"{prefix}{name}", TABLES[name].empty_table())
                out[name] = con.table(f"{prefix}{name}")
            else:
                df = session.read.parquet(str(path))
                df.createOrReplaceTempView(f"{prefix}{name}")
                out[name] = con.table(f"{prefix}{name}")
        return out
    for name in TABLES:
        _spark_view(session, f"{prefix}{name}", _arrow_or_empty(name, source))
        out[name] = con.table(f"{prefix}{name}")
    return out


def _spark_view(session: Any, view: str, table: pa.Table) -> None:
    """Register an Arrow table as a temporary view (no files in a warehouse folder)."""
    df = session.createDataFrame(table)
    df.createOrReplaceTempView(view)



def upload(backend: Any, name: str, table: pa.Table) -> ir.Table:
    """Put a small Arrow table (years, population) next to the canonical tables."""
    if backend.name == "duckdb":
        backend.con.register(name, table)
        return backend.table(name)
    if backend.name == "pyspark":
        _spark_view(backend._session, name, table)
        return backend.table(name)
    return backend.create_table(name, table, temp=True)  # unique name: no overwrite


@contextmanager
def materialized(expr: ir.Table) -> Iterator[ir.Table]:
    """Materialise ``expr`` for the duration of the block (temp table / cached DataFrame)."""
    backend = expr._find_backend()
    if backend.name == "pyspark":
        cached = expr.cache()
        try:
            yield cached
        finally:
            cached.release()
        return
    name = f"utfall_tmp_{uuid.uuid4().hex[:12]}"
    table = backend.create_table(name, expr, temp=True)
    try:
        yield table
    finally:
        cursor = backend.raw_sql(f'DROP TABLE IF EXISTS "{name}"')
        if backend.name == "postgres":  # DuckDB returns its connection: never close it
            cursor.close()
