"""Enrolment proportions that differ only in their end reasons (e.g. the six LARO
discharge indicators) share one base table and its stages: one numerator column per
indicator over the same rows (:func:`~utfall.analytics.semantics.compiler.variant_base`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext

import ibis.expr.types as ir
import pyarrow as pa

from utfall.analytics.executor.backends import materialized
from utfall.analytics.schema import raw_cells
from utfall.analytics.semantics.catalogue import Indicator
from utfall.analytics.semantics.compiler import (
    CompileContext,
    breakdown_plan,
    reduce_subjects,
    stage_table,
    variant_base,
    variant_cells,
)


def compute_variants(
    tables: Mapping[str, ir.Table],
    inds: Sequence[Indicator],
    ctx: CompileContext,
    breakdowns: Sequence[str],
) -> list[pa.Table]:
    """Execute enrolment proportions that share base rows, one numerator column each."""
    names = [f"num_{k}" for k in range(len(inds))]
    plan = {k: v for k, v in breakdown_plan(inds[0], breakdowns).items() if v}
    out: list[pa.Table] = []
    base_expr = reduce_subjects(variant_base(tables, inds, ctx, names),
                                ["person_key", "unit_id", "dx_group"], names)
    with materialized(base_expr) as base:
        for stage, bds in plan.items():
            table = stage_table(stage, base, tables, ctx, names)
            with materialized(table) if len(bds) > 1 else nullcontext(table) as mat:
                for b in bds:
                    wide = variant_cells(stage, mat, names, b).to_pyarrow()
                    out.extend(
                        raw_cells(ind.id, b, wide["period"], wide["level"], wide[name],
                                  wide["den"])
                        for name, ind in zip(names, inds, strict=True)
                    )
    return out
