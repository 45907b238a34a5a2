"""Stored indicator runs: dashboards read the latest run instead of recomputing.

A run is the disclosure-controlled result table of the catalogue, written by
:func:`utfall.analytics.executor.run.store_results` with the store's state (last import
batch, number of assessments and enrolments) in its metadata. A run is reused
while the store is in the same state; otherwise one new run is computed and stored.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from sqlalchemy import Engine, text

from utfall.config import get_settings

DASHBOARD_BREAKDOWNS = ("total", "unit_id")


def runs_folder() -> Path:
    """Where stored runs live: ``<data_dir>/indicator-runs``."""
    return get_settings().data_dir / "indicator-runs"


def store_state(engine: Engine) -> str:
    """A token that changes whenever data the indicators read changes."""
    with engine.connect() as conn:
        batch = conn.execute(text("SELECT coalesce(max(id), 0) FROM import_batch")).scalar_one()
        assessments = conn.execute(text("SELECT count(*) FROM assessment")).scalar_one()
        enrolments = conn.execute(text("SELECT count(*) FROM enrolment")).scalar_one()
    return f"{engine.url.render_as_string(hide_password=True)}|{batch}|{assessments}|{enrolments}"


def latest_results(engine: Engine, folder: Path | None = None, *,
                   compute: bool = True) -> pa.Table | None:
    """The latest stored run for the store's current state, computing one if needed.

    Only disclosure-controlled results are stored or returned. With ``compute=False``
    a stale or missing run gives None.
    """
    from utfall.analytics.disclosure import apply_disclosure
    from utfall.analytics.executor.run import compute_catalogue, load_results, store_results
    from utfall.analytics.regional import tables_from_arrow
    from utfall.store.canonical import canonical_tables

    folder = folder or runs_folder()
    state = store_state(engine)
    try:
        results, meta = load_results(folder)
        if meta.get("store_state") == state:
            return results
    except (FileNotFoundError, NotADirectoryError, KeyError, ValueError):
        pass
    if not compute:
        return None
    tables = tables_from_arrow(canonical_tables(engine))
    disclosed = apply_disclosure(compute_catalogue(tables, breakdowns=DASHBOARD_BREAKDOWNS))
    store_results(disclosed, folder, extra={"store_state": state})
    return disclosed
