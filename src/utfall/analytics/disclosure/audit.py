"""The disclosure audit: the attacker over a whole protected release, summarised.

Behind ``utfall disclosure audit``. For every masked cell the attacker computes the
interval an LP attacker reaches (HiGHS) and decides over the integers whether the cell
is exactly recoverable; the audit fails when any cell is, or any ``<5`` cell is
narrowed to a single value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from utfall.analytics.disclosure.attacker import CellInterval, intervals
from utfall.analytics.disclosure.model import CellKey, ReleaseModel
from utfall.analytics.disclosure.reasons import Kind


@dataclass
class SeriesAudit:
    """Audit figures of one indicator (or the regional table)."""

    name: str
    published: int = 0
    masked: int = 0
    recoverable: int = 0  # masked cells the attacker pins to one value
    small_narrowed: int = 0  # "<5" cells narrowed to one value
    narrowest: CellInterval | None = None
    narrowest_key: CellKey | None = None
    values_counts: list[float] = field(default_factory=list)  # possible values per mask

    @property
    def narrowest_width(self) -> float:
        return self.narrowest.high - self.narrowest.low if self.narrowest else math.inf


@dataclass
class AuditReport:
    """The audit of one release."""

    series: dict[str, SeriesAudit] = field(default_factory=dict)

    @property
    def published(self) -> int:
        return sum(s.published for s in self.series.values())

    @property
    def masked(self) -> int:
        return sum(s.masked for s in self.series.values())

    @property
    def recoverable(self) -> int:
        return sum(s.recoverable for s in self.series.values())

    @property
    def small_narrowed(self) -> int:
        return sum(s.small_narrowed for s in self.series.values())

    @property
    def ok(self) -> bool:
        return self.recoverable == 0 and self.small_narrowed == 0

    def width_histogram(self) -> dict[str, int]:
        """How many masked cells the attacker leaves with 2, 3, 4, 5+ or ∞ values."""
        out = {"1": 0, "2": 0, "3": 0, "4": 0, "5+": 0, "∞": 0}
        for s in self.series.values():
            for n in s.values_counts:
                key = ("∞" if math.isinf(n) else "5+" if n >= 5 else str(int(max(n, 1))))
                out[key] += 1
        return out


def audit_release(model: ReleaseModel) -> AuditReport:
    """Run the attacker over every masked cell of a protected release."""
    report = AuditReport()

    def series(k: int) -> SeriesAudit:
        name = model.keys[k][0]
        if name not in report.series:
            report.series[name] = SeriesAudit(name)
        return report.series[name]

    for k, why in enumerate(model.reasons):
        s = series(k)
        if why is None:
            s.published += 1
        else:
            s.masked += 1
    for iv in intervals(model):
        s = series(iv.cell)
        s.values_counts.append(1 if iv.pinned else iv.n_values)
        why = model.reasons[iv.cell]
        if iv.pinned:
            s.recoverable += 1
            if why is not None and why.kind is Kind.PRIMARY:
                s.small_narrowed += 1
        width = 0.0 if iv.pinned else iv.high - iv.low
        if s.narrowest is None or width < s.narrowest_width:
            s.narrowest, s.narrowest_key = iv, model.keys[iv.cell]
    return report


def format_interval(iv: CellInterval | None) -> str:
    """``[3, 7]``, ``[5, ∞)`` or ``–``."""
    if iv is None:
        return "–"
    if iv.pinned:
        return "exact"
    lo = f"{math.ceil(iv.low - 1e-6)}"
    if math.isinf(iv.high):
        return f"[{lo}, ∞)"
    return f"[{lo}, {math.floor(iv.high + 1e-6)}]"
