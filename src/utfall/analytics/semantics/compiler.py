"""Compile one indicator definition into ONE Ibis expression over the canonical tables.

Compilation has two steps, both pure expression building (nothing executes here):

1. a *base* table for the indicator's kind and source, one row per member of the
   population (a contact, an enrolment, an inpatient discharge, a person…) with the
   standard columns ``period`` (int64 calendar year), ``subject`` (what is counted:
   a person key or an enrolment/event id), ``person_key``, ``unit_id`` (the unit the
   row is attributed to), ``dx_group``, ``num`` (bool: in the numerator) and
   ``val`` (float64: a measured value for means and medians);
2. stages that reduce the base to one row per subject and breakdown level
   (``any(num)``) — persons with their attributes (total, sex, age band,
   municipality), subjects per unit with unit attributes, subjects per substance
   group — after which plain ``count(*)`` gives distinct counts; mean/median
   indicators aggregate the base enriched with attributes instead. The cells of
   every breakdown are stacked with ``union all``.

The expression yields ``indicator_id, period, breakdown, level, numerator,
denominator, stat``; :mod:`utfall.analytics.executor.run` executes it and adds values
and confidence intervals from the integer counts (identical on every engine).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

from utfall.analytics.semantics.catalogue import Change, Indicator, NumeratorEvent, PopulationFilter
from utfall.domain.codes import code_systems

BASE_COLUMNS = ("period", "subject", "person_key", "unit_id", "dx_group", "num", "val")

# Breakdown → column of the enriched base table.
BREAKDOWN_COLUMNS: dict[str, str | None] = {
    "total": None,
    "unit_id": "unit_id",
    "organisation": "organisation",
    "principal_type": "principal_type",
    "care_level": "care_level",
    "dx_group": "dx_group",
    "sex": "sex",
    "age_band": "age_band",
    "municipality": "municipality",
}
UNKNOWN_LEVEL = "unknown"


@dataclass(frozen=True)
class AgeBand:
    """An age band: ages ``low``..``high`` inclusive (``high`` None = open)."""

    label: str
    low: int
    high: int | None = None


DEFAULT_AGE_BANDS: tuple[AgeBand, ...] = (
    AgeBand("0-12", 0, 12),
    AgeBand("13-17", 13, 17),
    AgeBand("18-24", 18, 24),
    AgeBand("25-44", 25, 44),
    AgeBand("45-64", 45, 64),
    AgeBand("65+", 65, None),
)


def parse_age_bands(spec: str) -> tuple[AgeBand, ...]:
    """Parse ``"13-17,18-24,25-44,45-64,65+"`` into age bands."""
    bands = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part.endswith("+"):
            bands.append(AgeBand(part, int(part[:-1]), None))
        else:
            low, high = part.split("-")
            bands.append(AgeBand(part, int(low), int(high)))
    return tuple(bands)


@dataclass(frozen=True)
class CompileContext:
    """Run-wide parameters of a compilation."""

    years: tuple[int, ...]
    as_of: dt.date  # data cut-off: windows not yet observable by then are left out
    age_bands: tuple[AgeBand, ...] = DEFAULT_AGE_BANDS
    population: ir.Table | None = None  # municipality, year, sex, population
    years_table: ir.Table | None = None  # one int64 column "period" (a memtable if None)
    # intermediate tables shared between indicators of one run (e.g. time_to events),
    # filled by the executor; keys from shared_key()
    shared: dict[str, ir.Table] = field(default_factory=dict)


# ---------------------------------------------------------------------------- helpers


def year_of(col: ir.DateValue) -> ir.IntegerValue:
    return col.year().cast("int64")


def _any_prefix(col: ir.StringValue, prefixes: Sequence[str]) -> ir.BooleanValue:
    """``col`` starts with one of ``prefixes`` (one IN-list per prefix length: fast)."""
    by_len: dict[int, list[str]] = {}
    for p in prefixes:
        by_len.setdefault(len(p), []).append(p)
    return ibis.or_(*[col.substr(0, n).isin(sorted(ps)) for n, ps in sorted(by_len.items())])


def numerator_of(ind: Indicator) -> NumeratorEvent:
    """``ind.numerator``; the catalogue's kind check guarantees it wherever it is read."""
    if ind.numerator is None:
        raise AttributeError(f"{ind.id}: indicator has no numerator")
    return ind.numerator


def change_of(ind: Indicator) -> Change:
    """``ind.change``; the catalogue's kind check guarantees it for kind ``change``."""
    if ind.change is None:
        raise AttributeError(f"{ind.id}: indicator has no change block")
    return ind.change


