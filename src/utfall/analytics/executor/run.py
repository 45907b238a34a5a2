"""Compute the indicator catalogue and store the results of a run.

:func:`compute_catalogue` is the entry point: canonical tables in (Ibis tables on
any engine), one long result table out, one row per cell::

    indicator_id  str     e.g. "kva_au119"
    period        str     e.g. "2021"
    breakdown     str     total | unit_id | organisation | principal_type | care_level
                          | dx_group | sex | age_band | municipality
    level         str     "" for total, else the breakdown value ("unknown" if missing)
    numerator     int64   nullable (persons/enrolments/events in the numerator)
    denominator   int64   nullable (population size; inhabitants for rates)
    value         float64 proportion 0–1, mean, median days, count or rate
    ci_low        float64 nullable, Wilson 95 % for proportions (and rates)
    ci_high       float64 nullable

These raw results are *not* for display: pass them through
``utfall.analytics.disclosure.apply_disclosure`` first.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from utfall.analytics.executor import fusion, levelwords, timeto
from utfall.analytics.executor.backends import materialized, upload
from utfall.analytics.executor.fusion import FusionPlan, fusable, plan_fusions
from utfall.analytics.executor.variants import compute_variants
from utfall.analytics.schema import RESULT_SCHEMA
from utfall.analytics.semantics.catalogue import (
    ALL_BREAKDOWNS,
    Catalogue,
    Indicator,
    load_catalogue,
)
from utfall.analytics.semantics.compiler import (
    DEFAULT_AGE_BANDS,
    AgeBand,
    CompileContext,
    breakdown_plan,
    compile_base,
    compile_indicator,
    is_statistic,
    reduce_subjects,
    shared_key,
    shared_table,
    stage_cells,
    stage_table,
    time_to_events,
    variant_key,
)
from utfall.analytics.stats import wilson
from utfall.content import content_text

POPULATION_SCHEMA = pa.schema(
    [
        ("municipality", pa.string()),
        ("year", pa.int64()),
        ("sex", pa.string()),
        ("population", pa.int64()),
    ]
)
VALUE_DECIMALS = 9  # means/medians are rounded so engines agree to the last digit
UNIT_ATTRIBUTES = ("organisation", "principal_type", "care_level")


def read_population(path: str | Path | None = None) -> pa.Table:
    """Population CSV (municipality, year, sex, population); the shipped example if None."""
    convert = pacsv.ConvertOptions(column_types=POPULATION_SCHEMA)
    if path is None:
        data = content_text("indicators/population_example.csv").encode()
        table = pacsv.read_csv(io.BytesIO(data), convert_options=convert)
    else:
        table = pacsv.read_csv(str(path), convert_options=convert)
    missing = set(POPULATION_SCHEMA.names) - set(table.column_names)
    if missing:
        raise ValueError(f"population file lacks columns {sorted(missing)}")
    return table.select(POPULATION_SCHEMA.names).cast(POPULATION_SCHEMA)


def data_span(tables: Mapping[str, ir.Table]) -> tuple[tuple[int, ...], dt.date]:
    """Calendar years from the first to the last contact date, and the data cut-off
    (the latest contact date; today if there are no contacts). One query."""
    c = tables["contact"]
    row = c.aggregate(lo=c.date.min(), hi=c.date.max()).to_pyarrow().to_pylist()[0]
    if row["lo"] is None:
        return (), dt.date.today()
    return tuple(range(row["lo"].year, row["hi"].year + 1)), row["hi"]


def finalise(raw: pa.Table, catalogue: Catalogue) -> pa.Table:
    """Add ``value`` and Wilson ``ci_low``/``ci_high`` to raw engine output, sorted."""
    if raw.num_rows == 0:
        return RESULT_SCHEMA.empty_table()
    ids = raw["indicator_id"].to_pylist()
    num = raw["numerator"].to_numpy(zero_copy_only=False).astype("float64")
    den = raw["denominator"].to_numpy(zero_copy_only=False).astype("float64")
    stat = raw["stat"].to_numpy(zero_copy_only=False).astype("float64")
    kinds = {i.id: i for i in catalogue.indicators}
    value = np.full(len(ids), np.nan)
    low = np.full(len(ids), np.nan)
    high = np.full(len(ids), np.nan)
    lo_all, hi_all = wilson(num, den)
    for idx, ind_id in enumerate(ids):
        ind = kinds[ind_id]
        if ind.kind == "count":
            value[idx] = num[idx]
        elif ind.kind == "rate":
            if den[idx] > 0:
                value[idx] = num[idx] / den[idx] * ind.per
                low[idx], high[idx] = lo_all[idx] * ind.per, hi_all[idx] * ind.per
        elif is_statistic(ind):
            if not np.isnan(stat[idx]):
                value[idx] = round(float(stat[idx]), VALUE_DECIMALS)
        elif den[idx] > 0:
            value[idx] = num[idx] / den[idx]
            low[idx], high[idx] = lo_all[idx], hi_all[idx]
    out = pa.table(
        {
            "indicator_id": raw["indicator_id"].cast(pa.string()),
            "period": raw["period"].cast(pa.string()),
            "breakdown": raw["breakdown"].cast(pa.string()),
            "level": raw["level"].cast(pa.string()),
            "numerator": raw["numerator"].cast(pa.int64()),
            "denominator": raw["denominator"].cast(pa.int64()),
            "value": pa.array(value, pa.float64(), from_pandas=True),
            "ci_low": pa.array(low, pa.float64(), from_pandas=True),
            "ci_high": pa.array(high, pa.float64(), from_pandas=True),
        },
        schema=RESULT_SCHEMA,
    )
    order = {i: n for n, i in enumerate(catalogue.ids)}
    border = {b: n for n, b in enumerate(ALL_BREAKDOWNS)}
    keys = pa.table(
        {
            "i": pa.array([order[i] for i in ids], pa.int32()),
            "p": out["period"],
            "b": pa.array([border.get(b, 99) for b in out["breakdown"].to_pylist()], pa.int32()),
            "l": out["level"],
        }
    )
    idx = pc.sort_indices(keys, sort_keys=[("i", "ascending"), ("p", "ascending"),
                                           ("b", "ascending"), ("l", "ascending")])
    return out.take(idx)


def _context(
    tables: Mapping[str, ir.Table],
    indicators: Sequence[str] | None,
    years: Sequence[int] | None,
    as_of: dt.date | None,
    age_bands: Sequence[AgeBand],
    population: pa.Table | None,
    catalogue: Catalogue,
) -> tuple[CompileContext, list[Indicator]]:
    selected: list[Indicator] = (
        [catalogue.get(i) for i in indicators] if indicators else list(catalogue.indicators)
    )
    if not years or not as_of:
        span_years, cutoff = data_span(tables)
        years = tuple(years) if years else span_years
        as_of = as_of or cutoff
    years = tuple(years)
    years = years or (as_of.year,)
    backend = tables["contact"]._find_backend()
    tag = uuid.uuid4().hex[:8]
    years_table = upload(
        backend, f"utfall_years_{tag}",
        pa.table({"period": pa.array(list(years), pa.int64())}),
    )
    pop_expr = None
    if any(i.kind == "rate" for i in selected):
        pop = population if population is not None else read_population()
        pop_expr = upload(backend, f"utfall_population_{tag}", pop.cast(POPULATION_SCHEMA))
    ctx = CompileContext(
        years=years, as_of=as_of, age_bands=tuple(age_bands),
        population=pop_expr, years_table=years_table,
    )
    return ctx, selected


def compile_catalogue(
    tables: Mapping[str, ir.Table],
    *,
    indicators: Sequence[str] | None = None,
    breakdowns: Sequence[str] = ALL_BREAKDOWNS,
    years: Sequence[int] | None = None,
    as_of: dt.date | None = None,
    age_bands: Sequence[AgeBand] = DEFAULT_AGE_BANDS,
    population: pa.Table | None = None,
    catalogue: Catalogue | None = None,
) -> dict[str, ir.Table]:
    """One Ibis expression per indicator (not executed)."""
    catalogue = catalogue or load_catalogue()
    ctx, selected = _context(tables, indicators, years, as_of, age_bands, population, catalogue)
    return {ind.id: compile_indicator(tables, ind, ctx, breakdowns) for ind in selected}


@dataclass(frozen=True)
class IndicatorGroup:
    """Indicators computed together: ``time_to`` ones sharing index events (``timeto``),
    or ``variants``, enrolment proportions differing only in end reasons (``variant_key``)."""

    kind: str
    indicators: tuple[Indicator, ...]


WorkUnit = Indicator | FusionPlan | IndicatorGroup


def _group_key(ind: Indicator) -> tuple[str, str] | None:
    """The :class:`IndicatorGroup` an indicator may join (kind, key), if any."""
    if ind.kind == "time_to":
        return "time_to", cast(str, shared_key(ind))  # a str for every time_to indicator
    key = variant_key(ind)
    return None if key is None else ("variants", key)


def _run_units(
    tables: Mapping[str, ir.Table],
    selected: Sequence[Indicator],
    ctx: CompileContext,
    breakdowns: Sequence[str],
    materialize: bool,
    progress: Callable[[str], None] | None,
) -> list[pa.Table]:
    parts: list[pa.Table] = []
    for unit in _work_units(selected, fuse=materialize):
        if isinstance(unit, FusionPlan):
            parts.extend(_compute_fused(tables, unit, ctx, breakdowns))
            done = list(unit.indicators)
        elif isinstance(unit, IndicatorGroup):
            compute = _compute_time_to if unit.kind == "time_to" else compute_variants
            parts.extend(compute(tables, unit.indicators, ctx, breakdowns))
            done = list(unit.indicators)
        elif not materialize:
            parts.append(compile_indicator(tables, unit, ctx, breakdowns).to_pyarrow())
            done = [unit]
        else:
            parts.extend(_compute_staged(tables, unit, ctx, breakdowns))
            done = [unit]
        if progress:
            for ind in done:
                progress(ind.id)
    return parts


def _work_units(selected: Sequence[Indicator], *, fuse: bool) -> list[WorkUnit]:
    """Work units in catalogue order (a group where its first indicator is): the fused
    contact plans, groups of two or more indicators (:func:`_group_key`), the rest one
    by one."""
    if not fuse:
        return list(selected)
    fused = [i for i in selected if fusable(i)]
    groups: dict[tuple[str, str], list[Indicator]] = {}
    for ind in selected:
        if not fusable(ind) and (key := _group_key(ind)) is not None:
            groups.setdefault(key, []).append(ind)
    units: list[WorkUnit] = []
    for ind in selected:
        key = _group_key(ind)
        if fusable(ind):
            if ind is fused[0]:
                units.extend(plan_fusions(fused))
        elif key is not None and len(groups[key]) > 1:
            if ind is groups[key][0]:
                units.append(IndicatorGroup(key[0], tuple(groups[key])))
        else:
            units.append(ind)
    return units


def _compute_time_to(
    tables: Mapping[str, ir.Table],
    inds: Sequence[Indicator],
    ctx: CompileContext,
    breakdowns: Sequence[str],
) -> list[pa.Table]:
    """Execute time_to indicators sharing index events (:mod:`.timeto`)."""
    wanted = [b for b in breakdowns if any(b in i.allowed_breakdowns for i in inds)]
    out: list[pa.Table] = []
    if not wanted:
        return out
    key = shared_key(inds[0])
    events = ctx.shared.get(key) if key is not None else None
    if events is None:
        events = time_to_events(tables, inds[0], ctx)
    with materialized(timeto.enriched_events(tables, events, ctx)) as enriched:
        unique = timeto.subjects_unique(enriched)
        for b in wanted:
            wide = timeto.cells(enriched, inds, ctx, b, unique).to_pyarrow()
            out.extend(timeto.unfuse(wide, inds, b))
    return out


def _compute_fused(
    tables: Mapping[str, ir.Table],
    plan: FusionPlan,
    ctx: CompileContext,
    breakdowns: Sequence[str],
) -> list[pa.Table]:
    """Execute a fused group of contact indicators (see :mod:`utfall.analytics.executor.fusion`)."""
    stages = fusion.stage_plan(plan, breakdowns)
    out: list[pa.Table] = []
    if not stages:
        return out
    # few-level unit attributes are counted from words in the person stage (levelwords)
    words: list[levelwords.LevelWords] = []
    codes = None
    if "unit" in stages:
        unit = tables["unit"].select("unit_id", *UNIT_ATTRIBUTES).to_pyarrow()
        words = list(levelwords.plan_words(unit, stages["unit"], len(plan.bits)).values())
    if words:
        codes = upload(tables["contact"]._find_backend(),
                       f"utfall_unitcodes_{uuid.uuid4().hex[:8]}",
                       levelwords.unit_codes(unit, words))
        moved = {lw.breakdown for lw in words}
        stages.setdefault("person", [])
        stages["unit"] = [b for b in stages["unit"] if b not in moved]
        if not stages["unit"]:
            del stages["unit"]
    keys = fusion.reduced_keys(stages)
    if words and "unit_id" not in keys:  # the words are looked up by unit
        keys.insert(0, "unit_id")
    # integer person ids pay off when the reduced table is grouped again more than once
    regroups = sum(len(v) for v in stages.values()) + len(words)
    with ExitStack() as stack:
        ids = stack.enter_context(materialized(fusion.person_ids(tables))) if regroups > 1 else None
        # 20 M contacts become ~12 M narrow rows (period, pid, unit, group, bits)
        reduced = stack.enter_context(
            materialized(fusion.reduced_bits(tables, plan, ctx, ids, keys))
        )
        if ids is not None and _count(reduced.filter(reduced.subject.isnull())):
            # contacts of persons missing from the person table: number them too
            orphans = fusion.orphan_keys(tables, plan, ctx)
            ids = stack.enter_context(materialized(fusion.person_ids(tables, orphans)))
            reduced = stack.enter_context(
                materialized(fusion.reduced_bits(tables, plan, ctx, ids, keys))
            )
        for stage, bds in stages.items():
            if stage == "person":
                table = fusion.person_stage(reduced, tables, plan, ctx, ids, words, codes)
            elif stage == "unit":
                table = fusion.unit_stage(reduced)
            else:
                table = reduced
            several = len(bds) + (len(words) if stage == "person" else 0) > 1
            with materialized(table) if several and stage != "dx" else nullcontext(
                table
            ) as mat:
                for b in bds:
                    wide = fusion.stage_cells(stage, mat, tables, plan, b).to_pyarrow()
                    out.extend(fusion.unfuse(wide, plan, b, ctx))
                if stage == "person":
                    for lw in words:
                        parts = [
                            levelwords.decode(fusion.word_counts(mat, lw, k).to_pyarrow(), lw,
                                              k, plan.masks)
                            for k in range(lw.words)
                        ]
                        wide = levelwords.wide_cells(parts, plan.masks)
                        out.extend(fusion.unfuse(wide, plan, lw.breakdown, ctx))
    return out


def _count(t: ir.Table) -> int:
    return int(t.count().to_pyarrow().as_py())


def _compute_staged(
    tables: Mapping[str, ir.Table],
    ind: Indicator,
    ctx: CompileContext,
    breakdowns: Sequence[str],
) -> list[pa.Table]:
    """Execute one indicator stage by stage, materialising the shared intermediates.

    Same expressions as :func:`compile_indicator`; the base table is computed once
    (a temp table on DuckDB/PostgreSQL, a cached DataFrame on Spark) and each
    stage (person, unit, substance group) is materialised when several
    breakdowns read it.
    """
    out: list[pa.Table] = []
    plan = {k: v for k, v in breakdown_plan(ind, breakdowns).items() if v}
    if not plan:
        return out
    base_expr = compile_base(tables, ind, ctx)
    if not is_statistic(ind):  # one row per subject, person, unit and group (see fused)
        base_expr = reduce_subjects(base_expr, ["person_key", "unit_id", "dx_group"])
    with materialized(base_expr) as base:
        for stage, bds in plan.items():
            table = stage_table(stage, base, tables, ctx)
            if len(bds) > 1:
                with materialized(table) as mat:
                    cells = _cells(stage, mat, ind, ctx, bds)
                    out.append(cells.to_pyarrow())
            else:
                out.append(_cells(stage, table, ind, ctx, bds).to_pyarrow())
    return out


def _cells(
    stage: str, table: ir.Table, ind: Indicator, ctx: CompileContext, breakdowns: Sequence[str]
) -> ir.Table:
    """:func:`stage_cells` of a non-empty list of breakdowns (then never None)."""
    cells = stage_cells(stage, table, ind, ctx, breakdowns)
    if cells is None:
        raise AttributeError(f"{ind.id}: no breakdowns, no cells")
    return cells


def compute_catalogue(
    tables: Mapping[str, ir.Table],
    *,
    indicators: Sequence[str] | None = None,
    breakdowns: Sequence[str] = ALL_BREAKDOWNS,
    years: Sequence[int] | None = None,
    as_of: dt.date | None = None,
    age_bands: Sequence[AgeBand] = DEFAULT_AGE_BANDS,
    population: pa.Table | None = None,
    catalogue: Catalogue | None = None,
    progress: Callable[[str], None] | None = None,
    materialize: bool = True,
) -> pa.Table:
    """Compute the catalogue (or ``indicators``) over canonical Ibis ``tables``.

    ``years`` defaults to every year with contacts; ``as_of`` (data cut-off, used
    for windows that must have passed, e.g. 12-month retention) defaults to the
    latest contact date; ``population`` (municipality, year, sex, population) is
    needed by ``rate`` indicators and defaults to the shipped example. Returns the
    long result table described in the module docstring. ``progress`` is called
    with each indicator id after it is computed.

    With ``materialize`` (default) the same expressions run stage by stage:
    contact indicators with the same population are fused into one pass (e.g. the
    three KVÅ indicators and the person count), shared intermediates (person,
    unit and substance-group stages; time_to index events) are materialised once
    (temp tables on DuckDB/PostgreSQL, cached DataFrames on Spark). With
    ``materialize=False`` each indicator's single expression from
    :func:`compile_catalogue` is executed as is. Both give identical results.
    """
    catalogue = catalogue or load_catalogue()
    ctx, selected = _context(tables, indicators, years, as_of, age_bands, population, catalogue)
    parts = []
    with ExitStack() as stack:
        if materialize:  # intermediates shared by several indicators: compute once
            keys: dict[str, Indicator] = {}
            for ind in selected:
                key = shared_key(ind)
                if key is not None:
                    keys.setdefault(key, ind)
            for key, ind in keys.items():
                ctx.shared[key] = stack.enter_context(
                    materialized(shared_table(tables, ind, ctx))
                )
        parts = _run_units(tables, selected, ctx, breakdowns, materialize, progress)
    ctx.shared.clear()

    if not parts:
        return RESULT_SCHEMA.empty_table()
    raw = pa.concat_tables([p.select(parts[0].column_names).cast(parts[0].schema)
                            for p in parts])
    return finalise(raw, catalogue)


# -------------------------------------------------------------------- stored results


def store_results(
    results: pa.Table,
    folder: str | Path,
    *,
    catalogue_version: str | None = None,
    run_id: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> Path:
    """Write a run's results to ``<folder>/<run_id>/results.parquet`` (+ ``run.json``).

    The run id, UTC timestamp and catalogue version are stored both in
    ``run.json`` and in the Parquet schema metadata; ``<folder>/LATEST`` names the
    newest run so dashboards read stored results instead of recomputing.
    """
    run_id = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    meta = {
        "run_id": run_id,
        "computed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "catalogue_version": catalogue_version or load_catalogue().version,
        "rows": str(results.num_rows),
        **(extra or {}),
    }
    target = Path(folder) / run_id
    target.mkdir(parents=True, exist_ok=True)
    table = results.replace_schema_metadata({f"utfall.{k}": v for k, v in meta.items()})
    pq.write_table(table, target / "results.parquet")
    (target / "run.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (Path(folder) / "LATEST").write_text(run_id, encoding="utf-8")
    return target


def load_results(folder: str | Path, run_id: str | None = None) -> tuple[pa.Table, dict]:
    """Stored results of ``run_id`` (default: the latest run) and the run metadata."""
    folder = Path(folder)
    run_id = run_id or (folder / "LATEST").read_text(encoding="utf-8").strip()
    meta = json.loads((folder / run_id / "run.json").read_text(encoding="utf-8"))
    return pq.read_table(folder / run_id / "results.parquet"), meta
