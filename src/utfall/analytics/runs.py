"""Stored indicator runs: dashboards read the latest run instead of recomputing.

A run is the protected release of one data state (every indicator × breakdown and the
regional table, masked together: :func:`compute_release`); its result table is written by
:func:`utfall.analytics.executor.run.store_results` with the store's state (last import
batch, number of assessments and enrolments) in its metadata. A run is reused
while the store is in the same state; otherwise one new run is computed and stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, text

from utfall.analytics.disclosure import DisclosureRules, Release
from utfall.config import get_settings

DASHBOARD_BREAKDOWNS = ("total", "unit_id")


def runs_folder() -> Path:
    """Where stored runs live: ``<data_dir>/indicator-runs``."""
    return get_settings().data_dir / "indicator-runs"


def store_state(engine: Engine) -> str:
    """A token that changes whenever data the indicators read changes."""
    with engine.connect() as conn:
        # text() results are untyped (the stubs say Never): these are integers
        batch: int = conn.execute(
            text("SELECT coalesce(max(id), 0) FROM import_batch")).scalar_one()
        assessments: int = conn.execute(text("SELECT count(*) FROM assessment")).scalar_one()
        enrolments: int = conn.execute(text("SELECT count(*) FROM enrolment")).scalar_one()
    return f"{engine.url.render_as_string(hide_password=True)}|{batch}|{assessments}|{enrolments}"


def compute_release(
    tables: Mapping[str, Any],
    rules: DisclosureRules | None = None,
    *,
    years: Sequence[int] | None = None,
    catalogue: Any = None,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> Release:
    """The protected release of one data state: every indicator × every breakdown, the
    totals and the regional table, masked together (see ``docs/disclosure-control.md``).

    Serve subsets with :meth:`~utfall.analytics.disclosure.Release.subset`; never
    protect a subset on its own. ``options`` go to ``compute_catalogue`` (``age_bands``,
    ``population``, ``as_of``). Periods are protected independently, so ``years``
    gives the same masks for those years as the full release.
    """
    from utfall.analytics.disclosure import end_reason_families, protect_release
    from utfall.analytics.executor.run import compute_catalogue
    from utfall.analytics.regional import regional_counts
    from utfall.analytics.semantics.catalogue import ALL_BREAKDOWNS, load_catalogue

    catalogue = catalogue or load_catalogue()
    raw = compute_catalogue(tables, breakdowns=ALL_BREAKDOWNS, years=years,
                            catalogue=catalogue, progress=progress, **options)
    regional = regional_counts(tables)
    if years is not None:
        regional = regional.filter(pc.is_in(regional["year"], pa.array(list(years),
                                                                      pa.int32())))
    units = {str(u["unit_id"]): u for u in tables["unit"].to_pyarrow().to_pylist()}
    return protect_release(raw, rules, units=units, families=end_reason_families(catalogue),
                           regional=regional)


def latest_release(engine: Engine, folder: Path | None = None, *,
                   compute: bool = True) -> tuple[pa.Table, pa.Table] | None:
    """Protected ``(results, regional table)`` of the latest run for the store's state.

    Both come from one protected release (:func:`compute_release`), computed and
    stored once per data state. With ``compute=False`` a stale or missing run gives None.
    """
    from utfall.analytics.executor.run import load_results, store_results
    from utfall.analytics.regional import regional_display, tables_from_arrow
    from utfall.store.canonical import canonical_tables

    folder = folder or runs_folder()
    state = store_state(engine)
    try:
        results, meta = load_results(folder)
        regional_file = folder / str(meta.get("run_id")) / "regional.parquet"
        if meta.get("store_state") == state and regional_file.exists():
            return results, pq.read_table(regional_file)
    except (FileNotFoundError, NotADirectoryError, KeyError, ValueError):
        pass
    if not compute:
        return None
    tables = tables_from_arrow(canonical_tables(engine))
    release = compute_release(tables)
    regional = regional_display(release)
    run = store_results(release.results, folder, extra={"store_state": state})
    pq.write_table(regional, Path(run) / "regional.parquet")
    return release.results, regional


def latest_results(engine: Engine, folder: Path | None = None, *,
                   compute: bool = True) -> pa.Table | None:
    """The protected results of the latest run for the store's state (see
    :func:`latest_release`); every breakdown, so views filter instead of recomputing."""
    got = latest_release(engine, folder, compute=compute)
    return None if got is None else got[0]