def _years_table(ctx: CompileContext) -> ir.Table:
    if ctx.years_table is not None:
        return ctx.years_table
    return ibis.memtable({"period": list(ctx.years)}, schema={"period": "int64"})


def _atc_predicate(col: ir.StringValue, classes: Sequence[str] | None,
                   prefixes: Sequence[str] | None) -> ir.BooleanValue:
    codes: list[str] = []
    for cls in classes or ():
        codes.extend(code_systems().atc_codes_of_class(cls))
    preds = []
    if codes:
        preds.append(col.isin(codes))
    if prefixes:
        preds.append(_any_prefix(col, prefixes))
    if not preds:
        raise ValueError("medication numerator needs atc_classes or atc_prefixes")
    return ibis.or_(*preds)


def _base(
    t: ir.Table, *, period, subject, unit_id, dx_group=None, num=None, val=None
) -> ir.Table:
    return t.select(
        period=period.cast("int64"),
        subject=subject.cast("string"),
        person_key=t.person_key,
        unit_id=unit_id.cast("string"),
        dx_group=(dx_group if dx_group is not None else ibis.null()).cast("string"),
        num=(num if num is not None else ibis.null()).cast("boolean"),
        val=(val if val is not None else ibis.null()).cast("float64"),
    )


def contact_predicate(c: ir.Table, pop: PopulationFilter) -> ir.BooleanValue | None:
    """The population's filter on one contact row (None: every contact qualifies)."""
    preds = []
    if pop.dx_groups:
        preds.append(c.dx_group.isin(pop.dx_groups))
    if pop.dx_prefixes:
        preds.append(_any_prefix(c.main_dx, pop.dx_prefixes))
    if pop.contact_types:
        preds.append(c.contact_type.isin(pop.contact_types))
    if pop.require_psych_group:
        preds.append(c.psych_groups.notnull() & (c.psych_groups != ""))
    return ibis.and_(*preds) if preds else None


def _contacts(tables: Mapping[str, ir.Table], ind: Indicator) -> ir.Table:
    """Contacts of the population filter, with ``period`` = calendar year of the date."""
    c = tables["contact"]
    pred = contact_predicate(c, ind.population)
    return c if pred is None else c.filter(pred)


def _enrolments(tables: Mapping[str, ir.Table], ind: Indicator) -> ir.Table:
    e = tables["enrolment"]
    if ind.population.programmes:
        e = e.filter(e.programme.isin(ind.population.programmes))
    return e


def _active_years(e: ir.Table, ctx: CompileContext) -> ir.Table:
    """One row per enrolment and calendar year in which it was active at any day."""
    y = _years_table(ctx)
    end = e.end_date.fill_null(ibis.literal(ctx.as_of))
    return e.cross_join(y).filter(year_of(e.start_date) <= y.period, year_of(end) >= y.period)


def _person_period_hits(keys: ir.Table, events: ir.Table) -> ir.Table:
    """(person_key, period) of ``keys`` that also occur in ``events`` (distinct)."""
    ev = events.select("person_key", "period").distinct()
    return keys.select("person_key", "period").distinct().semi_join(ev, ["person_key", "period"])


def _flag_join(base: ir.Table, hits: ir.Table, keys: list[str], flag: str) -> ir.Table:
    """Left-join a distinct hit list and turn it into a boolean column ``flag``."""
    h = hits.select(*keys).distinct().mutate(**{flag: ibis.literal(True)})
    j = base.left_join(h, keys)
    drop = [f"{k}_right" for k in keys if f"{k}_right" in j.columns]
    j = j.drop(*drop) if drop else j
    return j.mutate(**{flag: j[flag].fill_null(False)})


# ---------------------------------------------------------------- numerator builders


def _medication_periods(tables, ind: Indicator, ctx: CompileContext) -> ir.Table:
    n = numerator_of(ind)
    m = tables["medication"]
    m = m.filter(_atc_predicate(m.atc, n.atc_classes, n.atc_prefixes))
    y = _years_table(ctx)
    end = m.end_date.fill_null(ibis.literal(ctx.as_of))
    m = m.cross_join(y).filter(year_of(m.start_date) <= y.period, year_of(end) >= y.period)
    return m.select("person_key", "period")


def _enrolment_periods(tables, programmes: Sequence[str], ctx: CompileContext) -> ir.Table:
    e = tables["enrolment"]
    e = e.filter(e.programme.isin(list(programmes)))
    return _active_years(e, ctx).select("person_key", "period")


