"""Contact indicators fused into one pass with bit flags.

Every contact-population indicator that counts persons (kinds ``proportion``,
``count``, ``rate``) is defined by a handful of yes/no facts: is the contact in
the population, does it carry one of the numerator's KVÅ codes, does the person
have the numerator's medication/enrolment/psychiatric contact that year, is the
person a resident. :func:`plan_fusions` gives each distinct fact one bit of an
int64; an indicator becomes two masks (denominator, numerator), and a person is
in a cell's denominator when ``bits & mask == mask`` after OR-ing (``bit_or``)
the bits of all the person's rows in that cell.

So one scan of the contacts serves the whole group, every reduction carries a
single ``bit_or`` aggregate however many indicators there are, and the cells of
all indicators come out of one ``GROUP BY`` per breakdown. The stages are the
same as the per-indicator ones in :mod:`utfall.analytics.semantics.compiler` (reduce to one
row per period, person, unit and substance group; then per person, per unit and
per substance group), and the result is identical to each indicator's own
single expression (``compile_indicator``; tested).

Everything here builds Ibis expressions (``bit_or`` and ``&`` compile on DuckDB,
PostgreSQL and, with the rule added in :mod:`utfall.analytics.executor.backends`, PySpark);
:mod:`utfall.analytics.executor.run` executes and materialises them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from utfall.analytics.executor.levelwords import LevelWords
from utfall.analytics.schema import raw_cells
from utfall.analytics.semantics.catalogue import Indicator
from utfall.analytics.semantics.compiler import (
    PERSON_BREAKDOWNS,
    PERSON_PERIOD_EVENTS,
    UNIT_BREAKDOWNS,
    UNKNOWN_LEVEL,
    CompileContext,
    age_band_of,
    contact_predicate,
    kva_flags,
    level_of,
    numerator_of,
    person_period_events,
    population_denominators,
    residents,
    year_of,
)

MAX_BITS = 62  # bits of one int64 flag word (sign bit and one spare left alone)
FUSABLE_KINDS = ("proportion", "count", "rate")


def fusable(ind: Indicator) -> bool:
    """Whether ``ind`` can join the fused contact pass."""
    if ind.population.source != "contact" or ind.kind not in FUSABLE_KINDS:
        return False
    n = ind.numerator
    if ind.kind in ("count", "rate") or n is None:
        return True
    return n.event == "procedure" or n.event in PERSON_PERIOD_EVENTS


def _population_key(ind: Indicator) -> str:
    pop = ind.population
    return json.dumps(
        [pop.dx_groups, pop.dx_prefixes, pop.contact_types, pop.require_psych_group],
        sort_keys=True,
    )


@dataclass(frozen=True)
class Bit:
    """One yes/no fact: ``kind`` population | procedure | person_event | resident."""

    kind: str
    key: str
    indicator: Indicator | None  # the indicator whose definition gives the predicate

    def source(self) -> Indicator:
        """``indicator``; every kind but ``resident`` has one."""
        if self.indicator is None:
            raise AttributeError(f"bit {self.key} has no indicator")
        return self.indicator


@dataclass(frozen=True)
class FusionPlan:
    """Bits and per-indicator masks of one fused group."""

    indicators: tuple[Indicator, ...]
    bits: tuple[Bit, ...]
    den_masks: tuple[int, ...]
    num_masks: tuple[int, ...]

    def mask(self, kind: str) -> int:
        """The OR of all bits of ``kind``."""
        return sum(1 << k for k, b in enumerate(self.bits) if b.kind == kind)

    @property
    def masks(self) -> tuple[int, ...]:
        """Distinct masks to count, in a fixed order (cell columns ``m0, m1, …``)."""
        return tuple(sorted(set(self.den_masks) | set(self.num_masks)))


def _bits_of(ind: Indicator) -> list[Bit]:
    pop = _population_key(ind)
    out = [Bit("population", pop, ind)]
    n = ind.numerator
    if ind.kind == "proportion" and n is not None:
        if n.event == "procedure":
            out.append(Bit("procedure", json.dumps([pop, sorted(n.kva_codes or [])]), ind))
        else:
            out.append(Bit("person_event", n.model_dump_json(), ind))
    if ind.kind == "rate" and ind.population.residents_only:  # as compile_base
        out.append(Bit("resident", "resident", None))
    return out


def _plan(inds: Sequence[Indicator]) -> FusionPlan:
    bits: list[Bit] = []
    index: dict[tuple[str, str], int] = {}
    dens, nums = [], []
    for ind in inds:
        masks = []
        for b in _bits_of(ind):
            if (b.kind, b.key) not in index:
                index[(b.kind, b.key)] = len(bits)
                bits.append(b)
            masks.append((b.kind, 1 << index[(b.kind, b.key)]))
        pop = next(m for k, m in masks if k == "population")
        resident = sum(m for k, m in masks if k == "resident")
        den = pop | resident
        num = den
        for kind, m in masks:
            if kind == "procedure":  # the KVÅ bit already implies the population
                num = m | resident
            elif kind == "person_event":
                num = den | m
        dens.append(den)
        nums.append(num)
    return FusionPlan(tuple(inds), tuple(bits), tuple(dens), tuple(nums))


def plan_fusions(inds: Sequence[Indicator]) -> list[FusionPlan]:
    """Fusable indicators in groups whose facts fit in one int64 (catalogue order kept)."""
    plans: list[FusionPlan] = []
    group: list[Indicator] = []
    for ind in inds:
        if group and len(_plan([*group, ind]).bits) > MAX_BITS:
            plans.append(_plan(group))
            group = []
        group.append(ind)
    if group:
        plans.append(_plan(group))
    return plans


def _flag(pred: ir.BooleanValue | None, bit: int) -> ir.IntegerValue:
    value = ibis.literal(1 << bit, "int64")
    if pred is None:
        return value
    return ibis.ifelse(pred.fill_null(False), value, ibis.literal(0, "int64"))


def _in_years(period: ir.IntegerValue, years: Sequence[int]) -> ir.BooleanValue:
    """``period`` in ``years``: a range test when the years are contiguous (no IN list)."""
    years = sorted(set(years))
    if years and years == list(range(years[0], years[-1] + 1)):
        return (period >= years[0]) & (period <= years[-1])
    return period.isin(years)


def _implied_groups(plan: FusionPlan) -> set[str] | None:
    """Substance groups outside of which no population of the plan has contacts (None:
    some population is not restricted to groups). ``dx_group`` is F10–F19 of ``main_dx``
    (canonical schema), so a prefix such as ``F102`` implies group ``F10``."""
    out: set[str] = set()
    for b in plan.bits:
        if b.kind != "population":
            continue
        pop = b.source().population
        groups = set(pop.dx_groups) if pop.dx_groups else None
        prefixes = pop.dx_prefixes or []
        if prefixes and all(re.fullmatch(r"F1\d.*", p) for p in prefixes):
            implied = {p[:3] for p in prefixes}
            groups = implied if groups is None else groups & implied
        if groups is None:
            return None
        out |= groups
    return out


def contact_bits(
    tables: Mapping[str, ir.Table], plan: FusionPlan, ctx: CompileContext
) -> ir.Table:
    """Contacts of any population in the plan: ``period, person_key, unit_id, dx_group,
    bits`` (population and KVÅ bits; one row per contact)."""
    c = tables["contact"]
    c = c.mutate(period=year_of(c.date))
    c = c.filter(_in_years(c.period, ctx.years))
    groups = _implied_groups(plan)
    if groups is not None:  # a plain IN filter the engine can push into the scan
        c = c.filter(c.dx_group.isin(sorted(groups)))
    pops = {b.key: k for k, b in enumerate(plan.bits) if b.kind == "population"}

    def predicate(k: int) -> ir.BooleanValue | None:
        pop = plan.bits[k].source().population
        only_groups = not (pop.dx_prefixes or pop.contact_types or pop.require_psych_group)
        if groups is not None and only_groups and set(pop.dx_groups or []) >= groups:
            return None  # every contact left after the group filter is in it
        return contact_predicate(c, pop)

    terms = [_flag(predicate(k), k) for k in pops.values()]
    c = c.mutate(popbits=_sum(terms))
    if groups is None:
        # engines inline the expression into the filter (evaluated twice): only when no
        # group filter narrows the scan. Rows without any bit are harmless otherwise
        # (they are in no cell's denominator), merely a few more rows to reduce.
        c = c.filter(c.popbits != 0)
    c = c.select("contact_id", "person_key", "unit_id", "date", "dx_group", "period", "popbits")
    kva = {f"kva_{k}": numerator_of(b.source()).kva_codes or []
           for k, b in enumerate(plan.bits) if b.kind == "procedure"}
    bits = c.popbits
    if kva:
        c = kva_flags(c, tables, kva)
        terms = [c.popbits]
        for k, b in enumerate(plan.bits):
            if b.kind == "procedure":
                pop = 1 << pops[_population_key(b.source())]
                terms.append(_flag(((c.popbits & pop) != 0) & c[f"kva_{k}"], k))
        bits = _sum(terms)
    return c.select(
        period=c.period.cast("int64"), person_key=c.person_key, unit_id=c.unit_id.cast("string"),
        dx_group=c.dx_group.cast("string"), bits=bits.cast("int64"),
    )


def _sum(terms: Sequence[ir.IntegerValue]) -> ir.IntegerValue:
    """Sum of flag terms (distinct bits, so the sum is their OR)."""
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def person_bits(
    tables: Mapping[str, ir.Table], plan: FusionPlan, ctx: CompileContext
) -> ir.Table | None:
    """``person_key, period, pbits``: the numerators' person-level events per year
    (None if there are none). Residency (rates) is added in :func:`person_stage`."""
    parts = []
    for k, b in enumerate(plan.bits):
        if b.kind == "person_event":
            ev = person_period_events(tables, b.source(), ctx)
        else:
            continue
        parts.append(ev.select(
            person_key=ev.person_key, period=ev.period.cast("int64"),
            b=ibis.literal(1 << k, "int64"),
        ))
    if not parts:
        return None
    ev = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
    ev = ev.filter(ev.period.isin(list(ctx.years)))
    return ev.group_by("person_key", "period").aggregate(pbits=ev.b.bit_or())


def person_ids(tables: Mapping[str, ir.Table], orphans: ir.Table | None = None) -> ir.Table:
    """``person_key, pid``: persons numbered 1, 2, … (int64 keys are cheaper to group by).

    ``orphans`` adds keys that occur in contacts but not in the person table.
    """
    keys = tables["person"].select("person_key")
    keys = keys.filter(keys.person_key.notnull())
    if orphans is not None:
        keys = keys.union(orphans.select("person_key"), distinct=False)
    keys = keys.distinct()
    return keys.mutate(pid=(ibis.row_number().over(order_by=keys.person_key) + 1).cast("int64"))


def orphan_keys(tables: Mapping[str, ir.Table], plan: FusionPlan, ctx: CompileContext) -> ir.Table:
    """Person keys of the plan's contacts missing from the person table."""
    c = contact_bits(tables, plan, ctx).select("person_key").distinct()
    c = c.filter(c.person_key.notnull())
    return c.anti_join(tables["person"].select("person_key"), "person_key")


