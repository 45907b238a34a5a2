"""The benchmark's regional table: both hand-written SQL variants, hand-written Ibis and the
catalogue engine give the same numbers on the benchmark generator's data (small scale)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

from utfall.analytics.executor.backends import duckdb_tables
from utfall.analytics.executor.run import compute_catalogue

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "indicators_bench.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("indicators_bench", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regional_table_three_ways(tmp_path: Path) -> None:
    bench = _bench_module()
    bench.generate(tmp_path, persons=2_000, contacts_per_person=5)
    sql = duckdb.connect().sql(bench.REGIONAL_SQL.format(d=tmp_path)).to_arrow_table()
    reduced = duckdb.connect().sql(bench.REGIONAL_SQL_REDUCED.format(d=tmp_path))
    assert reduced.to_arrow_table().to_pylist() == sql.to_pylist()
    ibis_rows = bench._regional_ibis(duckdb_tables(tmp_path)).to_pyarrow().to_pylist()
    res = compute_catalogue(
        duckdb_tables(tmp_path),
        indicators=["kva_au119", "kva_au124", "kva_du119", "persons_substance_dx"],
        breakdowns=["dx_group"],
    )
    engine: dict[tuple[str, int], dict[str, int]] = {}
    for r in res.to_pylist():
        engine.setdefault((r["level"], int(r["period"])), {})[r["indicator_id"]] = r["numerator"]
    assert sql.num_rows > 20
    for s, i in zip(sql.to_pylist(), ibis_rows, strict=True):
        want = (s["n"], s["au119"], s["au124"], s["du119"])
        assert (i["n"], i["au119"], i["au124"], i["du119"]) == want
        e = engine[(s["dx_group"], s["yr"])]
        assert (e["persons_substance_dx"], e["kva_au119"], e["kva_au124"], e["kva_du119"]) == want
