"""Statistical disclosure control: mandatory before anything is rendered, exported or served.

Rules are versioned data (``content/disclosure/rules-v<N>.yaml``). Two methods:

* ``suppression`` (default): counts ``1 .. threshold-1`` are masked (primary), zeros
  shown; a numerator whose complement ``denominator - numerator`` is small is masked
  too; percentages/means are withheld for small denominators; and *secondary
  suppression* masks further cells until no masked cell can be recovered exactly from
  the published cells and totals.
* ``cell_key``: Statistics Sweden-style controlled noise; see :func:`cell_key_noise`.

Every masked cell carries the reason it was masked (as ACRO does), e.g.
``primary: count 1–4``, ``secondary: recoverable from row total``,
``denominator below 10``.

Recoverability is decided exactly (see :func:`unprotected_cells`): a table with
margins is the extended matrix ``[[x, -r], [-c, g]]`` whose rows and columns sum to
zero; two tables that agree on the published cells differ by a circulation on the
masked cells, which decomposes into alternating cycles that each stay inside the
attacker's known bounds. So a masked cell is *not* determined iff some alternating
cycle through it can move by ±1 within the bounds — a reachability question.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from utfall.analytics.schema import RESULT_SCHEMA
from utfall.content import list_content, load_yaml

Method = Literal["suppression", "cell_key"]
INF = math.inf

RESULT_COLUMNS: tuple[str, ...] = tuple(RESULT_SCHEMA.names)
DISPLAY_COLUMNS: tuple[str, ...] = (
    "numerator_display",
    "denominator_display",
    "value_display",
    "ci_low_display",
    "ci_high_display",
)
PROTECTED_KEY = b"utfall_disclosure_version"
WITHHELD = "withheld: masked cells would be recoverable"


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class DisclosureRules:
    """One version of the disclosure-control rules (see ``content/disclosure``)."""

    version: str = "1"
    method: Method = "suppression"
    threshold: int = 5
    zeros: Literal["show", "mask"] = "show"
    complement: bool = True
    min_denominator: int = 10
    secondary: bool = True
    primary_display: str = "<5"
    secondary_display: str = ".."
    value_display: str = "–"
    cell_key_max_noise: int = 2
    cell_key_bits: int = 16

    def __post_init__(self) -> None:
        if self.method not in ("suppression", "cell_key"):
            raise ValueError(f"unknown disclosure method {self.method!r}")
        if self.threshold < 1:
            raise ValueError("threshold must be >= 1 (1 = no small-count masking)")
        if self.zeros not in ("show", "mask"):
            raise ValueError("zeros must be 'show' or 'mask'")
        if self.min_denominator < 0 or self.cell_key_max_noise < 0:
            raise ValueError("min_denominator and cell_key.max_noise must be >= 0")

    @property
    def small_range(self) -> str:
        """``1–4`` for threshold 5 (``0–4`` when zeros are masked)."""
        low = 0 if self.zeros == "mask" else 1
        return f"{low}–{self.threshold - 1}"

    def is_small(self, value: int) -> bool:
        """True if a count must be masked by the primary rule."""
        if value == 0:
            return self.zeros == "mask"
        return 0 < value < self.threshold

    def describe(self, locale: str = "sv") -> str:
        """One paragraph telling readers which rules were applied."""
        small = self.small_range
        if locale == "sv":
            parts = [f"Regler för röjandekontroll version {self.version}."]
            if self.method == "cell_key":
                parts.append(
                    "Metod: cellnyckelmetoden – varje antal har fått ett litet, "
                    f"deterministiskt brus (högst ±{self.cell_key_max_noise})."
                )
            if self.threshold > 1:
                parts.append(f"Antal {small} visas som ”{self.primary_display}”.")
            if self.zeros == "show":
                parts.append("Nollor visas som 0.")
            if self.complement:
                parts.append(f"En täljare döljs också när nämnare minus täljare är {small}.")
            if self.method == "suppression" and self.secondary:
                parts.append(
                    "Sekundär undertryckning: celler som annars kunde räknas fram ur "
                    f"summor visas som ”{self.secondary_display}”."
                )
            parts.append(
                f"Andelar och medelvärden visas inte när nämnaren är under "
                f"{self.min_denominator} (”{self.value_display}”)."
            )
            return " ".join(parts)
        parts = [f"Disclosure-control rules version {self.version}."]
        if self.method == "cell_key":
            parts.append(
                "Method: cell-key – every count carries small deterministic noise "
                f"(at most ±{self.cell_key_max_noise})."
            )
        if self.threshold > 1:
            parts.append(f"Counts {small} are shown as “{self.primary_display}”.")
        if self.zeros == "show":
            parts.append("Zeros are shown as 0.")
        if self.complement:
            parts.append(f"A numerator is also masked when denominator minus numerator is {small}.")
        if self.method == "suppression" and self.secondary:
            parts.append(
                "Secondary suppression: cells that could otherwise be recovered from "
                f"totals are shown as “{self.secondary_display}”."
            )
        parts.append(
            f"Percentages and means are not shown for denominators below "
            f"{self.min_denominator} (“{self.value_display}”)."
        )
        return " ".join(parts)


def rules_from_mapping(data: Mapping[str, Any]) -> DisclosureRules:
    """Build rules from a parsed ``rules-v<N>.yaml`` mapping."""
    display = data.get("display") or {}
    cell_key = data.get("cell_key") or {}
    threshold = int(data.get("threshold", 5))
    primary = display.get("primary", "<5")
    if primary == "<5" and threshold != 5:
        primary = f"<{threshold}"
    return DisclosureRules(
        version=str(data.get("version", "1")),
        method=data.get("method", "suppression"),
        threshold=threshold,
        zeros=data.get("zeros", "show"),
        complement=bool(data.get("complement", True)),
        min_denominator=int(data.get("min_denominator", 10)),
        secondary=bool(data.get("secondary", True)),
        primary_display=str(primary),
        secondary_display=str(display.get("secondary", "..")),
        value_display=str(display.get("value", "–")),
        cell_key_max_noise=int(cell_key.get("max_noise", 2)),
        cell_key_bits=int(cell_key.get("key_bits", 16)),
    )


def available_versions() -> list[str]:
    """Rules versions shipped in ``content/disclosure``."""
    names = list_content("disclosure")
    return sorted(
        (n.rsplit("rules-v", 1)[1].removesuffix(".yaml") for n in names if "/rules-v" in n),
        key=lambda v: (len(v), v),
    )


def load_rules(version: str | None = None) -> DisclosureRules:
    """The shipped rules of ``version`` (default: ``current`` in ``disclosure/index.yaml``)."""
    if version is None:
        version = str(load_yaml("disclosure/index.yaml")["current"])
    if version not in available_versions():
        raise KeyError(f"no disclosure rules version {version!r}")
    return rules_from_mapping(load_yaml(f"disclosure/rules-v{version}.yaml"))


# --------------------------------------------------------------------------- cell key


def cell_key_noise(value: int, key: int, rules: DisclosureRules) -> int:
    """Deterministic noise for a count ``value`` with cell key ``key`` (0 ≤ key < 2**bits).

    The cell key is the sum, modulo ``2**bits``, of per-record keys (random numbers
    fixed once per person), so the same persons always give the same noise and tables
    cannot be differenced. The perturbation table is a discretised triangular
    distribution on ``-D..D`` (``D = cell_key.max_noise``) restricted so zeros stay
    zero and non-zero counts never become zero; ``key / 2**bits`` picks from its CDF.
    """
    if value == 0 or rules.cell_key_max_noise == 0:
        return 0
    d = rules.cell_key_max_noise
    support = [n for n in range(-d, d + 1) if value + n >= 1]
    weights = [d + 1 - abs(n) for n in support]
    total = sum(weights)
    u = (key % (1 << rules.cell_key_bits)) / (1 << rules.cell_key_bits)
    acc = 0.0
    for n, w in zip(support, weights, strict=True):
        acc += w / total
        if u < acc:
            return n
    return support[-1]


def record_key(person_key: str, bits: int = 16) -> int:
    """A person's record key: a uniform number fixed by the (already keyed) person_key."""
    digest = hashlib.sha256(person_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % (1 << bits)


def cell_key_of(person_keys: Iterable[str], bits: int = 16) -> int:
    """Cell key of a cell = sum of its records' keys modulo ``2**bits``."""
    return sum(record_key(p, bits) for p in person_keys) % (1 << bits)


def coordinate_key(*parts: Any, bits: int = 16) -> int:
    """Fallback cell key from the cell's coordinates, for aggregates without record keys."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (1 << bits)


# --------------------------------------------------------------------------- 2-D tables

Cell = tuple[int, int]


@dataclass
class ProtectedTable:
    """Result of :func:`suppress_table` on an extended grid ``(R+1) × (C+1)``.

    Row ``R`` holds the column totals, column ``C`` the row totals, ``[R][C]`` the grand
    total. ``published[i][j]`` is False for totals that are not published at all.
    """

    values: list[list[int | None]]
    published: list[list[bool]]
    suppressed: list[list[bool]]
    reasons: list[list[str | None]]
    display_ext: list[list[str | None]]
    withheld: bool = False

    @property
    def n_rows(self) -> int:
        return len(self.values) - 1

    @property
    def n_cols(self) -> int:
        return len(self.values[0]) - 1 if self.values else 0

    @property
    def display(self) -> list[list[str]]:
        """Display strings of the interior cells."""
        return [[str(v) for v in row[:-1]] for row in self.display_ext[:-1]]

    @property
    def cell_reasons(self) -> list[list[str | None]]:
        """Suppression reasons of the interior cells (None = published)."""
        return [row[:-1] for row in self.reasons[:-1]]

    @property
    def row_totals_display(self) -> list[str | None]:
        return [row[-1] for row in self.display_ext[:-1]]

    @property
    def col_totals_display(self) -> list[str | None]:
        return list(self.display_ext[-1][:-1])

    @property
    def grand_total_display(self) -> str | None:
        return self.display_ext[-1][-1]


def _bounds(
    value: int, reason: str | None, rules: DisclosureRules, override: tuple[float, float] | None
) -> tuple[float, float]:
    """What an attacker knows about a masked cell, given the published rules and marks."""
    if override is not None:
        return override
    if reason is not None and reason.startswith("primary: count"):
        low = 0 if rules.zeros == "mask" else 1
        return (low, rules.threshold - 1)
    if reason is not None and reason.startswith(WITHHELD):
        return (0, INF)
    if reason is not None and reason.startswith("secondary"):
        # secondary cells are never zero and never small (those are primary)
        return (max(rules.threshold, 1 if rules.zeros == "show" else 0), INF)
    return (0, INF)


def unprotected_cells(
    values: Sequence[Sequence[int | None]],
    published: Sequence[Sequence[bool]],
    suppressed: Sequence[Sequence[bool]],
    bounds: Mapping[Cell, tuple[float, float]],
    only: Iterable[Cell] | None = None,
) -> list[Cell]:
    """Masked cells of the extended grid whose value is uniquely determined (exact audit).

    ``values`` are the true values; unpublished totals are free (no equation). A masked
    cell is protected iff an alternating cycle of masked/free cells through it admits
    a ±1 move that keeps every masked cell inside its ``bounds``. ``only`` restricts
    the check to some cells.
    """
    n_r, n_c = len(values) - 1, len(values[0]) - 1
    arcs_rc: dict[int, list[tuple[int, Cell]]] = {}
    arcs_cr: dict[int, list[tuple[int, Cell]]] = {}
    edges: list[Cell] = []
    for i in range(n_r + 1):
        for j in range(n_c + 1):
            free = not published[i][j]
            if not (free or suppressed[i][j]):
                continue
            edges.append((i, j))
            sigma = -1 if (i == n_r) != (j == n_c) else 1
            if free:
                up = down = True
            else:
                v = values[i][j]
                assert v is not None
                lo, hi = bounds[(i, j)]
                x_up, x_down = v + 1 <= hi, v - 1 >= lo
                up, down = (x_up, x_down) if sigma == 1 else (x_down, x_up)
            if up:  # y += 1: arc row i -> column j
                arcs_rc.setdefault(i, []).append((j, (i, j)))
            if down:  # y -= 1: arc column j -> row i
                arcs_cr.setdefault(j, []).append((i, (i, j)))

    def reach(start: tuple[str, int], goal: tuple[str, int], skip: Cell) -> bool:
        seen = {start}
        queue = deque([start])
        while queue:
            kind, k = queue.popleft()
            nxt = arcs_rc.get(k, []) if kind == "r" else arcs_cr.get(k, [])
            for other, edge in nxt:
                if edge == skip:
                    continue
                node = ("c", other) if kind == "r" else ("r", other)
                if node == goal:
                    return True
                if node not in seen:
                    seen.add(node)
                    queue.append(node)
        return False

    out: list[Cell] = []
    edge_set = set(edges)
    check = edges if only is None else [c for c in only if c in edge_set]
    for i, j in check:
        if not published[i][j]:
            continue
        up = any(e == (i, j) for _, e in arcs_rc.get(i, []))
        down = any(e == (i, j) for _, e in arcs_cr.get(j, []))
        ok = (up and reach(("c", j), ("r", i), (i, j))) or (
            down and reach(("r", i), ("c", j), (i, j))
        )
        if not ok:
            out.append((i, j))
    return out


def suppress_table(
    values: Sequence[Sequence[int]],
    row_totals: Sequence[int] | None = None,
    col_totals: Sequence[int] | None = None,
    grand_total: int | None = None,
    rules: DisclosureRules | None = None,
    initial: Mapping[Cell, str] | None = None,
    bounds: Mapping[Cell, tuple[float, float]] | None = None,
    labels: tuple[str, str] = ("row total", "column total"),
    primary: bool = True,
) -> ProtectedTable:
    """Primary and secondary suppression of a 2-D count table with optional margins.

    ``values`` is R × C; ``row_totals``/``col_totals``/``grand_total`` are published
    margins (None = not published: one person may count in several cells). Cell
    coordinates of margins in ``initial``/``bounds`` use the extended grid (row R,
    column C). ``initial`` holds cells already masked with their reason (e.g. a shared
    total), ``bounds`` overrides what an attacker knows about a masked cell;
    ``primary=False`` skips the primary rule (cells come pre-marked in ``initial``).
    """
    rules = rules or load_rules()
    n_r = len(values)
    n_c = len(values[0]) if n_r else 0
    ext: list[list[int | None]] = [[int(v) for v in row] + [None] for row in values]
    ext.append([None] * (n_c + 1))
    published = [[True] * n_c + [False] for _ in range(n_r)] + [[False] * (n_c + 1)]
    if row_totals is not None:
        for i, v in enumerate(row_totals):
            ext[i][n_c], published[i][n_c] = int(v), True
    if col_totals is not None:
        for j, v in enumerate(col_totals):
            ext[n_r][j], published[n_r][j] = int(v), True
    if grand_total is not None:
        ext[n_r][n_c], published[n_r][n_c] = int(grand_total), True

    reasons: list[list[str | None]] = [[None] * (n_c + 1) for _ in range(n_r + 1)]
    suppressed = [[False] * (n_c + 1) for _ in range(n_r + 1)]
    for (i, j), why in (initial or {}).items():
        if published[i][j]:
            suppressed[i][j], reasons[i][j] = True, why
    primary_reason = f"primary: count {rules.small_range}"
    if primary and (rules.threshold > 1 or rules.zeros == "mask"):
        for i in range(n_r + 1):
            for j in range(n_c + 1):
                v = ext[i][j]
                if published[i][j] and not suppressed[i][j] and v is not None and rules.is_small(v):
                    suppressed[i][j], reasons[i][j] = True, primary_reason

    def cell_bounds() -> dict[Cell, tuple[float, float]]:
        out = {}
        for i in range(n_r + 1):
            for j in range(n_c + 1):
                if suppressed[i][j] and published[i][j]:
                    v = ext[i][j]
                    assert v is not None
                    out[(i, j)] = _bounds(v, reasons[i][j], rules, (bounds or {}).get((i, j)))
        return out

    withheld = False
    if rules.secondary and rules.method == "suppression":
        while True:
            open_cells = unprotected_cells(ext, published, suppressed, cell_bounds())
            if not open_cells:
                break
            stuck = False
            for target in open_cells:
                if not unprotected_cells(ext, published, suppressed, cell_bounds(), [target]):
                    continue
                if not _protect_one(
                    target, ext, published, suppressed, reasons, labels, cell_bounds
                ):
                    stuck = True
                    break
            if stuck:
                # Everything is masked and the masks themselves still pin a value down
                # (e.g. four cells "<5" under a total "<5" must all be 1): withhold the
                # whole table; withheld cells tell a reader nothing about their size.
                withheld = True
                for i in range(n_r + 1):
                    for j in range(n_c + 1):
                        if published[i][j]:
                            suppressed[i][j], reasons[i][j] = True, WITHHELD
                break

    display: list[list[str | None]] = []
    for i in range(n_r + 1):
        row: list[str | None] = []
        for j in range(n_c + 1):
            if not published[i][j]:
                row.append(None)
            elif suppressed[i][j]:
                why = reasons[i][j] or ""
                row.append(
                    rules.secondary_display
                    if why.startswith(("secondary", WITHHELD))
                    else rules.primary_display
                )
            else:
                row.append(str(ext[i][j]))
        display.append(row)
    return ProtectedTable(ext, published, suppressed, reasons, display, withheld)


def _protect_one(
    target: Cell,
    ext: list[list[int | None]],
    published: list[list[bool]],
    suppressed: list[list[bool]],
    reasons: list[list[str | None]],
    labels: tuple[str, str],
    cell_bounds: Any,
) -> bool:
    """Mask the smallest cell(s) that protect ``target``; False if nothing is left to mask."""
    ti, tj = target
    n_r, n_c = len(ext) - 1, len(ext[0]) - 1

    def candidates(cells: Iterable[Cell]) -> list[Cell]:
        found = [
            (i, j)
            for i, j in cells
            if published[i][j] and not suppressed[i][j] and (ext[i][j] or 0) > 0
        ]
        # smallest first; interior cells before totals; stable by position
        return sorted(found, key=lambda c: (ext[c[0]][c[1]], c[0] == n_r or c[1] == n_c, c))

    in_row = [(ti, j) for j in range(n_c + 1) if j != tj]
    in_col = [(i, tj) for i in range(n_r + 1) if i != ti]
    local = candidates(in_row + in_col)
    pool = local or candidates((i, j) for i in range(n_r + 1) for j in range(n_c + 1))
    if not pool:
        return False

    def reason_for(c: Cell) -> str:
        if c[0] == ti:
            return f"secondary: recoverable from {labels[0]}"
        if c[1] == tj:
            return f"secondary: recoverable from {labels[1]}"
        return "secondary: recoverable from totals"

    for cand in pool:
        i, j = cand
        suppressed[i][j], reasons[i][j] = True, reason_for(cand)
        if not unprotected_cells(ext, published, suppressed, cell_bounds(), [target]):
            return True
        suppressed[i][j], reasons[i][j] = False, None
    i, j = pool[0]
    suppressed[i][j], reasons[i][j] = True, reason_for(pool[0])
    return True


# --------------------------------------------------------------------------- indicator results


@dataclass
class _Row:
    index: int
    numerator: int | None
    denominator: int | None
    reasons: dict[str, list[str]] = field(default_factory=dict)

    def mask(self, column: str, reason: str) -> None:
        self.reasons.setdefault(column, [])
        if reason not in self.reasons[column]:
            self.reasons[column].append(reason)


def _as_int(v: Any) -> int | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return int(v)


def protection_metadata(rules: DisclosureRules, suppressed_cells: int) -> dict[bytes, bytes]:
    """Schema metadata stamped on every protected table (checked before rendering)."""
    return {
        PROTECTED_KEY: rules.version.encode(),
        b"disclosure_method": rules.method.encode(),
        b"disclosure_rules_sv": rules.describe("sv").encode(),
        b"disclosure_rules_en": rules.describe("en").encode(),
        b"suppressed_cells": str(suppressed_cells).encode(),
    }


def describe_applied(table: pa.Table, locale: str = "sv") -> str:
    """The description of the rules that were applied to a protected ``table``."""
    meta = table.schema.metadata or {}
    key = f"disclosure_rules_{locale}".encode()
    return meta.get(key, meta.get(b"disclosure_rules_en", b"")).decode()


def is_protected(table: pa.Table) -> bool:
    """True if ``table`` came out of :func:`apply_disclosure` (or a protect function)."""
    return PROTECTED_KEY in (table.schema.metadata or {})


def apply_disclosure(results: pa.Table, rules: DisclosureRules | None = None) -> pa.Table:
    """Disclosure control for indicator results (long format).

    Input columns: ``indicator_id, period, breakdown, level, numerator, denominator,
    value, ci_low, ci_high``; rows with ``breakdown == "total"`` are the margins of the
    other rows of the same indicator, period and breakdown dimension. Returns the same
    columns with masked values nulled, plus ``suppressed`` (bool),
    ``suppression_reason`` (str, null when nothing was masked) and the display strings
    ``numerator_display, denominator_display, value_display, ci_low_display,
    ci_high_display``. Extra input columns (e.g. ``cell_key``) are passed through
    unchanged except ``cell_key``, which is consumed.
    """
    rules = rules or load_rules()
    missing = [c for c in RESULT_COLUMNS if c not in results.column_names]
    if missing:
        raise ValueError(f"indicator results lack columns: {missing}")
    data = results.to_pylist()
    rows = [_Row(k, _as_int(r["numerator"]), _as_int(r["denominator"])) for k, r in enumerate(data)]
    values: list[dict[str, float | None]] = [
        {c: (None if r[c] is None else float(r[c])) for c in ("value", "ci_low", "ci_high")}
        for r in data
    ]

    if rules.method == "cell_key":
        _apply_cell_key(data, rows, values, rules)

    small = f"primary: count {rules.small_range}"
    for row in rows:
        for col in ("numerator", "denominator"):
            v = getattr(row, col)
            if v is not None and rules.is_small(v) and rules.threshold > 1:
                row.mask(col, small)
        if (
            rules.complement
            and rules.threshold > 1
            and row.numerator is not None
            and row.denominator is not None
            and "numerator" not in row.reasons
            and "denominator" not in row.reasons
            and 0 < row.denominator - row.numerator < rules.threshold
        ):
            row.mask(
                "numerator", f"primary: complement (denominator − numerator) {rules.small_range}"
            )

    if rules.method == "suppression" and rules.secondary:
        _secondary_long(data, rows, rules)

    for row, vals in zip(rows, values, strict=True):
        if row.denominator is not None and row.denominator < rules.min_denominator:
            row.mask("value", f"denominator below {rules.min_denominator}")
        if "numerator" in row.reasons:
            row.mask("value", "derived: numerator masked")
        if "denominator" in row.reasons:
            row.mask("value", "derived: denominator masked")
        if "value" in row.reasons:
            for c in ("value", "ci_low", "ci_high"):
                vals[c] = None

    return _assemble(results, data, rows, values, rules)


def _apply_cell_key(
    data: list[dict[str, Any]],
    rows: list[_Row],
    values: list[dict[str, float | None]],
    rules: DisclosureRules,
) -> None:
    """Perturb numerators and denominators; rescale value and interval accordingly."""
    for r, row, vals in zip(data, rows, values, strict=True):
        coords = (r["indicator_id"], r["period"], r["breakdown"], r["level"])
        base = r.get("cell_key")
        new: dict[str, int | None] = {}
        for col in ("numerator", "denominator"):
            v = getattr(row, col)
            if v is None:
                new[col] = None
                continue
            key = (
                (int(base) + (0 if col == "numerator" else 7919)) % (1 << rules.cell_key_bits)
                if base is not None
                else coordinate_key(*coords, col, bits=rules.cell_key_bits)
            )
            new[col] = v + cell_key_noise(v, key, rules)
        num, den = new["numerator"], new["denominator"]
        if num is not None and den is not None and num > den:
            num = den
        if (
            row.numerator is not None
            and row.denominator
            and num is not None
            and den
            and row.numerator > 0
            and vals["value"] is not None
        ):
            ratio = (num / den) / (row.numerator / row.denominator)
            for c in ("value", "ci_low", "ci_high"):
                if vals[c] is not None:
                    vals[c] = vals[c] * ratio
        row.numerator, row.denominator = num, den


def _secondary_long(data: list[dict[str, Any]], rows: list[_Row], rules: DisclosureRules) -> None:
    """Secondary suppression within each indicator/period: levels of a dimension vs total."""
    groups: dict[tuple[Any, Any], list[int]] = {}
    for k, r in enumerate(data):
        groups.setdefault((r["indicator_id"], r["period"]), []).append(k)
    for members in groups.values():
        totals = [k for k in members if data[k]["breakdown"] == "total"]
        dims: dict[Any, list[int]] = {}
        for k in members:
            if data[k]["breakdown"] != "total":
                dims.setdefault(data[k]["breakdown"], []).append(k)
        total = totals[0] if totals else None
        for col in ("numerator", "denominator"):
            changed = True
            while changed:
                changed = False
                for levels in dims.values():
                    changed |= _protect_dimension(rows, levels, total, col, rules)


def _protect_dimension(
    rows: list[_Row], levels: list[int], total: int | None, col: str, rules: DisclosureRules
) -> bool:
    """One breakdown dimension as an n × 1 table with the total as column margin."""
    members = [k for k in levels if getattr(rows[k], col) is not None]
    if not members:
        return False
    values = [[getattr(rows[k], col)] for k in members]
    total_value = getattr(rows[total], col) if total is not None else None
    col_totals = [total_value] if total_value is not None else None
    n = len(members)
    initial: dict[Cell, str] = {}
    bounds: dict[Cell, tuple[float, float]] = {}
    cells = [*members, total] if col_totals is not None else list(members)
    for pos, k in enumerate(cells):
        if k is None:
            continue
        cell = (pos, 0) if pos < n else (n, 0)
        reasons = rows[k].reasons.get(col)
        if reasons:
            initial[cell] = reasons[0]
            if reasons[0].startswith("primary: complement"):
                den = rows[k].denominator or 0
                bounds[cell] = (max(0, den - rules.threshold + 1), den - 1)
    protected = suppress_table(
        values,
        col_totals=col_totals,
        rules=rules,
        initial=initial,
        bounds=bounds,
        labels=("row total", "total"),
        primary=False,  # primary marks come in `initial`
    )
    changed = False
    for pos, k in enumerate(cells):
        if k is None:
            continue
        cell = (pos, 0) if pos < n else (n, 0)
        if protected.withheld:
            if rows[k].reasons.get(col) != [WITHHELD]:
                rows[k].reasons[col] = [WITHHELD]
                changed = True
        elif protected.suppressed[cell[0]][cell[1]] and not rows[k].reasons.get(col):
            why = protected.reasons[cell[0]][cell[1]] or "secondary"
            rows[k].mask(
                col, why.replace("recoverable from total", f"recoverable from {col} total")
            )
            changed = True
    return changed


def _fmt_value(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}"


def _assemble(
    results: pa.Table,
    data: list[dict[str, Any]],
    rows: list[_Row],
    values: list[dict[str, float | None]],
    rules: DisclosureRules,
) -> pa.Table:
    out: dict[str, list[Any]] = {c: [] for c in RESULT_COLUMNS}
    out.update({"suppressed": [], "suppression_reason": []})
    out.update({c: [] for c in DISPLAY_COLUMNS})
    for r, row, vals in zip(data, rows, values, strict=True):
        for c in ("indicator_id", "period", "breakdown", "level"):
            out[c].append(r[c])
        for col in ("numerator", "denominator"):
            v = getattr(row, col)
            why = row.reasons.get(col)
            out[col].append(None if why else v)
            if why:
                disp = (
                    rules.secondary_display
                    if why[0].startswith(("secondary", WITHHELD))
                    else rules.primary_display
                )
            else:
                disp = "" if v is None else str(v)
            out[f"{col}_display"].append(disp)
        for c in ("value", "ci_low", "ci_high"):
            out[c].append(vals[c])
            if "value" in row.reasons and r[c] is not None:
                out[f"{c}_display"].append(rules.value_display)
            else:
                out[f"{c}_display"].append("" if vals[c] is None else _fmt_value(vals[c]))
        reasons = [f"{why} ({col})" for col, whys in row.reasons.items() for why in whys]
        out["suppressed"].append(bool(reasons))
        out["suppression_reason"].append("; ".join(reasons) if reasons else None)

    schema_fields = []
    for c in RESULT_COLUMNS:
        typ = results.schema.field(c).type
        if c in ("numerator", "denominator"):
            typ = pa.int64()
        elif c in ("value", "ci_low", "ci_high"):
            typ = pa.float64()
        schema_fields.append(pa.field(c, typ))
    schema_fields += [
        pa.field("suppressed", pa.bool_()),
        pa.field("suppression_reason", pa.string()),
    ]
    schema_fields += [pa.field(c, pa.string()) for c in DISPLAY_COLUMNS]
    extra = [c for c in results.column_names if c not in RESULT_COLUMNS and c != "cell_key"]
    schema = pa.schema(schema_fields)
    table = pa.Table.from_pydict(out, schema=schema)
    for c in extra:
        table = table.append_column(c, results[c])
    n_masked = sum(1 for s in out["suppressed"] if s)
    return table.replace_schema_metadata(protection_metadata(rules, n_masked))