REDUCED_KEYS = ("unit_id", "dx_group")


def reduced_bits(
    tables: Mapping[str, ir.Table], plan: FusionPlan, ctx: CompileContext,
    ids: ir.Table | None, keys: Sequence[str] = REDUCED_KEYS,
) -> ir.Table:
    """One row per (period, subject, *keys) with the OR of bits; ``keys`` are the unit
    and/or substance group when unit or substance-group breakdowns are wanted.

    ``subject`` is the integer ``pid`` of ``ids`` (persons missing from ``ids`` get a null
    subject: the executor checks for them), or the person key itself when ``ids`` is None.
    """
    c = contact_bits(tables, plan, ctx)
    j = c.left_join(ids, "person_key") if ids is not None else c.mutate(pid=c.person_key)
    r = j.group_by(period=j.period, subject=j.pid, **{k: j[k] for k in keys})
    r = r.aggregate(bits=j.bits.bit_or())
    pb = person_bits(tables, plan, ctx)
    if pb is None:
        return r
    pb = pb.inner_join(ids, "person_key") if ids is not None else pb.mutate(pid=pb.person_key)
    pb = pb.select(pid=pb.pid, p_period=pb.period, pbits=pb.pbits)
    r = r.left_join(pb, [r.subject == pb.pid, r.period == pb.p_period])
    return r.select("period", "subject", *keys, bits=r.bits + r.pbits.fill_null(0))