def _psych_contact_periods(tables, ind: Indicator) -> ir.Table:
    prefixes = numerator_of(ind).psych_prefixes or [
        p for spec in code_systems().psychiatric_groups.values() for p in spec["prefixes"]
    ]
    c = tables["contact"]
    c = c.filter(c.main_dx.notnull(), _any_prefix(c.main_dx, prefixes))
    return c.select(c.person_key, period=year_of(c.date))


# -------------------------------------------------------------------- base builders


PERSON_PERIOD_EVENTS = ("medication", "enrolment_or_medication", "psych_contact")


def person_period_events(
    tables: Mapping[str, ir.Table], ind: Indicator, ctx: CompileContext
) -> ir.Table:
    """``person_key, period`` (not distinct) where a contact indicator's numerator event
    holds for the person in that year (one of :data:`PERSON_PERIOD_EVENTS`)."""
    n = ind.numerator
    if n is None or n.event not in PERSON_PERIOD_EVENTS:
        raise ValueError(f"{ind.id}: numerator {n and n.event} not valid for contacts")
    if n.event == "medication":
        return _medication_periods(tables, ind, ctx)
    if n.event == "enrolment_or_medication":
        events = _enrolment_periods(tables, n.programmes or [], ctx)
        if n.atc_classes or n.atc_prefixes:
            events = events.union(_medication_periods(tables, ind, ctx), distinct=False)
        return events
    return _psych_contact_periods(tables, ind)


def kva_flags(
    c: ir.Table, tables: Mapping[str, ir.Table], codes: Mapping[str, Sequence[str]]
) -> ir.Table:
    """Add one boolean column per ``name -> KVÅ codes`` to contacts ``c``: True when one
    of the codes is registered on the contact (``procedure.contact_id``) or, for
    procedures without ``contact_id``, on the same person, unit and date.

    All codes share one pass over the procedures (one join by id, one by day).
    """
    p = tables["procedure"]
    p = p.filter(p.kva_code.isin(sorted({k for ks in codes.values() for k in ks})))
    flags = {nm: p.kva_code.isin(list(ks)) for nm, ks in codes.items()}
    by_id = p.filter(p.contact_id.notnull()).group_by("contact_id").aggregate(
        **{f"{nm}__id": f.any() for nm, f in flags.items()}
    )
    by_day = p.filter(p.contact_id.isnull()).group_by("person_key", "unit_id", "date")
    by_day = by_day.aggregate(**{f"{nm}__day": f.any() for nm, f in flags.items()})
    c = c.left_join(by_id, "contact_id")
    c = c.drop(*[k for k in c.columns if k.endswith("_right")])
    c = c.left_join(by_day, ["person_key", "unit_id", "date"])
    c = c.drop(*[k for k in c.columns if k.endswith("_right")])
    c = c.mutate(
        **{nm: c[f"{nm}__id"].fill_null(False) | c[f"{nm}__day"].fill_null(False)
           for nm in codes}
    )
    return c.drop(*[f"{nm}__id" for nm in codes], *[f"{nm}__day" for nm in codes])


def contact_numerators(
    c: ir.Table,
    tables: Mapping[str, ir.Table],
    items: Sequence[tuple[str, Indicator]],
    ctx: CompileContext,
) -> ir.Table:
    """Add one boolean column per ``(name, indicator)`` to population contacts ``c``.

    KVÅ numerators of several indicators share one pass over the procedures:
    a code counts when it is registered on the contact (``contact_id``) or, when
    ``procedure.contact_id`` is empty, on the same person, unit and date.
    """
    proc = {nm: i.numerator.kva_codes or [] for nm, i in items
            if i.numerator and i.numerator.event == "procedure"}
    if proc:
        c = kva_flags(c, tables, proc)
    for nm, ind in items:
        n = ind.numerator
        if n is None or ind.kind in ("count", "rate"):
            c = c.mutate(**{nm: ibis.literal(True)})
            continue
        if n.event == "procedure":
            continue
        hits = _person_period_hits(c, person_period_events(tables, ind, ctx))
        c = _flag_join(c, hits, ["person_key", "period"], nm)
    return c


def _base_contact(tables, ind: Indicator, ctx: CompileContext) -> ir.Table:
    """Contact population (proportion/count/rate): one row per qualifying contact.

    No DISTINCT: every stage reduces to one row per subject and level anyway.
    """
    c = _contacts(tables, ind).mutate(period=lambda t: year_of(t.date))
    if ind.kind in ("count", "rate") or ind.numerator is None:
        return _base(c, period=c.period, subject=c.person_key, unit_id=c.unit_id,
                     dx_group=c.dx_group)
    c = contact_numerators(c, tables, [("num", ind)], ctx)
    return _base(c, period=c.period, subject=c.person_key, unit_id=c.unit_id,
                 dx_group=c.dx_group, num=c.num)


