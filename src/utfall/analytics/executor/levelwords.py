"""Low-cardinality unit breakdowns without a de-duplication pass ("level words").

Counting persons per principal type (or care level…) needs one row per period,
person and level: a person with two units of the same type counts once. The
plain way re-groups the ~11 M (period, person, unit) rows by (period, person,
level), one hash aggregation per attribute.

When an attribute has few levels, the person stage can carry the answer instead:
each of the attribute's levels gets a *slot* of ``B`` bits (``B`` = the bits of
the fused plan) in an int64 *word*, a unit row contributes ``bits * 2**(B*slot)``
(its bits shifted into its level's slot) and ``bit_or`` over the person's rows
leaves, in every slot, the OR of the person's bits at units of that level —
exactly what the de-duplicated row would hold. Counting is then a
``GROUP BY period, word`` with few distinct words, decoded here with NumPy.

The multipliers live in a small table keyed by ``unit_id`` (:func:`unit_codes`),
so the aggregation is a join with a 200-row table and a multiplication: no
variable shifts, same SQL on DuckDB, PostgreSQL and PySpark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from utfall.analytics.semantics.compiler import UNKNOWN_LEVEL

WORD_BITS = 63  # value bits of an int64
MAX_WORDS = 2  # attributes needing more words are de-duplicated the plain way


@dataclass(frozen=True)
class LevelWords:
    """The slots of one attribute: ``levels[i]`` sits in word ``i // per`` at slot ``i % per``."""

    breakdown: str
    levels: tuple[str, ...]
    bits: int  # B: bits per slot
    per: int  # slots per word

    @property
    def words(self) -> int:
        return -(-len(self.levels) // self.per)

    def column(self, k: int) -> str:
        return f"w_{self.breakdown}_{k}"

    def multiplier(self, level: str, k: int) -> int:
        i = self.levels.index(level)
        return 1 << (self.bits * (i % self.per)) if i // self.per == k else 0


def unit_levels(unit: pa.Table, breakdown: str) -> list[str]:
    """Level strings of ``breakdown`` as the stages label them (null → unknown)."""
    values = unit[breakdown].cast(pa.string()).to_pylist()
    return [UNKNOWN_LEVEL if v is None else v for v in values]


def plan_words(
    unit: pa.Table, breakdowns: Sequence[str], bits: int, max_words: int | None = None
) -> dict[str, LevelWords]:
    """Level words for each unit attribute in ``breakdowns`` that fits ``max_words``."""
    per = WORD_BITS // bits if bits else 0
    max_words = MAX_WORDS if max_words is None else max_words
    out: dict[str, LevelWords] = {}
    for b in breakdowns:
        if b == "unit_id" or per == 0:
            continue
        # "unknown" always has a slot: units missing from the unit table land there
        levels = tuple(sorted(set(unit_levels(unit, b)) | {UNKNOWN_LEVEL}))
        lw = LevelWords(b, levels, bits, per)
        if lw.words <= max_words:
            out[b] = lw
    return out


def unit_codes(unit: pa.Table, words: Sequence[LevelWords]) -> pa.Table:
    """``unit_id`` and one int64 multiplier column per word of every attribute."""
    cols: dict[str, pa.Array] = {"unit_id": unit["unit_id"].cast(pa.string())}
    for lw in words:
        levels = unit_levels(unit, lw.breakdown)
        for k in range(lw.words):
            cols[lw.column(k)] = pa.array([lw.multiplier(v, k) for v in levels], pa.int64())
    return pa.table(cols)


def decode(
    counts: pa.Table, lw: LevelWords, k: int, masks: Sequence[int]
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Persons per (period, level) covering each mask, from ``period, word, n`` counts of
    word ``k``. Returns (periods, levels, counts[rows, masks]) for non-empty cells."""
    period = counts["period"].to_numpy(zero_copy_only=False).astype(np.int64)
    word = counts["word"].to_numpy(zero_copy_only=False).astype(np.int64)
    n = counts["n"].to_numpy(zero_copy_only=False).astype(np.int64)
    full = (1 << lw.bits) - 1
    rows_p: list[np.ndarray] = []
    rows_l: list[str] = []
    rows_c: list[np.ndarray] = []
    years = np.unique(period)
    for slot in range(lw.per):
        i = k * lw.per + slot
        if i >= len(lw.levels):
            break
        pattern = (word >> (lw.bits * slot)) & full
        present = pattern != 0
        for year in years:
            sel = present & (period == year)
            if not sel.any():
                continue
            pat, cnt = pattern[sel], n[sel]
            rows_p.append(np.array([year]))
            rows_l.append(lw.levels[i])
            rows_c.append(np.array([[cnt[(pat & m) == m].sum() for m in masks]]))
    if not rows_p:
        return np.zeros(0, np.int64), [], np.zeros((0, len(masks)), np.int64)
    return np.concatenate(rows_p), rows_l, np.vstack(rows_c)


def wide_cells(
    parts: Sequence[tuple[np.ndarray, list[str], np.ndarray]], masks: Sequence[int]
) -> pa.Table:
    """Decoded parts of one attribute → ``period, level, m0, m1, …`` (as stage cells)."""
    period = np.concatenate([p for p, _, _ in parts]) if parts else np.zeros(0, np.int64)
    levels = [lv for _, ls, _ in parts for lv in ls]
    counts = (np.vstack([c for _, _, c in parts]) if parts
              else np.zeros((0, len(masks)), np.int64))
    cols: dict[str, pa.Array] = {
        "period": pa.array(period, pa.int64()),
        "level": pa.array(levels, pa.string()),
    }
    for j in range(len(masks)):
        cols[f"m{j}"] = pa.array(counts[:, j], pa.int64())
    return pa.table(cols)
