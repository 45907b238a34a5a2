"""The background run job: computes a run outside requests when the store changed,
reports progress, stores funnel limits, and pages read the stored run."""

from __future__ import annotations

import copy
from pathlib import Path

from tests.foundation.extract_factory import TABLES, write_extract
from utfall.analytics.jobs import RunJob
from utfall.analytics.runs import read_stored_run, run_is_current
from utfall.config import Settings
from utfall.interop.extract_load import import_extract
from utfall.store.db import get_engine


def test_job_computes_in_the_background_and_follows_new_data(
        tmp_path: Path, settings: Settings, sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    import_extract(write_extract(tmp_path / "a"), engine, settings=settings)
    assert read_stored_run() is None  # nothing stored: views say so, never compute
    job = RunJob(engine)
    seen: list[str] = []
    original = job._progress

    def spy(phase: str, done: int, total: int) -> None:
        seen.append(phase)
        original(phase, done, total)

    job._progress = spy  # type: ignore[method-assign]
    assert job.check() is True  # no run stored: one is started in a thread
    assert job.status()["state"] == "running" and job.status()["trigger"] == "no_run"
    assert job.start("admin") is False  # one at a time: remembered, runs after it
    assert job.wait(600)
    status = job.status()
    assert status["state"] == "done", status
    assert seen[0] == "read" and "indicators" in seen and seen[-1] == "store"
    run = read_stored_run()
    assert run is not None and run.run_id == status["run_id"]
    assert run.data_until is not None and run_is_current(engine, run)
    assert run.funnel is not None and run.curves is not None  # stored with the run
    assert {"suppressed", "value_display"} <= set(run.results.column_names)
    assert job.check() is False  # current: nothing to do
    # new data: the stored run is stale and the job starts a new one
    tables = copy.deepcopy(TABLES)
    tables["contacts"][0]["date"] = "2021-03-02"
    import_extract(write_extract(tmp_path / "b", tables), engine, settings=settings)
    assert not run_is_current(engine, run)
    assert job.check() is True and job.wait(600)
    newer = read_stored_run()
    assert newer is not None and newer.run_id != run.run_id and run_is_current(engine, newer)