def _base_enrolment(tables, ind: Indicator, ctx: CompileContext) -> ir.Table:
    """Enrolment population: one row per enrolment (and period)."""
    e = _enrolments(tables, ind)
    n = ind.numerator
    anchor = ind.period.anchor
    as_of = ibis.literal(ctx.as_of)
    if anchor == "active":
        e = _active_years(e, ctx)
    elif anchor == "start_date":
        e = e.mutate(period=year_of(e.start_date))
    elif anchor == "end_date":
        e = e.filter(e.end_date.notnull()).mutate(period=year_of(e.end_date))
    elif anchor == "due_date":
        due = e.start_date + ibis.interval(days=ind.window.offset_days or 0)
        e = e.mutate(due=due, period=year_of(due))
        # only follow-ups whose whole window has passed by the cut-off
        e = e.filter(as_of.delta(e.due, unit="day") >= ind.window.after_days)
    else:
        raise ValueError(f"{ind.id}: period anchor {anchor} not valid for enrolments")

    if n is None:  # count of persons
        return _base(e, period=e.period, subject=e.person_key, unit_id=e.unit_id)
    reasons = list(n.end_reasons or [])
    if n.event == "end_reason":
        num = e.end_reason.isin(reasons).fill_null(False)
    elif n.event == "favourable_status":
        continuing = e.end_date.isnull() | (year_of(e.end_date) > e.period)
        num = continuing | e.end_reason.isin(reasons).fill_null(False)
    elif n.event == "retained":
        days = ind.window.days or 0
        # observable: ended (any time) or followed for the whole window by the cut-off
        e = e.filter(e.end_date.notnull() | (as_of.delta(e.start_date, unit="day") >= days))
        lasted = e.end_date.fill_null(as_of).delta(e.start_date, unit="day") >= days
        num = lasted | e.end_reason.isin(reasons).fill_null(False)
    elif n.event == "death_in_treatment":
        p = tables["person"].select("person_key", "death_date")
        e = e.left_join(p, "person_key")
        died = (
            e.death_date.notnull()
            & (year_of(e.death_date) == e.period)
            & (e.death_date >= e.start_date)
            & (e.end_date.isnull() | (e.death_date <= e.end_date))
        )
        ended_dead = (e.end_reason == "deceased") & (year_of(e.end_date) == e.period)
        num = (died | ended_dead).fill_null(False)
    elif n.event == "assessment_in_window":
        a = tables["assessment"]
        a = a.filter(a.stage.isin(n.stages or []))
        w = ind.window
        pairs = e.select("enrolment_id", "person_key", "due").inner_join(
            a.select(a.person_key, adate=a.date), "person_key"
        )
        pairs = pairs.filter(
            pairs.adate.delta(pairs.due, unit="day") >= -w.before_days,
            pairs.adate.delta(pairs.due, unit="day") <= w.after_days,
        )
        e = _flag_join(e, pairs.select("enrolment_id"), ["enrolment_id"], "hit")
        num = e.hit
    else:
        raise ValueError(f"{ind.id}: numerator {n.event} not valid for enrolments")
    subject = e.person_key if ind.population.count_persons else e.enrolment_id
    return _base(e, period=e.period, subject=subject, unit_id=e.unit_id, num=num)


