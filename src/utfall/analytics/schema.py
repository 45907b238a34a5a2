"""The tables analytics reads and writes.

The canonical input tables (``TABLES``, defined in :mod:`utfall.domain.canonical_schema`,
shared with the store) and the indicator result format (``RESULT_SCHEMA``) that the
executor produces and disclosure control, reports and the web consume.
"""

from __future__ import annotations

import pyarrow as pa

from utfall.domain.canonical_schema import TABLE_NAMES, TABLES, conform, empty_table

__all__ = ["RESULT_SCHEMA", "TABLES", "TABLE_NAMES", "conform", "empty_table", "raw_cells"]

# The indicator result format (long, one row per cell) that the engine produces and
# disclosure control, reports and the web consume.
RESULT_SCHEMA = pa.schema(
    [
        ("indicator_id", pa.string()),
        ("period", pa.string()),
        ("breakdown", pa.string()),
        ("level", pa.string()),
        ("numerator", pa.int64()),
        ("denominator", pa.int64()),
        ("value", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
    ]
)


def raw_cells(
    indicator_id: str, breakdown: str, period: pa.Array, level: pa.Array,
    numerator: pa.Array | None, denominator: pa.Array | None, stat: pa.Array | None = None,
) -> pa.Table:
    """Raw engine rows of one indicator and breakdown (before values and intervals are
    added); ``None`` for a column means all null."""
    n = len(period)
    return pa.table({
        "indicator_id": pa.array([indicator_id] * n, pa.string()),
        "period": period.cast(pa.string()),
        "breakdown": pa.array([breakdown] * n, pa.string()),
        "level": level.cast(pa.string()),
        "numerator": pa.nulls(n, pa.int64()) if numerator is None else numerator.cast(pa.int64()),
        "denominator": (pa.nulls(n, pa.int64()) if denominator is None
                        else denominator.cast(pa.int64())),
        "stat": pa.nulls(n, pa.float64()) if stat is None else stat.cast(pa.float64()),
    })
