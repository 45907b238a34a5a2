"""The release as one system of cells and linear relations (what an attacker knows).

Every count a user can obtain for one data state is a *cell*: the numerator or
denominator of an indicator result row (every indicator × period × breakdown × level)
and every count of the regional table. *Relations* are the linear facts a reader can
use to combine them:

* a breakdown dimension against the total of the same indicator, period and column
  (``Σ levels = total`` when that holds in the data, otherwise ``Σ levels ≥ total`` and
  ``level ≤ total``: one person may count at several units or in several groups);
* hierarchies: units within organisations, principal types and care levels, and
  organisations within principal types (same equality-or-inequality rule);
* ``numerator ≤ denominator`` within a row;
* indicators sharing a population with disjoint numerators (the LARO end reasons):
  ``Σ numerators ≤ denominator`` (equality when it holds);
* the regional table: ``code ≤ persons`` per row.

Relations are only added when they hold in the true data, so the system is always
feasible. *Links* join cells that are the same quantity published twice (the shared
denominator of several indicators, a count equal to another indicator's denominator,
a regional cell and the catalogue's ``dx_group`` cell): linked cells are masked
together, and an attacker sees one unknown when their values are equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from utfall.analytics.disclosure.reasons import Reason
from utfall.analytics.disclosure.rules import DisclosureRules

CellKey = tuple[str, str, str, str, str]  # (series, column, period, breakdown, level)
HIERARCHY: tuple[str, ...] = ("organisation", "principal_type", "care_level")
REGIONAL_LINKS: Mapping[str, tuple[str, str]] = {
    "AU119": ("kva_au119", "numerator"),
    "AU124": ("kva_au124", "numerator"),
    "DU119": ("kva_du119", "numerator"),
    "persons": ("kva_au119", "denominator"),
}


@dataclass(frozen=True)
class Relation:
    """``Σ coef · cell (sense) rhs`` with ``sense`` ``=`` or ``<=``; ``label`` names it."""

    terms: tuple[tuple[int, int], ...]
    sense: Literal["=", "<="]
    rhs: int
    label: str


@dataclass
class ReleaseModel:
    """Cells, their true values and masks, relations and links of one release."""

    rules: DisclosureRules
    keys: list[CellKey] = field(default_factory=list)
    values: list[int] = field(default_factory=list)
    reasons: list[Reason | None] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)  # union-find over links
    denominator_of: dict[int, int] = field(default_factory=dict)  # numerator cell → den
    index: dict[CellKey, int] = field(default_factory=dict)
    _classes: dict[int, list[int]] | None = field(default=None, repr=False)
    _variables: list[int] | None = field(default=None, repr=False)

    def add_cell(self, key: CellKey, value: int) -> int:
        k = len(self.keys)
        self.keys.append(key)
        self.values.append(int(value))
        self.reasons.append(None)
        self.parent.append(k)
        self.index[key] = k
        self._classes = self._variables = None
        return k

    # -- links -------------------------------------------------------------------------
    def find(self, k: int) -> int:
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def link(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)
            self._classes = self._variables = None

    def classes(self) -> dict[int, list[int]]:
        """Link classes (root → cells); only classes of more than one cell."""
        if self._classes is None:
            out: dict[int, list[int]] = {}
            for k in range(len(self.keys)):
                out.setdefault(self.find(k), []).append(k)
            self._classes = {r: m for r, m in out.items() if len(m) > 1}
        return self._classes

    def variables(self) -> list[int]:
        """Attacker variable of each cell: the link class if its values agree, else itself."""
        if self._variables is None:
            var = list(range(len(self.keys)))
            for root, members in self.classes().items():
                if len({self.values[m] for m in members}) == 1:
                    for m in members:
                        var[m] = root
            self._variables = var
        return self._variables

    # -- relations ---------------------------------------------------------------------
    def add_relation(self, terms: Sequence[tuple[int, int]], sense: Literal["=", "<="],
                     rhs: int, label: str) -> None:
        lhs = sum(c * self.values[k] for k, c in terms)
        ok = lhs == rhs if sense == "=" else lhs <= rhs
        if ok and terms:
            self.relations.append(Relation(tuple(terms), sense, rhs, label))

    def add_margin(self, parent: int, children: Sequence[int], label: str) -> None:
        """``Σ children = parent`` if that holds, else the inequalities that do."""
        if not children:
            return
        total = sum(self.values[c] for c in children)
        terms = [(c, 1) for c in children] + [(parent, -1)]
        if total == self.values[parent]:
            self.add_relation(terms, "=", 0, label)
            return
        if total > self.values[parent]:
            self.add_relation([(parent, 1)] + [(c, -1) for c in children], "<=", 0, label)
        else:
            self.add_relation(terms, "<=", 0, label)
        if len(children) > 1:
            for c in children:
                self.add_relation([(c, 1), (parent, -1)], "<=", 0, label)


def build_model(
    rows: Sequence[Mapping[str, Any]],
    rules: DisclosureRules,
    *,
    units: Mapping[str, Mapping[str, str | None]] | None = None,
    families: Iterable[Sequence[str]] = (),
    regional: Sequence[Mapping[str, Any]] = (),
) -> tuple[ReleaseModel, list[dict[str, int]]]:
    """The model of a release; also, per result row, ``column → cell``."""
    model = ReleaseModel(rules)
    row_cells: list[dict[str, int]] = []
    series: dict[tuple[str, str, str], dict[tuple[str, str], int]] = {}
    for r in rows:
        cells: dict[str, int] = {}
        for col in ("numerator", "denominator"):
            v = r.get(col)
            if v is None:
                continue
            key = (str(r["indicator_id"]), col, str(r["period"]), str(r["breakdown"]),
                   str(r["level"] or ""))
            if key in model.index:  # duplicate row: the same cell
                cells[col] = model.index[key]
                continue
            k = model.add_cell(key, int(v))
            cells[col] = k
            series.setdefault(key[:3], {})[(key[3], key[4])] = k
        if "numerator" in cells and "denominator" in cells:
            model.denominator_of[cells["numerator"]] = cells["denominator"]
            model.add_relation([(cells["numerator"], 1), (cells["denominator"], -1)], "<=", 0,
                               "numerator ≤ denominator")
        row_cells.append(cells)

    for (_ind, _col, _period), by_level in series.items():
        total = by_level.get(("total", ""))
        by_dim: dict[str, list[tuple[str, int]]] = {}
        for (dim, level), k in by_level.items():
            if dim != "total":
                by_dim.setdefault(dim, []).append((level, k))
        if total is not None:
            for dim, members in by_dim.items():
                model.add_margin(total, [k for _, k in members], f"{dim} total")
        if units:
            _add_hierarchy(model, by_level, by_dim, units)

    for family in families:
        _add_family(model, series, list(family))

    for r in regional:
        period, group = str(r["year"]), str(r["dx_group"])
        made = {c: model.add_cell(("regional", c, period, "dx_group", group), int(r[c]))
                for c in REGIONAL_LINKS if r.get(c) is not None}
        for code, k in made.items():
            if code != "persons" and "persons" in made:
                model.denominator_of[k] = made["persons"]
                model.add_relation([(k, 1), (made["persons"], -1)], "<=", 0,
                                   "regional table row")
            ind, col = REGIONAL_LINKS[code]
            other = model.index.get((ind, col, period, "dx_group", group))
            if other is not None:
                model.link(k, other)

    _link_equal_series(model, series)
    return model, row_cells


def _add_hierarchy(model: ReleaseModel, cells: Mapping[tuple[str, str], int],
                   by_dim: Mapping[str, list[tuple[str, int]]],
                   units: Mapping[str, Mapping[str, str | None]]) -> None:
    """Units within organisations, principal types, care levels; organisations within types."""
    unit_cells = by_dim.get("unit_id", [])
    for attr in HIERARCHY:
        groups: dict[str, list[int]] = {}
        for level, k in unit_cells:
            parent = (units.get(level) or {}).get(attr)
            groups.setdefault(parent or "unknown", []).append(k)
        for parent_level, children in groups.items():
            p = cells.get((attr, parent_level))
            if p is not None:
                model.add_margin(p, children, f"unit_id within {attr}")
    org_type: dict[str, set[str]] = {}
    for u in units.values():
        org_type.setdefault(u.get("organisation") or "unknown", set()).add(
            u.get("principal_type") or "unknown")
    groups = {}
    for level, k in by_dim.get("organisation", []):
        types = org_type.get(level, set())
        if len(types) == 1:
            groups.setdefault(next(iter(types)), []).append(k)
    for parent_level, children in groups.items():
        p = cells.get(("principal_type", parent_level))
        if p is not None:
            model.add_margin(p, children, "organisation within principal_type")


def _add_family(model: ReleaseModel,
                series: Mapping[tuple[str, str, str], Mapping[tuple[str, str], int]],
                family: list[str]) -> None:
    """Disjoint numerators of indicators sharing one population: Σ numerators ≤ denominator."""
    periods = {p for (ind, col, p) in series if ind in family and col == "numerator"}
    for period in periods:
        nums = [series.get((ind, "numerator", period), {}) for ind in family]
        den = series.get((family[0], "denominator", period), {})
        for coord, d in den.items():
            members = [n[coord] for n in nums if coord in n]
            if len(members) == len(family):
                model.add_margin(d, members, "indicators sharing a population")


def _link_equal_series(model: ReleaseModel,
                       series: Mapping[tuple[str, str, str], Mapping[tuple[str, str], int]]
                       ) -> None:
    """Link cells of series that are the same quantity (equal on every common cell).

    Two columns of the same period whose values agree on every common cell, at least
    two of them *non-zero* (including the total) — e.g. the shared
    denominator of the LARO end-reason indicators, or ``persons_substance_dx`` and the
    KVÅ denominators — are treated as one quantity: masked together, and one unknown for
    the attacker. Zeros agree by coincidence all the time (every all-zero numerator
    series of a period agrees with every other), and a false identity is knowledge no
    reader has: it pins cells that no amount of withholding can protect (a unit present
    in one series but not in the other is "recovered" as 0). So zero-total series are
    never linked, and agreement must rest on at least two non-zero cells. (Levels one
    series has and the other lacks are zeros the attacker may deduce; a zero is
    publishable, see :func:`~utfall.analytics.disclosure.attacker.harmless`.)
    """
    buckets: dict[tuple[str, int], list[tuple[str, str, str]]] = {}
    for skey, cells in series.items():
        total = cells.get(("total", ""))
        if total is not None and model.values[total] != 0:
            buckets.setdefault((skey[2], model.values[total]), []).append(skey)
    for members in buckets.values():
        for a_i, a in enumerate(members):
            for b in members[a_i + 1:]:
                ca, cb = series[a], series[b]
                common = ca.keys() & cb.keys()
                if sum(1 for c in common if model.values[ca[c]] != 0) < 2:
                    continue
                if all(model.values[ca[c]] == model.values[cb[c]] for c in common):
                    for c in common:
                        model.link(ca[c], cb[c])
