"""The attacker: integer linear programming over everything published (HiGHS via scipy).

For every masked cell the attacker minimises and maximises its value subject to every
relation of the release (:mod:`~utfall.analytics.disclosure.model`), the published
cells as constants, and what the rules tell about masked cells (``<5`` is 1–4, ``..``
is at least 5, a complement cell lies 1–4 below its denominator). A masked cell is
*exposed* when fewer than ``MIN_VALUES`` integer values remain possible — i.e. it is
exactly recoverable (for a ``<5`` cell: narrowed to a single value). Variables are
integers (``scipy.optimize.milp``), which is at least as strong as an LP attacker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import highspy
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from utfall.analytics.disclosure.model import ReleaseModel
from utfall.analytics.disclosure.reasons import Kind

MIN_VALUES = 2  # a masked cell must keep at least this many possible values
BIG = 1e9  # "unbounded" for the solver; intervals reaching it are reported as ∞


@dataclass
class Component:
    """Masked variables linked by relations, with their constraints (one small program).

    The linear program is built once in HiGHS; each question changes only the
    objective, so HiGHS re-solves warm from the previous basis.
    """

    variables: list[int]  # attacker variable ids (model cell ids of class roots)
    truth: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    rows: list[dict[int, int]] = field(default_factory=list)  # position → coefficient
    row_low: list[float] = field(default_factory=list)
    row_high: list[float] = field(default_factory=list)
    _highs: highspy.Highs | None = field(default=None, repr=False)

    def signature(self) -> tuple:
        return (tuple(self.variables), tuple(self.lower), tuple(self.upper),
                tuple((tuple(sorted(r.items())), lo, hi)
                      for r, lo, hi in zip(self.rows, self.row_low, self.row_high,
                                           strict=True)))

    def _model(self) -> highspy.Highs:
        if self._highs is None:
            inf = highspy.kHighsInf
            n = len(self.variables)
            lp = highspy.HighsLp()
            lp.num_col_, lp.num_row_ = n, len(self.rows)
            lp.col_cost_ = np.zeros(n)
            lp.col_lower_ = np.asarray(self.lower, dtype=float)
            lp.col_upper_ = np.asarray(self.upper, dtype=float)
            lp.row_lower_ = np.array([lo if math.isfinite(lo) else -inf for lo in self.row_low])
            lp.row_upper_ = np.array([hi if math.isfinite(hi) else inf for hi in self.row_high])
            starts, index, value = [0], [], []
            for row in self.rows:
                for j, coef in sorted(row.items()):
                    index.append(j)
                    value.append(float(coef))
                starts.append(len(index))
            lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
            lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
            lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
            lp.a_matrix_.value_ = np.array(value, dtype=float)
            h = highspy.Highs()
            h.setOptionValue("output_flag", False)
            h.passModel(lp)
            self._highs = h
        return self._highs

    def lp_optimum(self, c: np.ndarray) -> np.ndarray:
        """An optimal vertex of the LP relaxation for objective ``min c·x``."""
        h = self._model()
        n = len(self.variables)
        h.changeColsCost(n, np.arange(n, dtype=np.int32), np.asarray(c, dtype=float))
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:  # pragma: no cover
            raise RuntimeError(f"attacker model not solved: {h.getModelStatus()}")
        return np.asarray(h.getSolution().col_value)

    def _milp(self, c: np.ndarray) -> np.ndarray:
        a = np.zeros((len(self.rows), len(self.variables)))
        for i, row in enumerate(self.rows):
            for j, coef in row.items():
                a[i, j] = coef
        constraints = [LinearConstraint(a, self.row_low, self.row_high)] if self.rows else []
        res = milp(c, constraints=constraints, integrality=np.ones(len(self.variables)),
                   bounds=Bounds(self.lower, self.upper))
        if res.x is None:  # pragma: no cover - the true values are always feasible
            raise RuntimeError(f"attacker model infeasible: {res.message}")
        return np.asarray(res.x)

    def lp_range(self, position: int) -> tuple[float, float]:
        """The LP interval of one variable (what an LP attacker reaches; ∞ if unbounded)."""
        c = np.zeros(len(self.variables))
        c[position] = 1.0
        lo = float(self.lp_optimum(c)[position])
        c[position] = -1.0
        hi = float(self.lp_optimum(c)[position])
        return (lo, math.inf if hi >= BIG / 2 else hi)

    def pinned(self) -> set[int]:
        """Positions that cannot take any integer value but the true one.

        Every integer solution of the attacker's program is a table consistent with the
        publication; a variable that differs from its true value in one is not pinned.
        All unproven variables are pushed away from their true values at once (LP
        vertices of these relations are almost always integral), then one by one; a
        variable whose LP interval holds a single integer is pinned; the rare rest is
        settled by an integer program.
        """
        n = len(self.variables)
        out = {i for i in range(n) if self.upper[i] - self.lower[i] < 1}
        if not self.rows:
            return out
        proven: set[int] = set()

        def harvest(x: np.ndarray) -> None:
            if np.all(np.abs(x - np.round(x)) < 1e-6):
                proven.update(i for i in range(n) if abs(x[i] - self.truth[i]) >= 0.5)

        direction = np.where(self.truth < self.upper, 1.0, -1.0)
        flipped = False
        while True:
            todo = [i for i in range(n) if i not in proven and i not in out]
            if not todo:
                break
            c = np.zeros(n)
            c[todo] = -direction[todo]
            before = len(proven)
            harvest(self.lp_optimum(c))
            if len(proven) == before:
                if flipped:
                    break
                direction = -direction
                flipped = True
        for i in range(n):
            if i in proven or i in out:
                continue
            lo, hi = self.lp_range(i)
            if _n_values(lo, hi) < 2:
                out.add(i)
                continue
            for sign in (-1.0, 1.0):
                c = np.zeros(n)
                c[i] = sign
                x = self.lp_optimum(c)
                if not np.all(np.abs(x - np.round(x)) < 1e-6):
                    x = self._milp(c)  # a fractional vertex: ask over the integers
                harvest(x)
                if i in proven:
                    break
            else:
                out.add(i)
        return out


def components(model: ReleaseModel) -> list[Component]:
    """Split the masked variables of a release into independent integer programs."""
    var = model.variables()
    rules = model.rules
    masked_vars: dict[int, tuple[float, float]] = {}
    for k, why in enumerate(model.reasons):
        if why is None:
            continue
        lo, hi = why.known_bounds(rules)
        old = masked_vars.get(var[k], (-math.inf, math.inf))
        masked_vars[var[k]] = (max(old[0], lo), min(old[1], hi))
    # relations over masked variables; published cells become constants
    rows: list[tuple[dict[int, int], float, float]] = []
    for rel in model.relations:
        coefs: dict[int, int] = {}
        const = 0
        for k, c in rel.terms:
            if model.reasons[k] is None:
                const += c * model.values[k]
            else:
                coefs[var[k]] = coefs.get(var[k], 0) + c
        coefs = {v: c for v, c in coefs.items() if c}
        if not coefs:
            continue
        rhs = rel.rhs - const
        rows.append((coefs, rhs if rel.sense == "=" else -math.inf, rhs))
    for num, den in model.denominator_of.items():
        why = model.reasons[num]
        if why is None or why.kind is not Kind.COMPLEMENT:
            continue
        coefs = {var[num]: -1}
        const = 0
        if model.reasons[den] is None:
            const = model.values[den]
        else:
            coefs[var[den]] = coefs.get(var[den], 0) + 1
        rows.append((coefs, 1 - const, rules.threshold - 1 - const))

    # union-find over variables through rows
    parent = {v: v for v in masked_vars}

    def find(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for coefs, _, _ in rows:
        vs = list(coefs)
        for other in vs[1:]:
            a, b = find(vs[0]), find(other)
            if a != b:
                parent[b] = a
    groups: dict[int, list[int]] = {}
    for v in sorted(masked_vars):
        groups.setdefault(find(v), []).append(v)
    out: dict[int, Component] = {}
    for root, vs in groups.items():
        out[root] = Component(
            variables=vs,
            truth=np.array([model.values[v] for v in vs], dtype=float),
            lower=np.array([max(masked_vars[v][0], -BIG) for v in vs]),
            upper=np.array([min(masked_vars[v][1], BIG) for v in vs]),
        )
    positions = {root: {v: i for i, v in enumerate(c.variables)} for root, c in out.items()}
    for coefs, lo, hi in rows:
        root = find(next(iter(coefs)))
        comp, pos = out[root], positions[root]
        comp.rows.append({pos[v]: c for v, c in coefs.items()})
        comp.row_low.append(lo)
        comp.row_high.append(hi)
    return list(out.values())


def _n_values(lo: float, hi: float) -> float:
    """How many integers lie in ``[lo, hi]``."""
    if math.isinf(lo) or math.isinf(hi):
        return math.inf
    return math.floor(hi + 1e-6) - math.ceil(lo - 1e-6) + 1


def leaked_variables(model: ReleaseModel) -> set[int]:
    """Masked variables that are also published as a linked cell (read off directly)."""
    var = model.variables()
    published = {var[k] for k, why in enumerate(model.reasons) if why is None}
    return {var[k] for k, why in enumerate(model.reasons) if why is not None} & published


def harmless(model: ReleaseModel, v: int) -> bool:
    """Whether recovering variable ``v`` discloses nothing: a zero, where zeros are shown.

    A cell only masked because it was withheld along with others, whose true value 0 the
    attacker deduces (e.g. a level one linked series has and the other lacks), reveals
    what the rules would publish anyway. Protection still masks more to avoid it
    (:func:`exposed_variables` is strict) and only accepts it when withholding everything
    reachable cannot (the deduction then uses the definitions, not published counts);
    the audit does not count it as recoverable.
    """
    return model.rules.zeros == "show" and model.values[v] == 0


def exposed_variables(model: ReleaseModel, cache: dict | None = None) -> list[int]:
    """Attacker variables left with fewer than ``MIN_VALUES`` possible values."""
    out: list[int] = sorted(leaked_variables(model))
    for comp in components(model):
        sig = comp.signature() if cache is not None else None
        if cache is not None and sig in cache:
            out.extend(cache[sig])
            continue
        bad = [comp.variables[i] for i in sorted(comp.pinned())]
        if cache is not None:
            cache[sig] = bad
        out.extend(bad)
    return out


@dataclass(frozen=True)
class CellInterval:
    """What the attacker can reach for one masked cell."""

    cell: int
    low: float
    high: float
    pinned: bool = False

    @property
    def n_values(self) -> float:
        return _n_values(self.low, self.high)


def intervals(model: ReleaseModel) -> list[CellInterval]:
    """For every masked cell: the LP attacker's interval, and whether it is pinned.

    Intervals are LP bounds (HiGHS); "pinned" (exactly recoverable) is decided over the
    integers, which is at least as strong.
    """
    var = model.variables()
    reach: dict[int, tuple[float, float, bool]] = {}
    for comp in components(model):
        pinned = comp.pinned()
        for i, v in enumerate(comp.variables):
            if comp.rows:
                lo, hi = comp.lp_range(i)
            else:
                lo, hi = comp.lower[i], comp.upper[i]
                hi = math.inf if hi >= BIG / 2 else hi
            reach[v] = (lo, hi, i in pinned and not harmless(model, v))
    for v in leaked_variables(model):
        reach[v] = (model.values[v], model.values[v], True)
    return [CellInterval(k, *reach[var[k]]) for k in range(len(model.keys))
            if model.reasons[k] is not None]
