"""The whole catalogue gives identical numbers on DuckDB, PostgreSQL and PySpark.

Needs the PostgreSQL server on 127.0.0.1:5432 (``scripts/test.sh`` starts it) and
Java for Spark; the tests fail rather than skip when a service is missing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pytest

from utfall.analytics.example import AS_OF, YEARS, example_population, example_tables
from utfall.analytics.executor.backends import duckdb_tables, postgres_tables, spark_tables
from utfall.analytics.executor.run import compute_catalogue

PG = dict(
    host=os.environ.get("UTFALL_TEST_PG_HOST", "127.0.0.1"),
    port=int(os.environ.get("UTFALL_TEST_PG_PORT", "5432")),
    user=os.environ.get("UTFALL_TEST_PG_USER", "postgres"),
    database=os.environ.get("UTFALL_TEST_PG_DATABASE", "test"),
)
KW = dict(years=YEARS, as_of=AS_OF, population=example_population())


@pytest.fixture(scope="module")
def duckdb_results() -> pa.Table:
    return compute_catalogue(duckdb_tables(example_tables()), **KW)


@pytest.fixture(scope="session")
def spark_session() -> Iterator[object]:
    """One local Spark session for the whole test session."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("utfall-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.adaptive.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _diff(a: pa.Table, b: pa.Table) -> list:
    ra, rb = a.to_pylist(), b.to_pylist()
    return [(x, y) for x, y in zip(ra, rb, strict=False) if x != y][:5]


def test_duckdb_single_expression_equals_staged(duckdb_results: pa.Table) -> None:
    single = compute_catalogue(duckdb_tables(example_tables()), materialize=False, **KW)
    assert single.equals(duckdb_results), _diff(single, duckdb_results)


@pytest.mark.postgres
def test_postgres_parity(duckdb_results: pa.Table) -> None:
    import ibis

    schema = f"utfall_ind_test_{uuid.uuid4().hex[:8]}"
    con = ibis.postgres.connect(**PG)
    try:
        tables = postgres_tables(example_tables(), con=con, schema=schema)
        results = compute_catalogue(tables, **KW)
    finally:
        con.raw_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE').close()
        con.disconnect()
    assert results.num_rows == duckdb_results.num_rows
    assert results.equals(duckdb_results), _diff(results, duckdb_results)


@pytest.mark.spark
@pytest.mark.slow
def test_spark_parity(duckdb_results: pa.Table, spark_session) -> None:
    results = compute_catalogue(spark_tables(example_tables(), spark_session), **KW)
    assert results.num_rows == duckdb_results.num_rows
    assert results.equals(duckdb_results), _diff(results, duckdb_results)
