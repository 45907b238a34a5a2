"""The report's regional table (``analytics/regional.py``) and the catalogue's KVÅ
indicators are two implementations of one definition: they must agree exactly."""

from __future__ import annotations

from pathlib import Path

from utfall.analytics.executor.backends import duckdb_tables
from utfall.analytics.executor.run import compute_catalogue
from utfall.analytics.regional import regional_counts, tables_from_parquet
from utfall.config import Settings
from utfall.interop.extract_load import import_extract
from utfall.store.canonical import canonical_tables, write_parquet
from utfall.store.db import get_engine
from utfall.synth import generate


def test_regional_counts_equal_catalogue_indicators(tmp_path: Path, settings: Settings,
                                                     sqlite_url: str) -> None:
    generate(tmp_path / "extract", 2_000, 5)
    engine = get_engine(sqlite_url)
    import_extract(tmp_path / "extract", engine, settings=settings)
    write_parquet(canonical_tables(engine), tmp_path / "canonical")
    report = regional_counts(tables_from_parquet(tmp_path / "canonical")).to_pylist()
    res = compute_catalogue(
        duckdb_tables(tmp_path / "canonical"),
        indicators=["kva_au119", "kva_au124", "kva_du119", "persons_substance_dx"],
        breakdowns=["dx_group"],
    )
    catalogue: dict[tuple[str, int], dict[str, int]] = {}
    for r in res.to_pylist():
        catalogue.setdefault((r["level"], int(r["period"])), {})[r["indicator_id"]] = (
            r["numerator"] or 0)
    assert len(report) > 30
    for row in report:
        got = catalogue[(row["dx_group"], row["year"])]
        assert (got["persons_substance_dx"], got["kva_au119"], got["kva_au124"],
                got["kva_du119"]) == (row["persons"], row["AU119"], row["AU124"], row["DU119"])
