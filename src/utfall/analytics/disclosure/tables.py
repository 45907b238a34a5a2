"""Two-dimensional count tables with margins: exact audit and secondary suppression.

A table with margins is the extended matrix ``[[x, -r], [-c, g]]`` whose rows and
columns sum to zero; two tables that agree on the published cells differ by a
circulation on the masked cells, which decomposes into alternating cycles that each stay
inside the attacker's known bounds. So a masked cell is *not* determined iff some
alternating cycle through it can move by ±1 within the bounds — a reachability question
(:func:`unprotected_cells`). Used for single tables (e.g. tests, ad hoc tables); the
release-wide protection is :mod:`utfall.analytics.disclosure.release`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from utfall.analytics.disclosure.reasons import Reason
from utfall.analytics.disclosure.rules import DisclosureRules, load_rules

INF = math.inf


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
    reasons: list[list[Reason | None]]
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
    def cell_reasons(self) -> list[list[Reason | None]]:
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
    value: int, reason: Reason | None, rules: DisclosureRules,
    override: tuple[float, float] | None,
) -> tuple[float, float]:
    """What an attacker knows about a masked cell, given the published rules and marks."""
    if override is not None:
        return override
    if reason is None:
        return (0, INF)
    return reason.known_bounds(rules)


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
    initial: Mapping[Cell, Reason] | None = None,
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

    reasons: list[list[Reason | None]] = [[None] * (n_c + 1) for _ in range(n_r + 1)]
    suppressed = [[False] * (n_c + 1) for _ in range(n_r + 1)]
    for (i, j), why in (initial or {}).items():
        if published[i][j]:
            suppressed[i][j], reasons[i][j] = True, why
    primary_reason = Reason.primary(rules)
    if primary and (rules.threshold > 1 or rules.zeros == "mask"):
        for i in range(n_r + 1):
            for j in range(n_c + 1):
                value = ext[i][j]
                if (published[i][j] and not suppressed[i][j] and value is not None
                        and rules.is_small(value)):
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
                            suppressed[i][j], reasons[i][j] = True, Reason.withheld()
                break

    display: list[list[str | None]] = []
    for i in range(n_r + 1):
        row: list[str | None] = []
        for j in range(n_c + 1):
            if not published[i][j]:
                row.append(None)
            elif suppressed[i][j]:
                why = reasons[i][j] or Reason.secondary("totals")
                row.append(why.display_text(rules))
            else:
                row.append(str(ext[i][j]))
        display.append(row)
    return ProtectedTable(ext, published, suppressed, reasons, display, withheld)


def _protect_one(
    target: Cell,
    ext: list[list[int | None]],
    published: list[list[bool]],
    suppressed: list[list[bool]],
    reasons: list[list[Reason | None]],
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

    def reason_for(c: Cell) -> Reason:
        if c[0] == ti:
            return Reason.secondary(labels[0])
        if c[1] == tj:
            return Reason.secondary(labels[1])
        return Reason.secondary("totals")

    for cand in pool:
        i, j = cand
        suppressed[i][j], reasons[i][j] = True, reason_for(cand)
        if not unprotected_cells(ext, published, suppressed, cell_bounds(), [target]):
            return True
        suppressed[i][j], reasons[i][j] = False, None
    i, j = pool[0]
    suppressed[i][j], reasons[i][j] = True, reason_for(pool[0])
    return True


