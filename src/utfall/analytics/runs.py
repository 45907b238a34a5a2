"""Stored indicator runs: dashboards read the latest run instead of recomputing.

A run is the protected release of one data state (every indicator × breakdown and the
regional table, masked together: :func:`compute_release`); its result table is written by
:func:`utfall.analytics.executor.run.store_results` with the store's state (last import
batch, number of assessments and enrolments) in its metadata. A run is reused
while the store is in the same state; otherwise one new run is computed and stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, text

from utfall.config import get_settings

if TYPE_CHECKING:  # the read path stays light: no engine or solver imports
    from utfall.analytics.disclosure import DisclosureRules, Release

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
    external: pa.Table | None = None,
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
    if external is not None and external.num_rows:  # protected together with the rest
        if years is not None:
            external = external.filter(pc.is_in(external["period"],
                                                pa.array([str(y) for y in years])))
        raw = pa.concat_tables([raw, external.cast(raw.schema)])
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
    from utfall.analytics.executor.run import load_results

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
    run = compute_and_store(engine, folder)
    return run.results, run.regional


def latest_results(engine: Engine, folder: Path | None = None, *,
                   compute: bool = True) -> pa.Table | None:
    """The protected results of the latest run for the store's state (see
    :func:`latest_release`); every breakdown, so views filter instead of recomputing."""
    got = latest_release(engine, folder, compute=compute)
    return None if got is None else got[0]


# --------------------------------------------------------------------------- stored runs
# Views (dashboard, explorer, funnel plots) read the latest *stored* run through
# :func:`read_stored_run`; they never compute. Runs are computed by
# :func:`compute_and_store`, called by the background job (:mod:`utfall.analytics.jobs`).

FUNNEL_BREAKDOWNS = ("unit_id", "organisation", "principal_type")
FUNNEL_LEVELS = (0.95, 0.998)
CURVE_POINTS = 40


def compute_and_store(engine: Engine, folder: Path | None = None, *,
                      progress: Callable[[str, int, int], None] | None = None) -> StoredRun:
    """Compute the protected release of the store's current state and store it as a run
    (results, regional table, funnel limits, "data up to" date); returns the stored run.

    ``progress(phase, done, total)`` is called as work advances (phases ``read``,
    ``indicators``, ``disclosure``, ``funnels``, ``store``).
    """
    from utfall.analytics.executor.run import data_span, store_results
    from utfall.analytics.regional import regional_display, tables_from_arrow
    from utfall.analytics.semantics.catalogue import load_catalogue
    from utfall.store.canonical import canonical_tables

    def step(phase: str, done: int = 0, total: int = 0) -> None:
        if progress is not None:
            progress(phase, done, total)

    folder = folder or runs_folder()
    state = store_state(engine)  # before reading: a change during the run makes it stale
    step("read")
    tables = tables_from_arrow(canonical_tables(engine))
    _years, as_of = data_span(tables)
    catalogue = load_catalogue()
    total = len(catalogue.indicators)
    done = [0]

    def indicator_done(_indicator_id: str) -> None:
        done[0] += 1
        step("indicators", min(done[0], total), total)

    step("indicators", 0, total)
    from utfall.analytics.external import external_results

    external = external_results(engine, catalogue, as_of)
    release = compute_release(tables, catalogue=catalogue, progress=indicator_done,
                              external=external)
    step("disclosure", total, total)
    regional = regional_display(release)
    step("funnels")
    points, curves = funnel_tables(release.results)
    step("store")
    import datetime as dt
    import uuid

    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    target = folder / run_id
    target.mkdir(parents=True, exist_ok=True)  # the extras first: LATEST is written last
    pq.write_table(regional, target / "regional.parquet")
    pq.write_table(points, target / "funnel.parquet")
    pq.write_table(curves, target / "funnel_curves.parquet")
    from utfall.analytics.quality import store_quality  # data quality beside the indicators

    store_quality(tables, target)
    store_results(release.results, folder, run_id=run_id, extra={
        "store_state": state, "data_until": as_of.isoformat()})
    run = read_stored_run(folder)  # loaded here, in the job, not by the next page
    assert run is not None
    return run


def funnel_tables(results: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Funnel points with limits and outlier flags (published cells only) and the
    limit curves over unit size, for every proportion indicator, period and
    :data:`FUNNEL_BREAKDOWNS` breakdown."""
    import math

    from utfall.analytics.semantics.catalogue import load_catalogue
    from utfall.analytics.stats import funnel, funnel_limit

    catalogue = load_catalogue()
    kinds = {i.id: i.kind for i in catalogue.every}
    proportions = [i for i, k in kinds.items() if k == "proportion"]
    wanted = results.filter(pc.is_in(results["indicator_id"], pa.array(proportions,
                                                                       pa.string())))
    rows: list[dict[str, Any]] = []
    for breakdown in FUNNEL_BREAKDOWNS:
        part = funnel(wanted.filter(pc.is_in(wanted["breakdown"],
                                             pa.array([breakdown, "total"]))),
                      breakdown=breakdown, levels=FUNNEL_LEVELS)
        rows.extend({**r, "breakdown": breakdown} for r in part.to_pylist())
    points = pa.Table.from_pylist(rows, schema=FUNNEL_SCHEMA)
    curves: list[dict[str, Any]] = []
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["indicator_id"], r["breakdown"], r["period"]), []).append(r)
    for (ind, breakdown, period), members in groups.items():
        p0 = float(members[0]["target"])
        top = max(int(m["denominator"]) for m in members)
        lo_n = max(1, min(int(m["denominator"]) for m in members) // 2)
        hi_n = max(top + top // 10, lo_n + 1)
        sizes = sorted({round(math.exp(math.log(lo_n) + (math.log(hi_n) - math.log(lo_n))
                                       * k / (CURVE_POINTS - 1))) for k in range(CURVE_POINTS)})
        for n in sizes:
            curves.append({"indicator_id": ind, "breakdown": breakdown, "period": period,
                           "n": int(n),
                           "low_95": funnel_limit(p0, n, 0.025),
                           "high_95": funnel_limit(p0, n, 0.975),
                           "low_998": funnel_limit(p0, n, 0.001),
                           "high_998": funnel_limit(p0, n, 0.999)})
    return points, pa.Table.from_pylist(curves, schema=CURVE_SCHEMA)


_LIMITS = ("low_95", "high_95", "low_998", "high_998")
FUNNEL_SCHEMA = pa.schema(
    [("indicator_id", pa.string()), ("period", pa.string()), ("level", pa.string()),
     ("numerator", pa.int64()), ("denominator", pa.int64()), ("value", pa.float64()),
     ("target", pa.float64())] + [(c, pa.float64()) for c in _LIMITS]
    + [("flag", pa.string()), ("breakdown", pa.string())])
CURVE_SCHEMA = pa.schema(
    [("indicator_id", pa.string()), ("breakdown", pa.string()), ("period", pa.string()),
     ("n", pa.int64())] + [(c, pa.float64()) for c in _LIMITS])


@dataclass
class StoredRun:
    """One stored run, loaded once per process and indexed for fast views."""

    run_id: str
    meta: dict[str, Any]
    results: pa.Table  # protected long results, sorted by indicator, breakdown, period
    regional: pa.Table | None
    funnel: pa.Table | None
    curves: pa.Table | None
    spans: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)

    @property
    def data_until(self) -> str | None:
        """The latest data date the run saw (ISO), if recorded."""
        return self.meta.get("data_until")

    @property
    def computed_at(self) -> str | None:
        """When the run was stored (UTC, ISO)."""
        return self.meta.get("computed_at")

    def rows(self, indicator_id: str, breakdown: str) -> list[dict[str, Any]]:
        """Protected rows of one indicator and breakdown (every period)."""
        span = self.spans.get((indicator_id, breakdown))
        if span is None:
            return []
        return self.results.slice(span[0], span[1]).to_pylist()

    def periods(self, indicator_id: str) -> list[str]:
        """Periods of an indicator's total rows, oldest first."""
        return sorted({str(r["period"]) for r in self.rows(indicator_id, "total")})

    def funnel_rows(self, indicator_id: str, breakdown: str, period: str
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Stored funnel points and limit curves of one indicator, breakdown and period."""
        out: list[list[dict[str, Any]]] = []
        for table in (self.funnel, self.curves):
            if table is None or table.num_rows == 0:
                out.append([])
                continue
            mask = pc.and_(pc.and_(pc.equal(table["indicator_id"], indicator_id),
                                   pc.equal(table["breakdown"], breakdown)),
                           pc.equal(table["period"], period))
            out.append(table.filter(mask).to_pylist())
        return out[0], out[1]

    def funnel_periods(self, indicator_id: str, breakdown: str) -> list[str]:
        """Periods with stored funnel points for an indicator and breakdown."""
        if self.funnel is None or self.funnel.num_rows == 0:
            return []
        mask = pc.and_(pc.equal(self.funnel["indicator_id"], indicator_id),
                       pc.equal(self.funnel["breakdown"], breakdown))
        return sorted(set(self.funnel.filter(mask)["period"].to_pylist()))


_loaded: dict[tuple[str, str], StoredRun] = {}
_load_lock = threading.Lock()


def latest_run_id(folder: Path | None = None) -> str | None:
    """The id of the newest stored run (``LATEST``), or None."""
    try:
        return ((folder or runs_folder()) / "LATEST").read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def read_stored_run(folder: Path | None = None) -> StoredRun | None:
    """The newest stored run (whatever the store's state), loaded once per process.

    Never computes: when nothing is stored the answer is None and the views say so.
    Funnel limits missing from an older run are derived from its published cells once.
    """
    import json

    folder = folder or runs_folder()
    run_id = latest_run_id(folder)
    if run_id is None:
        return None
    key = (str(folder.resolve()), run_id)
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        try:
            meta = json.loads((folder / run_id / "run.json").read_text(encoding="utf-8"))
            results = pq.read_table(folder / run_id / "results.parquet")
        except (FileNotFoundError, NotADirectoryError, KeyError, ValueError):
            return None
        metadata = results.schema.metadata
        results = results.sort_by([("indicator_id", "ascending"), ("breakdown", "ascending"),
                                   ("period", "ascending"), ("level", "ascending")])
        results = results.replace_schema_metadata(metadata)
        spans: dict[tuple[str, str], tuple[int, int]] = {}
        ids = results["indicator_id"].to_pylist()
        bds = results["breakdown"].to_pylist()
        for i, k in enumerate(zip(ids, bds, strict=True)):
            start, length = spans.get(k, (i, 0))
            spans[k] = (start, length + 1)
        base = folder / run_id

        def optional(name: str) -> pa.Table | None:
            path = base / name
            return pq.read_table(path) if path.exists() else None

        funnel, curves = optional("funnel.parquet"), optional("funnel_curves.parquet")
        if funnel is None:
            funnel, curves = funnel_tables(results)
        run = StoredRun(run_id, meta, results, optional("regional.parquet"), funnel, curves,
                        spans)
        _loaded.clear()  # keep only the newest run in memory
        _loaded[key] = run
        return run


def run_is_current(engine: Engine, run: StoredRun | None) -> bool:
    """Whether ``run`` was computed from the store's current state."""
    return run is not None and run.meta.get("store_state") == store_state(engine)
