"""Protection over the whole release: linked secondary suppression checked by the attacker.

One data state gives one release: every indicator × period × breakdown × level, the
totals and the regional table. :func:`protect_release` masks it once:

1. primary: counts ``1 … threshold−1`` (and the complement rule) — per cell;
2. links: a count published twice (a shared denominator, the regional table's
   ``dx_group`` cells) is masked everywhere it appears;
3. secondary: while the attacker (:mod:`~utfall.analytics.disclosure.attacker`) can
   narrow a masked cell to fewer than two values, mask the smallest non-zero published
   cell of a relation that pins it (finer cells before totals, equalities first); if a
   relation has nothing left to mask, its cells are *withheld*;
4. values (percentages, means, intervals) are withheld where a count behind them is
   masked or the denominator is small.

Every output (CLI, web, API, CSV/XLSX/PDF) serves subsets of this one protected
release, so the suppression pattern does not depend on what was requested.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from utfall.analytics.disclosure.attacker import exposed_variables, harmless
from utfall.analytics.disclosure.model import Relation, ReleaseModel, build_model
from utfall.analytics.disclosure.reasons import Kind, Reason
from utfall.analytics.disclosure.results import (
    RESULT_COLUMNS,
    Row,
    apply_cell_key,
    assemble,
    mask_values,
    rows_of,
)
from utfall.analytics.disclosure.rules import DisclosureRules, load_rules

REGIONAL_COUNT_COLUMNS: tuple[str, ...] = ("AU119", "AU124", "DU119", "persons")
MAX_ROUNDS = 10_000
logger = logging.getLogger(__name__)


@dataclass
class Release:
    """The protected release of one data state."""

    results: pa.Table  # long indicator format, protected
    regional_rows: list[dict[str, Any]]  # dx_group, year, counts as display strings
    regional_reasons: list[dict[str, Reason]]  # per regional row: column → reason
    model: ReleaseModel
    rounds: int = 0

    def subset(self, indicators: Iterable[str] | None = None,
               breakdowns: Iterable[str] | None = None,
               periods: Iterable[str] | None = None) -> pa.Table:
        """Rows of the protected results for some indicators/breakdowns/periods."""
        table = self.results
        for column, wanted in (("indicator_id", indicators), ("breakdown", breakdowns),
                               ("period", periods)):
            if wanted is not None:
                table = table.filter(pc.is_in(table[column], pa.array(list(wanted),
                                                                      pa.string())))
        return table.replace_schema_metadata(self.results.schema.metadata)


def _primary(model: ReleaseModel, row_cells: Sequence[Mapping[str, int]]) -> None:
    rules = model.rules
    if rules.threshold > 1 or rules.zeros == "mask":
        for k, v in enumerate(model.values):
            if rules.is_small(v):
                model.reasons[k] = Reason.primary(rules)
    if not (rules.complement and rules.threshold > 1):
        return
    for num, den in model.denominator_of.items():  # result rows and regional rows
        if model.reasons[num] is None and model.reasons[den] is None:
            gap = model.values[den] - model.values[num]
            if 0 < gap < rules.threshold:
                model.reasons[num] = Reason.complement(rules)


def _sync_links(model: ReleaseModel) -> None:
    """Mask every cell of a link class in which one cell is masked."""
    for members in model.classes().values():
        masked = [m for m in members if model.reasons[m] is not None]
        if not masked or len(masked) == len(members):
            continue
        first = model.reasons[masked[0]]
        assert first is not None
        for m in members:
            if model.reasons[m] is None:
                same = model.values[m] == model.values[masked[0]]
                den = model.denominator_of.get(m)
                own_complement = den is not None and (
                    0 < model.values[den] - model.values[m] < model.rules.threshold)
                keep = same and (first.kind is not Kind.COMPLEMENT or own_complement)
                if keep:
                    model.reasons[m] = first
                elif model.values[m] >= model.rules.threshold:  # "..", never small
                    model.reasons[m] = Reason.secondary("the same count published elsewhere")
                else:  # a zero linked to a different, masked count says nothing
                    model.reasons[m] = Reason.withheld()


def _secondary(model: ReleaseModel) -> int:
    """Mask further cells until the attacker pins no masked cell; returns the rounds."""
    by_cell: dict[int, list[int]] = {}
    for r, rel in enumerate(model.relations):
        for k, _ in rel.terms:
            by_cell.setdefault(k, []).append(r)
    cache: dict = {}
    settled: set[int] = set()  # pinned by the relations' structure alone (see below)
    for rounds in range(1, MAX_ROUNDS + 1):
        _sync_links(model)
        exposed = [v for v in exposed_variables(model, cache) if v not in settled]
        if not exposed:
            return rounds
        var = model.variables()
        cells_of: dict[int, list[int]] = {}
        for k, v in enumerate(var):
            cells_of.setdefault(v, []).append(k)
        before = list(model.reasons)
        for v in exposed:
            _protect(model, cells_of.get(v, [v]), by_cell)
        if model.reasons != before:
            continue
        # no progress: withhold every cell of every relation reachable from the exposed
        # variables through masked cells (their attacker components) and the cells of
        # those relations, so that nothing published constrains them any more
        if _withhold(model, _reachable(model, exposed, cells_of, by_cell)):
            continue
        # everything they touch is withheld: the pin follows from the definitions alone
        # (no published count enters it), so no publication can protect or reveal it
        logger.warning("disclosure: %d cell(s) determined by the table structure alone "
                       "(%d of them non-zero), all withheld", len(exposed),
                       sum(1 for v in exposed if not harmless(model, v)))
        settled.update(exposed)
    raise RuntimeError("secondary suppression did not converge")  # pragma: no cover


def _reachable(model: ReleaseModel, exposed: Iterable[int], cells_of: Mapping[int, list[int]],
               by_cell: Mapping[int, list[int]]) -> list[int]:
    """Cells of every relation reachable from ``exposed`` through masked cells."""
    var = model.variables()
    seen_vars: set[int] = set()
    seen_rels: set[int] = set()
    todo = list(exposed)
    out: list[int] = []
    while todo:
        v = todo.pop()
        if v in seen_vars:
            continue
        seen_vars.add(v)
        for c in cells_of.get(v, [v]):
            out.append(c)
            for r in by_cell.get(c, []):
                if r in seen_rels:
                    continue
                seen_rels.add(r)
                for k, _ in model.relations[r].terms:
                    out.append(k)
                    if model.reasons[k] is not None:
                        todo.append(var[k])
            den = model.denominator_of.get(c)
            if den is not None:
                out.append(den)
    return out


def _protect(model: ReleaseModel, cells: Sequence[int], by_cell: Mapping[int, list[int]]) -> None:
    """Mask one more cell of a relation through ``cells``, or withhold the relation."""
    rels = sorted({r for k in cells for r in by_cell.get(k, [])},
                  key=lambda r: (model.relations[r].sense != "=",
                                 sum(1 for k, _ in model.relations[r].terms
                                     if model.reasons[k] is not None), r))
    for num in cells:  # a complement numerator is pinned through its denominator
        den = model.denominator_of.get(num)
        why = model.reasons[num]
        if (den is not None and why is not None and why.kind is Kind.COMPLEMENT
                and model.reasons[den] is None):
            model.reasons[den] = Reason.secondary("numerator complement")
            return
    for r in rels:
        rel = model.relations[r]
        if _slack(model, rel):  # says nothing about its masked cells: masking adds nothing
            continue
        open_cells = [k for k, _ in rel.terms
                      if model.reasons[k] is None and model.values[k] > 0]
        if open_cells:
            pick = min(open_cells, key=lambda k: (model.values[k], model.keys[k][3] == "total",
                                                  model.keys[k]))
            model.reasons[pick] = Reason.secondary(rel.label)
            return
    # nothing left to mask: withhold every cell of the relations and every cell linked
    # to them (withheld masks say nothing about sizes)
    _withhold(model, [k for r in rels if not _slack(model, model.relations[r])
                      for k, _ in model.relations[r].terms] + list(cells))


def _slack(model: ReleaseModel, rel: Relation) -> bool:
    """True if an inequality cannot bind for any values the masked cells may take, so it
    tells an attacker nothing about them (e.g. a primary numerator, at most 4, under a
    published denominator of 319). Masked cells are at least 0; only primary cells have
    a known upper bound (threshold − 1), so a relation with any other masked cell on its
    smaller side may bind and is not slack."""
    if rel.sense != "<=":
        return False
    most = 0
    for k, coef in rel.terms:
        why = model.reasons[k]
        if why is None:
            most += coef * model.values[k]
        elif coef > 0:
            if why.kind is not Kind.PRIMARY:
                return False
            most += coef * (model.rules.threshold - 1)
    return most < rel.rhs


def _withhold(model: ReleaseModel, cells: Iterable[int]) -> bool:
    """Withhold cells and their link classes; True if anything changed."""
    classes = model.classes()
    changed = False
    for k in cells:
        for m in classes.get(model.find(k), [k]):
            why = model.reasons[m]
            if why is None or why.kind is not Kind.WITHHELD:
                model.reasons[m] = Reason.withheld()
                changed = True
    return changed


def protect_release(
    results: pa.Table,
    rules: DisclosureRules | None = None,
    *,
    units: Mapping[str, Mapping[str, str | None]] | None = None,
    families: Iterable[Sequence[str]] = (),
    regional: pa.Table | Sequence[Mapping[str, Any]] | None = None,
) -> Release:
    """Protect a whole release (indicator results in long format, optionally the regional
    counts) at once; see the module docstring. ``units`` maps ``unit_id`` to its
    ``organisation``, ``principal_type`` and ``care_level`` (hierarchy relations);
    ``families`` lists indicators sharing one population with disjoint numerators.
    """
    rules = rules or load_rules()
    data, rows = rows_of(results)
    if rules.method == "cell_key":
        apply_cell_key(data, rows, rules)
    regional_rows = (regional.to_pylist() if isinstance(regional, pa.Table)
                     else [dict(r) for r in (regional or [])])
    if rules.method == "cell_key":
        from utfall.analytics.disclosure.cellkey import cell_key_noise, coordinate_key

        for r in regional_rows:
            for c in REGIONAL_COUNT_COLUMNS:
                if r.get(c) is not None:
                    v = int(r[c])
                    r[c] = v + cell_key_noise(
                        v, coordinate_key(r["dx_group"], r["year"], c), rules)
    counted = [
        {**r, "numerator": row.numerator, "denominator": row.denominator}
        for r, row in zip(data, rows, strict=True)
    ]
    model, row_cells = build_model(counted, rules, units=units, families=families,
                                   regional=regional_rows)
    _primary(model, row_cells)
    rounds = 0
    if rules.method == "suppression" and rules.secondary:
        rounds = _secondary(model)
    else:
        _sync_links(model)
    for row, cells in zip(rows, row_cells, strict=True):
        for col, k in cells.items():
            why = model.reasons[k]
            if why is not None:
                row.mask(col, why)
    mask_values(rows, rules)
    table = assemble(results, data, rows, rules)

    shown: list[dict[str, Any]] = []
    reasons: list[dict[str, Reason]] = []
    for r in regional_rows:
        out: dict[str, Any] = {"dx_group": r["dx_group"], "year": r["year"]}
        why_row: dict[str, Reason] = {}
        for c in REGIONAL_COUNT_COLUMNS:
            at = model.index.get(("regional", c, str(r["year"]), "dx_group", str(r["dx_group"])))
            why = model.reasons[at] if at is not None else None
            if why is not None:
                why_row[c] = why
            out[c] = why.display_text(rules) if why else str(int(r[c]))
        shown.append(out)
        reasons.append(why_row)
    return Release(table, shown, reasons, model, rounds)


def apply_disclosure(
    results: pa.Table,
    rules: DisclosureRules | None = None,
    *,
    units: Mapping[str, Mapping[str, str | None]] | None = None,
    families: Iterable[Sequence[str]] = (),
) -> pa.Table:
    """Disclosure control for indicator results (long format), protected as one release.

    Input columns: ``indicator_id, period, breakdown, level, numerator, denominator,
    value, ci_low, ci_high``; rows with ``breakdown == "total"`` are the margins of the
    other rows of the same indicator, period and column. Returns the same columns with
    masked values nulled, plus ``suppressed``, ``suppression_reason`` and the display
    strings ``numerator_display, denominator_display, value_display, ci_low_display,
    ci_high_display``. Extra input columns pass through (``cell_key`` is consumed).
    Serve subsets of one protected release (:func:`protect_release`,
    :meth:`Release.subset`) rather than protecting subsets separately.
    """
    return protect_release(results, rules, units=units, families=families).results


def end_reason_families(catalogue: Any) -> list[list[str]]:
    """Indicators counting disjoint end reasons of one population (e.g. LARO discharges)."""
    groups: dict[str, list[tuple[str, set[str]]]] = {}
    for ind in getattr(catalogue, "indicators", []):
        num = getattr(ind, "numerator", None)
        if num is None or getattr(num, "event", None) != "end_reason":
            continue
        base = ind.model_dump(include={"kind", "population", "period", "unit", "window",
                                       "change"})
        groups.setdefault(repr(sorted(base.items(), key=lambda kv: kv[0])), []).append(
            (ind.id, set(num.end_reasons or [])))
    out: list[list[str]] = []
    for members in groups.values():
        seen: set[str] = set()
        disjoint = True
        for _, reasons in members:
            disjoint &= not (reasons & seen)
            seen |= reasons
        if disjoint and len(members) > 1:
            out.append([i for i, _ in members])
    return out


__all__ = ["RESULT_COLUMNS", "Release", "Row", "apply_disclosure", "end_reason_families",
           "protect_release"]
