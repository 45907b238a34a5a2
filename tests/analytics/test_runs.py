"""Stored indicator runs: computed once per store state, then served from disk."""

from __future__ import annotations

import copy
from pathlib import Path

from tests.foundation.extract_factory import TABLES, write_extract
from utfall.analytics.runs import latest_results, runs_folder
from utfall.config import Settings
from utfall.interop.extract_load import import_extract
from utfall.store.db import get_engine


def _runs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def test_runs_are_stored_reused_and_renewed(tmp_path: Path, settings: Settings,
                                            sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    import_extract(write_extract(tmp_path / "a"), engine, settings=settings)
    assert latest_results(engine, compute=False) is None  # nothing stored yet
    first = latest_results(engine)
    assert first is not None and first.num_rows > 0
    folder = runs_folder()
    assert (folder / "LATEST").exists() and len(_runs(folder)) == 1
    # only disclosure-controlled results are stored: every cell carries its verdict
    assert {"suppressed", "suppression_reason"} <= set(first.column_names)
    small = [r for r in first.to_pylist() if r["numerator"] is not None
             and 1 <= r["numerator"] <= 4]
    assert small == []  # counts 1-4 never leave unmasked
    # same store state: served from disk, no new run
    again = latest_results(engine, compute=False)
    assert again is not None and again.num_rows == first.num_rows
    assert len(_runs(folder)) == 1
    # new data (a new import batch): one new run
    tables = copy.deepcopy(TABLES)
    tables["contacts"][0]["date"] = "2021-03-02"
    import_extract(write_extract(tmp_path / "b", tables), engine, settings=settings)
    assert latest_results(engine, compute=False) is None
    latest_results(engine)
    assert len(_runs(folder)) == 2