def change_pairs(tables: Mapping[str, ir.Table], ind: Indicator) -> ir.Table:
    """Paired measurements: first baseline vs the latest later follow-up, one per person
    (``person_key, b_date, b_score, b_unit, f_date, f_score``, …)."""
    ch = change_of(ind)
    instruments = list(ind.population.instruments or [])
    a = tables["assessment"]
    a = a.filter(a.instrument.isin(instruments), a.score.notnull())
    b = a.filter(a.stage == ch.baseline_stage)
    b = b.mutate(
        rn=ibis.row_number().over(
            group_by=[b.person_key, b.instrument], order_by=[b.date, b.unit_id, b.score]
        )
    ).filter(lambda t: t.rn == 0)
    b = b.select("person_key", "instrument", b_date=b.date, b_score=b.score, b_unit=b.unit_id)
    f = a.filter(a.stage.isin(ch.followup_stages))
    f = f.select("person_key", "instrument", f_date=f.date, f_score=f.score)
    p = b.inner_join(f, ["person_key", "instrument"])
    p = p.filter(p.f_date > p.b_date)
    p = p.mutate(
        rn=ibis.row_number().over(
            group_by=[p.person_key, p.instrument],
            order_by=[ibis.desc(p.f_date), p.f_score],
        )
    ).filter(lambda t: t.rn == 0)
    rank = ibis.cases(*[(p.instrument == ins, i) for i, ins in enumerate(instruments)], else_=99)
    p = p.mutate(irank=rank)
    p = p.mutate(
        rn2=ibis.row_number().over(group_by=p.person_key, order_by=[p.irank])
    ).filter(lambda t: t.rn2 == 0)
    p = p.mutate(b_year=year_of(p.b_date))
    if ch.require_dx_groups:
        c = tables["contact"]
        c = c.filter(c.dx_group.isin(ch.require_dx_groups))
        c = c.select(c.person_key, b_year=year_of(c.date))
        # narrow the contacts to the (few) paired persons first: a semi-join probe is far
        # cheaper than DISTINCT over every contact of the groups
        c = c.semi_join(p.select("person_key", "b_year"), ["person_key", "b_year"])
        p = p.semi_join(c, ["person_key", "b_year"])
    return p


def variant_key(ind: Indicator) -> str | None:
    """Enrolment proportions that differ only in their end reasons (e.g. LARO discharges
    by reason) have the same base rows: equal keys, one shared base (:func:`variant_base`)."""
    n = ind.numerator
    if (ind.population.source != "enrolment" or ind.kind != "proportion" or n is None
            or n.event != "end_reason"):
        return None
    return json.dumps([ind.population.model_dump(), ind.period.model_dump(), ind.unit,
                       ind.window.model_dump()], sort_keys=True)


def variant_base(
    tables: Mapping[str, ir.Table], inds: Sequence[Indicator], ctx: CompileContext,
    names: Sequence[str],
) -> ir.Table:
    """The base of ``inds[0]`` (see :func:`variant_key`) with one numerator column per
    indicator, ``names[k]`` = the enrolment ended with one of ``inds[k]``'s reasons."""
    base = build_base(tables, inds[0], ctx).drop("num")
    e = tables["enrolment"].select("enrolment_id", "end_reason")
    j = base.left_join(e, base.subject == e.enrolment_id)
    return j.select(
        *base.columns,
        **{nm: j.end_reason.isin(list(numerator_of(i).end_reasons or [])).fill_null(False)
           for nm, i in zip(names, inds, strict=True)},
    )


def _base_change(tables, ind: Indicator, ctx: CompileContext) -> ir.Table:
    """Paired measurements as base rows: improved (num) and the change in score (val)."""
    key = shared_key(ind)
    p = ctx.shared.get(key) if key is not None else None
    if p is None:
        p = change_pairs(tables, ind)
    return _base(
        p,
        period=year_of(p.f_date),
        subject=p.person_key,
        unit_id=p.b_unit,
        num=p.f_score < p.b_score,
        val=p.f_score - p.b_score,
    )


def shared_key(ind: Indicator) -> str | None:
    """Indicators with equal keys share one intermediate table (:func:`shared_table`):
    time_to indicators their index events, change indicators their paired measurements."""
    if ind.kind == "time_to":
        parts = [ind.kind, ind.population.model_dump(), numerator_of(ind).model_dump()]
    elif ind.kind == "change" and ind.change is not None:
        parts = [ind.kind, ind.population.model_dump(),
                 ind.change.model_dump(exclude={"statistic"})]
    else:
        return None
    return json.dumps(parts, sort_keys=True)


def shared_table(tables: Mapping[str, ir.Table], ind: Indicator, ctx: CompileContext) -> ir.Table:
    """The intermediate table behind :func:`shared_key`."""
    if ind.kind == "time_to":
        return time_to_events(tables, ind, ctx)
    return change_pairs(tables, ind)