def reduced_keys(stages: Mapping[str, Sequence[str]]) -> list[str]:
    """The keys :func:`reduced_bits` needs beyond (period, subject) for ``stages``."""
    return [k for k, stage in (("unit_id", "unit"), ("dx_group", "dx")) if stage in stages]


def _or_reduce(t: ir.Table, keys: Sequence[str]) -> ir.Table:
    return t.group_by(["period", "subject", *keys]).aggregate(bits=t.bits.bit_or())


def person_stage(
    reduced: ir.Table, tables: Mapping[str, ir.Table], plan: FusionPlan, ctx: CompileContext,
    ids: ir.Table | None, words: Sequence[LevelWords] = (), codes: ir.Table | None = None,
) -> ir.Table:
    """One row per (period, person) with sex, age band, municipality (and residency),
    and the level words of ``words`` (multipliers per unit in ``codes``)."""
    if words and codes is not None:  # needs a reduced table keyed by unit
        j = reduced.left_join(codes, "unit_id")
        agg = {}
        for lw in words:
            for k in range(lw.words):
                col = lw.column(k)
                mult = j[col].fill_null(ibis.literal(lw.multiplier(UNKNOWN_LEVEL, k), "int64"))
                agg[col] = (j.bits * mult).bit_or()
        r = j.group_by("period", "subject").aggregate(bits=j.bits.bit_or(), **agg)
    elif set(reduced.columns) == {"period", "subject", "bits"}:
        r = reduced  # already one row per (period, person)
    else:
        r = _or_reduce(reduced, [])
    word_cols = [lw.column(k) for lw in words for k in range(lw.words)]
    p = tables["person"].select("person_key", "sex", "birth_year", "municipality")
    p = ids.inner_join(p, "person_key") if ids is not None else p.mutate(pid=p.person_key)
    if plan.mask("resident"):  # rates: person breakdowns only
        res = residents(tables, ctx).mutate(resident=ibis.literal(True))
        p = p.left_join(res, "person_key")
        p = p.mutate(rbits=ibis.ifelse(p.resident.fill_null(False),
                                       ibis.literal(plan.mask("resident"), "int64"),
                                       ibis.literal(0, "int64")))
    else:
        p = p.mutate(rbits=ibis.literal(0, "int64"))
    p = p.select("pid", "sex", "birth_year", "municipality", "rbits")
    j = r.left_join(p, r.subject == p.pid)
    age = j.period - j.birth_year.cast("int64")
    return j.select(
        "period", "subject", "sex", "municipality", *word_cols,
        age_band=age_band_of(age, ctx.age_bands), bits=j.bits + j.rbits.fill_null(0),
    )


def word_counts(person: ir.Table, lw: LevelWords, k: int) -> ir.Table:
    """``period, word, n``: persons per distinct value of word ``k`` (few distinct)."""
    w = person[lw.column(k)]
    return person.group_by(period=person.period, word=w).aggregate(n=person.count())


def unit_stage(reduced: ir.Table) -> ir.Table:
    """One row per (period, person, unit)."""
    if "dx_group" not in reduced.columns:
        return reduced  # already keyed by (period, person, unit)
    return _or_reduce(reduced, ["unit_id"])


def stage_plan(plan: FusionPlan, breakdowns: Sequence[str]) -> dict[str, list[str]]:
    """The requested breakdowns that some indicator of the plan allows, by stage."""
    wanted = [b for b in breakdowns if any(b in i.allowed_breakdowns for i in plan.indicators)]
    out = {
        "person": [b for b in wanted if b in PERSON_BREAKDOWNS],
        "unit": [b for b in wanted if b in UNIT_BREAKDOWNS],
        "dx": [b for b in wanted if b == "dx_group"],
    }
    return {k: v for k, v in out.items() if v}


def stage_cells(
    stage: str, table: ir.Table, tables: Mapping[str, ir.Table], plan: FusionPlan,
    breakdown: str,
) -> ir.Table:
    """``period, level, m0, m1, …``: persons per cell whose bits cover each mask."""
    t = table
    if stage == "unit" and breakdown != "unit_id":
        u = tables["unit"].select("unit_id", breakdown)
        t = t.left_join(u, "unit_id")
        t = t.drop("unit_id_right") if "unit_id_right" in t.columns else t
    g = t.mutate(level=level_of(t, breakdown))
    # one row per person and level: unit attributes, and substance groups when the
    # reduced table also has units (dx_group → level is one-to-one: F10–F19 or unknown)
    if (stage == "dx" and "unit_id" in t.columns) or (stage == "unit" and breakdown != "unit_id"):
        g = _or_reduce(g, ["level"])
    masks = {f"m{j}": m for j, m in enumerate(plan.masks)}
    return g.group_by("period", "level").aggregate(
        **{name: g.count(where=(g.bits & m) == m).cast("int64") for name, m in masks.items()}
    )