def time_to_events(tables: Mapping[str, ir.Table], ind: Indicator, ctx: CompileContext) -> ir.Table:
    """Index events (``contact_id, person_key, unit_id, dx_group, end_date``) with ``days``
    to the first later contact of the numerator's contact types (null if none)."""
    ev = _contacts(tables, ind).filter(lambda t: t.end_date.notnull())
    ev = ev.filter(year_of(ev.end_date).isin(list(ctx.years)))
    ev = ev.select("contact_id", "person_key", "unit_id", "dx_group", "end_date")
    c = tables["contact"]
    nxt = c.filter(c.contact_type.isin(numerator_of(ind).contact_types or []))
    nxt = nxt.select(c.person_key, n_date=c.date)
    # a discharge is its (contact id, person, end date): duplicate or missing contact ids
    # never borrow another discharge's next contact
    ev = ev.mutate(ckey=ev.contact_id.fill_null(""))
    j = ev.inner_join(nxt, "person_key").filter(lambda t: t.n_date >= t.end_date)
    keys = ["ckey", "person_key", "end_date"]
    first = j.group_by(keys).aggregate(n_date=j.n_date.min())
    ev = ev.left_join(first, keys)
    ev = ev.drop(*[k for k in ev.columns if k.endswith("_right")])
    days = ev.n_date.delta(ev.end_date, unit="day")
    return ev.select("contact_id", "person_key", "unit_id", "dx_group", "end_date", days=days)


def discharge_subject(ev: ir.Table) -> ir.StringValue:
    """The subject of a time_to indicator: the discharge, i.e. person and contact id
    (a contact id reused by another person is another discharge)."""
    return ev.person_key.fill_null("").concat("/", ev.contact_id.fill_null(""))


def _base_time_to(tables, ind: Indicator, ctx: CompileContext) -> ir.Table:
    """Days from the end of an index contact (e.g. inpatient discharge) to the next contact."""
    key = shared_key(ind)
    ev = ctx.shared.get(key) if key is not None else None
    if ev is None:
        ev = time_to_events(tables, ind, ctx)
    as_of = ibis.literal(ctx.as_of)
    if ind.statistic == "share":
        within = ind.window.days or 0
        ev = ev.filter(as_of.delta(ev.end_date, unit="day") >= within)
        num = ev.days.notnull() & (ev.days <= within)
        return _base(ev, period=year_of(ev.end_date), subject=discharge_subject(ev),
                     unit_id=ev.unit_id, dx_group=ev.dx_group, num=num.fill_null(False))
    ev = ev.filter(ev.days.notnull())
    return _base(ev, period=year_of(ev.end_date), subject=discharge_subject(ev),
                 unit_id=ev.unit_id, dx_group=ev.dx_group, val=ev.days)


def build_base(tables: Mapping[str, ir.Table], ind: Indicator, ctx: CompileContext) -> ir.Table:
    """The indicator's base table (see module docstring), filtered to ``ctx.years``."""
    if ind.kind == "change":
        base = _base_change(tables, ind, ctx)
    elif ind.kind == "time_to":
        base = _base_time_to(tables, ind, ctx)
    elif ind.population.source == "enrolment":
        base = _base_enrolment(tables, ind, ctx)
    elif ind.population.source == "contact":
        base = _base_contact(tables, ind, ctx)
    else:
        raise ValueError(f"{ind.id}: unsupported source {ind.population.source}")
    return base.filter(base.period.isin(list(ctx.years)))


# ----------------------------------------------------------------------- aggregation


def age_band_of(age: ir.IntegerValue, bands: Sequence[AgeBand]) -> ir.StringValue:
    cases = []
    for b in bands:
        cond = age >= b.low if b.high is None else (age >= b.low) & (age <= b.high)
        cases.append((cond, b.label))
    return ibis.cases(*cases, else_=ibis.null("string"))


PERSON_BREAKDOWNS = ("total", "sex", "age_band", "municipality")
UNIT_BREAKDOWNS = ("unit_id", "organisation", "principal_type", "care_level")


def residents(tables: Mapping[str, ir.Table], ctx: CompileContext) -> ir.Table:
    """``person_key`` of persons living in a municipality of the population table."""
    if ctx.population is None:
        raise ValueError("rate indicators need a population table")
    munis = ctx.population.select(municipality=ctx.population.municipality.cast("string"))
    person = tables["person"]
    return person.filter(person.municipality.isin(munis.distinct().municipality)).select(
        "person_key"
    )


def compile_base(tables: Mapping[str, ir.Table], ind: Indicator, ctx: CompileContext) -> ir.Table:
    """The base table (standard columns), restricted to residents for ``rate``."""
    base = build_base(tables, ind, ctx)
    if ind.kind == "rate" and ind.population.residents_only:
        base = base.semi_join(residents(tables, ctx), "person_key")
    return base


def is_statistic(ind: Indicator) -> bool:
    if ind.kind == "change" and ind.change is not None:
        return ind.change.statistic == "mean_change"
    return ind.kind == "time_to" and ind.statistic == "median"


def reduce_subjects(
    t: ir.Table, keys: Sequence[str], nums: Sequence[str] = ("num",)
) -> ir.Table:
    """One row per (period, subject, *keys) with each ``nums`` = any row in the numerator.

    After this, counting rows is counting distinct subjects: no COUNT(DISTINCT).
    """
    return t.group_by(["period", "subject", *keys]).aggregate(**{n: t[n].any() for n in nums})


def person_stage(
    base: ir.Table, tables: Mapping[str, ir.Table], ctx: CompileContext,
    nums: Sequence[str] = ("num",),
) -> ir.Table:
    """Subjects per period with person attributes (sex, age band, municipality)."""
    p = tables["person"].select("person_key", "sex", "birth_year", "municipality")
    if "person_key" in base.columns:
        r = reduce_subjects(base, ["person_key"], nums)
    else:  # fused contact bases: the subject is the person
        r = reduce_subjects(base, [], nums)
        r = r.mutate(person_key=r.subject)
    j = r.left_join(p, "person_key")
    j = j.drop("person_key_right") if "person_key_right" in j.columns else j
    age = j.period - j.birth_year.cast("int64")
    return j.select("period", "subject", *nums, "sex", "municipality",
                    age_band=age_band_of(age, ctx.age_bands))


def unit_stage(
    base: ir.Table, tables: Mapping[str, ir.Table], nums: Sequence[str] = ("num",)
) -> ir.Table:
    """Subjects per period and unit with unit attributes."""
    r = reduce_subjects(base, ["unit_id"], nums)
    u = tables["unit"].select("unit_id", "organisation", "principal_type", "care_level")
    j = r.left_join(u, "unit_id")
    return j.drop("unit_id_right") if "unit_id_right" in j.columns else j


def level_of(t: ir.Table, breakdown: str) -> ir.StringValue:
    col = BREAKDOWN_COLUMNS[breakdown]
    if col is None:
        return ibis.literal("")
    return t[col].cast("string").fill_null(UNKNOWN_LEVEL)


def _count_cells(t: ir.Table, ind: Indicator, breakdown: str, unique: bool) -> ir.Table:
    """Cells of one breakdown from a stage table.

    ``unique``: rows are already one per (period, subject, level) (no re-reduction).
    """
    g = t.mutate(level=level_of(t, breakdown))
    if not unique:
        g = g.group_by("period", "subject", "level").aggregate(num=g.num.any())
    if ind.kind in ("count", "rate"):
        metrics = dict(numerator=g.count().cast("int64"), denominator=ibis.null("int64"))
    else:
        metrics = dict(
            numerator=g.count(where=g.num.fill_null(False)).cast("int64"),
            denominator=g.count().cast("int64"),
        )
    out = g.group_by("period", "level").aggregate(stat=ibis.null("float64"), **metrics)
    return out.mutate(breakdown=ibis.literal(breakdown))


def _statistic_cells(t: ir.Table, ind: Indicator, breakdown: str) -> ir.Table:
    """Mean/median cells (one base row per subject and period: change, time_to)."""
    g = t.mutate(level=level_of(t, breakdown))
    stat = g.val.mean() if ind.kind == "change" else g.val.median()
    out = g.group_by("period", "level").aggregate(
        numerator=ibis.null("int64"),
        denominator=g.subject.nunique().cast("int64"),
        stat=stat.cast("float64"),
    )
    return out.mutate(breakdown=ibis.literal(breakdown))


def enrich(base: ir.Table, tables: Mapping[str, ir.Table], ctx: CompileContext) -> ir.Table:
    """Base rows with person and unit attributes (used for mean/median indicators)."""
    p = tables["person"].select(
        "person_key", "sex", "birth_year", p_municipality=tables["person"].municipality
    )
    u = tables["unit"].select("unit_id", "organisation", "principal_type", "care_level")
    j = base.left_join(p, "person_key")
    j = j.drop("person_key_right") if "person_key_right" in j.columns else j
    j = j.left_join(u, "unit_id")
    j = j.drop("unit_id_right") if "unit_id_right" in j.columns else j
    age = j.period - j.birth_year.cast("int64")
    return j.mutate(age_band=age_band_of(age, ctx.age_bands), municipality=j.p_municipality)


def population_denominators(ctx: CompileContext, breakdown: str) -> ir.Table:
    pop = ctx.population
    if pop is None:
        raise ValueError("rate indicators need a population table")
    col = {"total": None, "sex": "sex", "municipality": "municipality"}[breakdown]
    level = ibis.literal("") if col is None else pop[col].cast("string")
    pop = pop.mutate(period=pop.year.cast("int64"), level=level)
    return pop.group_by("period", "level").aggregate(pop_n=pop.population.sum().cast("int64"))