def unfuse(
    wide: pa.Table, plan: FusionPlan, breakdown: str, ctx: CompileContext
) -> list[pa.Table]:
    """Wide cells of one breakdown → the raw long rows of each indicator.

    Cells where nobody is in the indicator's denominator are left out (as the
    per-indicator expressions, which only see that indicator's population, do).
    """
    col = {m: f"m{j}" for j, m in enumerate(plan.masks)}
    pop_den: pa.Table | None = None
    out: list[pa.Table] = []
    for ind, den_m, num_m in zip(plan.indicators, plan.den_masks, plan.num_masks, strict=True):
        if breakdown not in ind.allowed_breakdowns:
            continue
        w = wide.filter(pc.greater(wide[col[den_m]], 0))
        den = w[col[den_m]]
        if ind.kind == "count":
            numerator, denominator = den, None
        elif ind.kind == "rate":
            if pop_den is None:
                pop_den = population_denominators(ctx, breakdown).to_pyarrow()
            out.append(_rate_cells(ind, breakdown, w, den, pop_den, ctx.years))
            continue
        else:
            numerator, denominator = w[col[num_m]], den
        out.append(raw_cells(ind.id, breakdown, w["period"], w["level"], numerator,
                             denominator))
    return out


def _rate_cells(ind: Indicator, breakdown: str, w: pa.Table, counts: pa.Array,
                pop: pa.Table, years: Sequence[int]) -> pa.Table:
    """Rate rows: the cells with residents, plus every (year, level) of the population
    table without any (numerator 0), as the single expression's outer join gives."""
    seen = set(zip(w["period"].to_pylist(), w["level"].to_pylist(), strict=True))
    wanted = set(years)
    extra = [(p, lv) for p, lv in zip(pop["period"].to_pylist(), pop["level"].to_pylist(),
                                      strict=True) if p in wanted and (p, lv) not in seen]
    period = pa.concat_arrays([w["period"].combine_chunks().cast(pa.int64()),
                               pa.array([p for p, _ in extra], pa.int64())])
    level = pa.concat_arrays([w["level"].combine_chunks().cast(pa.string()),
                              pa.array([lv for _, lv in extra], pa.string())])
    numerator = pa.concat_arrays([pa.array(counts.to_pylist(), pa.int64()),
                                  pa.array([0] * len(extra), pa.int64())])
    cells = pa.table({"period": period, "level": level})
    return raw_cells(ind.id, breakdown, period, level, numerator, _lookup(cells, pop))


def _lookup(cells: pa.Table, pop: pa.Table) -> pa.Array:
    """``pop_n`` of ``pop`` for each (period, level) of ``cells`` (null where missing)."""
    index = {
        (p, lv): n
        for p, lv, n in zip(pop["period"].to_pylist(), pop["level"].to_pylist(),
                            pop["pop_n"].to_pylist(), strict=True)
    }
    return pa.array(
        [index.get((p, lv)) for p, lv in zip(cells["period"].to_pylist(),
                                             cells["level"].to_pylist(), strict=True)],
        pa.int64(),
    )