def _finish(part: ir.Table, ind: Indicator, ctx: CompileContext, breakdown: str) -> ir.Table:
    if ind.kind == "rate":
        # every (year, level) of the population table is a cell: no residents → 0
        den = population_denominators(ctx, breakdown)
        den = den.filter(den.period.isin(list(ctx.years)))
        d = den.rename(d_period="period", d_level="level")
        j = part.outer_join(d, (part.period == d.d_period) & (part.level == d.d_level))
        part = j.select(
            period=j.period.coalesce(j.d_period), level=j.level.coalesce(j.d_level),
            numerator=j.numerator.fill_null(0), denominator=j.pop_n, stat=j.stat,
        )
    return part.select(
        indicator_id=ibis.literal(ind.id),
        period=part.period.cast("string"),
        breakdown=ibis.literal(breakdown),
        level=part.level,
        numerator=part.numerator,
        denominator=part.denominator,
        stat=part.stat,
    )


def _union(parts: list[ir.Table]) -> ir.Table | None:
    if not parts:
        return None
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]


def breakdown_plan(ind: Indicator, breakdowns: Sequence[str]) -> dict[str, list[str]]:
    """Breakdowns grouped by the stage they are computed from."""
    allowed = [b for b in breakdowns if b in ind.allowed_breakdowns]
    if is_statistic(ind):
        return {"enriched": allowed}
    return {
        "person": [b for b in allowed if b in PERSON_BREAKDOWNS],
        "unit": [b for b in allowed if b in UNIT_BREAKDOWNS],
        "dx": [b for b in allowed if b == "dx_group"],
    }


def stage_table(
    stage: str, base: ir.Table, tables: Mapping[str, ir.Table], ctx: CompileContext,
    nums: Sequence[str] = ("num",),
) -> ir.Table:
    """The (materialisable) table a group of breakdowns is computed from."""
    if stage == "enriched":
        return enrich(base, tables, ctx)
    if stage == "person":
        return person_stage(base, tables, ctx, nums)
    if stage == "unit":
        return unit_stage(base, tables, nums)
    return reduce_subjects(base, ["dx_group"], nums)


def variant_cells(
    stage: str, table: ir.Table, names: Sequence[str], breakdown: str
) -> ir.Table:
    """Wide cells of several numerators over one stage table: ``period, level, den, <name>…``."""
    g = table.mutate(level=level_of(table, breakdown))
    if not (stage in ("person", "dx") or breakdown == "unit_id"):
        g = g.group_by("period", "subject", "level").aggregate(**{n: g[n].any() for n in names})
    return g.group_by("period", "level").aggregate(
        den=g.count().cast("int64"),
        **{n: g.count(where=g[n].fill_null(False)).cast("int64") for n in names},
    )


def stage_cells(
    stage: str, table: ir.Table, ind: Indicator, ctx: CompileContext, breakdowns: Sequence[str]
) -> ir.Table | None:
    """Result cells (``union all``) of ``breakdowns`` computed from one stage table."""
    parts = []
    for b in breakdowns:
        if stage == "enriched":
            part = _statistic_cells(table, ind, b)
        else:
            # person/dx stages are one row per (period, subject, level) already; a subject
            # may have several units of one organisation, so those need re-reducing
            unique = stage in ("person", "dx") or b == "unit_id"
            part = _count_cells(table, ind, b, unique=unique)
        parts.append(_finish(part, ind, ctx, b))
    return _union(parts)


def compile_indicator(
    tables: Mapping[str, ir.Table],
    ind: Indicator,
    ctx: CompileContext,
    breakdowns: Sequence[str] = ("total",),
) -> ir.Table:
    """ONE Ibis expression computing ``ind`` for every breakdown in ``breakdowns``.

    Breakdowns the indicator does not support (e.g. ``dx_group`` for enrolments,
    ``unit_id`` for rates) are left out. Result columns: ``indicator_id, period,
    breakdown, level, numerator, denominator, stat``. (The engine executes the same
    stages but materialises the shared intermediate tables; see ``compute_catalogue``.)
    """
    base = compile_base(tables, ind, ctx)
    parts = []
    for stage, bds in breakdown_plan(ind, breakdowns).items():
        if bds:
            cells = stage_cells(stage, stage_table(stage, base, tables, ctx), ind, ctx, bds)
            if cells is not None:
                parts.append(cells)
    out = _union(parts)
    if out is None:
        raise ValueError(f"{ind.id}: none of the breakdowns {list(breakdowns)} apply")
    return out
