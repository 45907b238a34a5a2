"""Protection over the whole release, checked by the attacker and by brute force.

* random small releases with a unit ⊂ organisation hierarchy, several breakdowns and
  indicators sharing a population: an independent brute-force search (no code from the
  protection) finds at least two values for every masked cell;
* synthetic regions of several sizes and seeds (small units, rare groups): the
  ``utfall disclosure audit`` attacker finds no exactly recoverable cell, and the masks do
  not depend on which indicators, breakdowns or years were requested.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from utfall.analytics.disclosure import (
    DisclosureRules,
    Kind,
    apply_disclosure,
    load_rules,
    protect_release,
)
from utfall.analytics.disclosure.audit import audit_release
from utfall.analytics.schema import RESULT_SCHEMA

RULES = load_rules()


def _table(rows: list[tuple]) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 6
    data = {
        "indicator_id": list(cols[0]), "period": list(cols[1]), "breakdown": list(cols[2]),
        "level": [lv or "" for lv in cols[3]], "numerator": list(cols[4]),
        "denominator": list(cols[5]),
    }
    n = len(rows)
    data["value"] = [None] * n
    data["ci_low"] = [None] * n
    data["ci_high"] = [None] * n
    return pa.Table.from_pydict(data, schema=RESULT_SCHEMA)


# --------------------------------------------------------------------------- brute force


def _domain(display: str, cap: int) -> range:
    """What the published rules say about a masked count (independent of the code)."""
    if display == "<5":
        return range(1, 5)
    if display == "..w":  # withheld: nothing is said about its size
        return range(0, cap + 1)
    return range(5, cap + 1)  # secondary: never small (small ones are "<5")


def _shown(r: dict) -> str:
    """Display of the numerator, ``..w`` when withheld (the reason says so)."""
    disp = r["numerator_display"]
    if disp == ".." and "withheld" in (r["suppression_reason"] or "").split("(numerator)")[0]:
        return "..w"
    return disp


def _alternatives(units: dict[str, int], orgs: dict[str, str], shown: dict[str, str],
                  total_shown: str, org_shown: dict[str, str], cap: int) -> dict[str, set[int]]:
    """All values each masked unit/org/total can take in some table consistent with the
    publication (unit cells, organisation cells = sums, total = sum)."""
    names = sorted(units)
    domains = [
        [int(shown[u])] if shown[u].isdigit() else list(_domain(shown[u], cap)) for u in names
    ]
    seen: dict[str, set[int]] = {}
    for combo in itertools.product(*domains):
        vals = dict(zip(names, combo, strict=True))
        total = sum(combo)
        if total_shown.isdigit() and total != int(total_shown):
            continue
        if not total_shown.isdigit() and total not in _domain(total_shown, cap):
            continue
        ok = True
        org_vals: dict[str, int] = {}
        for o, disp in org_shown.items():
            s = sum(v for u, v in vals.items() if orgs[u] == o)
            org_vals[o] = s
            if (disp.isdigit() and s != int(disp)) or (not disp.isdigit()
                                                      and s not in _domain(disp, cap)):
                ok = False
                break
        if not ok:
            continue
        for u in names:
            seen.setdefault(u, set()).add(vals[u])
        for o, s in org_vals.items():
            seen.setdefault(f"org:{o}", set()).add(s)
        seen.setdefault("total", set()).add(total)
    return seen


@st.composite
def hierarchies(draw):
    n_units = draw(st.integers(2, 5))
    n_orgs = draw(st.integers(1, 2))
    values = draw(st.lists(st.integers(0, 8), min_size=n_units, max_size=n_units))
    owners = draw(st.lists(st.integers(0, n_orgs - 1), min_size=n_units, max_size=n_units))
    return values, owners


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies())
def test_hierarchy_masks_cannot_be_recovered(case) -> None:
    values, owners = case
    units = {f"U{k}": v for k, v in enumerate(values)}
    orgs = {f"U{k}": f"O{o}" for k, o in enumerate(owners)}
    rows = [("x", "2021", "total", None, sum(values), 100)]
    rows += [("x", "2021", "unit_id", u, v, 50) for u, v in units.items()]
    org_sums: dict[str, int] = {}
    for u, v in units.items():
        org_sums[orgs[u]] = org_sums.get(orgs[u], 0) + v
    rows += [("x", "2021", "organisation", o, v, 50) for o, v in org_sums.items()]
    unit_map = {u: {"organisation": o, "principal_type": "region", "care_level": "x"}
                for u, o in orgs.items()}
    out = protect_release(_table(rows), RULES, units=unit_map).results.to_pylist()
    shown = {r["level"]: _shown(r) for r in out if r["breakdown"] == "unit_id"}
    org_shown = {r["level"]: _shown(r) for r in out if r["breakdown"] == "organisation"}
    total_shown = next(_shown(r) for r in out if r["breakdown"] == "total")
    for disp in [*shown.values(), *org_shown.values(), total_shown]:
        assert disp not in {"1", "2", "3", "4"}
    alt = _alternatives(units, orgs, shown, total_shown, org_shown, cap=sum(values) + 8)
    for u, disp in shown.items():
        if not disp.isdigit():
            assert len(alt[u]) >= 2, (u, values, owners, shown, org_shown, total_shown)
    for o, disp in org_shown.items():
        if not disp.isdigit():
            assert len(alt[f"org:{o}"]) >= 2
    if not total_shown.isdigit():
        assert len(alt["total"]) >= 2


def test_shared_population_end_reasons_protected() -> None:
    # six end reasons of one population (38 discharges); one reason is small
    reasons = {"a": 9, "b": 16, "c": 4, "d": 1, "e": 6, "f": 2}
    rows = [(f"laro.{k}", "2021", "total", None, v, 38) for k, v in reasons.items()]
    families = [[f"laro.{k}" for k in reasons]]
    out = protect_release(_table(rows), RULES, families=families).results.to_pylist()
    shown = {r["indicator_id"]: r["numerator_display"] for r in out}
    masked = [k for k, d in shown.items() if not d.isdigit()]
    published = sum(int(d) for d in shown.values() if d.isdigit())
    # brute force: masked numerators sum to 38 − published, each within its display range
    domains = [range(1, 5) if shown[k] == "<5" else range(5, 39) for k in masked]
    solutions = [c for c in itertools.product(*domains) if sum(c) == 38 - published]
    for i, k in enumerate(masked):
        assert len({c[i] for c in solutions}) >= 2, (k, shown)
    # all denominators shown identically: one quantity, one mask
    assert len({r["denominator_display"] for r in out}) == 1


def test_without_secondary_the_audit_finds_recoverable_cells() -> None:
    rows = [("x", "2021", "total", None, 30, 100), ("x", "2021", "sex", "F", 27, 50),
            ("x", "2021", "sex", "M", 3, 50)]
    weak = DisclosureRules(secondary=False)
    release = protect_release(_table(rows), weak)
    report = audit_release(release.model)
    assert report.recoverable == 1 and report.small_narrowed == 1 and not report.ok
    strong = protect_release(_table(rows), RULES)
    assert audit_release(strong.model).ok
    assert [r["numerator_display"] for r in strong.results.to_pylist()] == ["30", "..", "<5"]


def test_every_mask_has_one_reason_type() -> None:
    rows = [("x", "2021", "total", None, 30, 100), ("x", "2021", "sex", "F", 27, 50),
            ("x", "2021", "sex", "M", 3, 50)]
    release = protect_release(_table(rows), RULES)
    kinds = {why.kind for why in release.model.reasons if why is not None}
    assert kinds == {Kind.PRIMARY, Kind.SECONDARY}
    reason = release.results.to_pylist()[1]["suppression_reason"]
    assert reason.startswith("secondary: recoverable from sex total (numerator)")


def test_coincidentally_equal_series_are_not_one_quantity() -> None:
    # Two indicators of different populations (different units) whose counts happen to
    # agree where both have cells: all zeros, and small equal counts. They must not be
    # linked: as one unknown each, the attacker would "recover" the extra unit as 0 from
    # a + b = T and a + b + c = T even with every cell withheld (the demo's failure:
    # "secondary suppression made no progress").
    from utfall.analytics.disclosure.attacker import exposed_variables, harmless
    from utfall.analytics.disclosure.model import build_model
    from utfall.analytics.disclosure.reasons import Reason

    rows = []
    for ind, units, counts in (("zero_a", ["u1", "u2"], [0, 0]),
                               ("zero_b", ["u1", "u2", "u3"], [0, 0, 0]),
                               ("small_a", ["u1", "u2"], [1, 1]),
                               ("small_b", ["u1", "u2", "u3"], [1, 1, 0])):
        rows.append({"indicator_id": ind, "period": "2021", "breakdown": "total",
                     "level": "", "numerator": sum(counts), "denominator": 40})
        rows += [{"indicator_id": ind, "period": "2021", "breakdown": "unit_id", "level": u,
                  "numerator": c, "denominator": 10 + i} for i, (u, c) in
                 enumerate(zip(units, counts, strict=True))]
    model, _ = build_model(rows, RULES)
    zeros = [k for k, key in enumerate(model.keys)
             if key[1] == "numerator" and key[0].startswith("zero")]
    assert all(model.find(k) == k and k not in model.classes() for k in zeros)
    small = {key[3:]: model.find(k) for k, key in enumerate(model.keys)
             if key[:2] == ("small_a", "numerator")}
    assert all(model.find(model.index[("small_b", "numerator", "2021", *lv)]) == root
               for lv, root in small.items())  # equal non-zero counts: still one quantity
    model.reasons = [Reason.withheld()] * len(model.keys)  # nothing published at all
    # only small_b's u3 is deduced, as 0 through the link: a zero, which the rules
    # publish, so the audit does not count it
    pinned = exposed_variables(model)
    assert [model.keys[v] for v in pinned] == [("small_b", "numerator", "2021", "unit_id",
                                                 "u3")]
    assert all(harmless(model, v) for v in pinned)
    assert audit_release(model).ok
    # the whole release protects without error and the audit finds nothing
    release = protect_release(_table([(r["indicator_id"], r["period"], r["breakdown"],
                                       r["level"], r["numerator"], r["denominator"])
                                      for r in rows]), RULES)
    assert audit_release(release.model).ok


def test_protection_terminates_when_links_alone_pin_a_cell() -> None:
    # A (true or assumed) identity between two series of different levels pins the extra
    # level from the definitions alone; withholding everything cannot change that, and
    # protection must end (withholding all it reaches) instead of raising.
    from utfall.analytics.disclosure.model import ReleaseModel
    from utfall.analytics.disclosure.reasons import Reason
    from utfall.analytics.disclosure.release import _secondary

    model = ReleaseModel(DisclosureRules(zeros="mask"))  # a recovered 0 counts as exposed
    a = [model.add_cell(("a", "numerator", "2021", *lv), 0)
         for lv in (("total", ""), ("unit_id", "u1"), ("unit_id", "u2"))]
    b = [model.add_cell(("b", "numerator", "2021", *lv), 0)
         for lv in (("total", ""), ("unit_id", "u1"), ("unit_id", "u2"), ("unit_id", "u3"))]
    other = model.add_cell(("c", "numerator", "2021", "total", ""), 7)  # unrelated
    model.add_margin(a[0], a[1:], "unit_id total")
    model.add_margin(b[0], b[1:], "unit_id total")
    for x, y in zip(a, b[:3], strict=True):
        model.link(x, y)
    model.reasons[b[3]] = Reason.withheld()
    assert _secondary(model) >= 1  # used to raise "secondary suppression made no progress"
    assert all(model.reasons[k] is not None for k in a + b)
    assert model.reasons[other] is None  # not reachable: left published


# --------------------------------------------------------------------------- synthetic regions


def _canonical(tmp_path: Path, persons: int, seed: int) -> Path:
    """A seeded synthetic region (small units, rare F-groups) as a canonical Parquet folder."""
    from tests.reports.synthetic import synthetic_tables, write_parquet

    return write_parquet(tmp_path / "canonical", synthetic_tables(persons, seed))


@pytest.mark.parametrize(("persons", "seed"), [
    (120, 3), (400, 9), pytest.param(1_500, 5, marks=pytest.mark.slow)])
def test_synthetic_region_release_is_safe(tmp_path: Path, persons: int, seed: int) -> None:
    from utfall.analytics.executor.backends import duckdb_tables
    from utfall.analytics.runs import compute_release

    folder = _canonical(tmp_path, persons, seed)
    release = compute_release(duckdb_tables(folder))
    report = audit_release(release.model)
    assert report.masked > 0 and report.published > 0
    assert report.recoverable == 0 and report.small_narrowed == 0
    rows = release.results.to_pylist()
    for r in rows:  # the cell-by-cell rules still hold
        for col in ("numerator", "denominator"):
            assert r[f"{col}_display"] not in {"1", "2", "3", "4"}
        if r["suppressed"]:
            assert r["suppression_reason"]
    # the same masks whatever subset is asked for: a year on its own
    year = max(r["period"] for r in rows)
    alone = compute_release(duckdb_tables(folder), years=[int(year)]).results.to_pylist()
    full = {(r["indicator_id"], r["period"], r["breakdown"], r["level"]):
            (r["numerator_display"], r["denominator_display"]) for r in rows}
    assert alone and all(
        full[(r["indicator_id"], r["period"], r["breakdown"], r["level"])]
        == (r["numerator_display"], r["denominator_display"]) for r in alone)
    # the regional table and the catalogue's dx_group cells are masked together
    by_cell = {(r["period"], r["level"]): r["numerator_display"] for r in rows
               if r["indicator_id"] == "kva_au119" and r["breakdown"] == "dx_group"}
    for reg in release.regional_rows:
        cat = by_cell.get((str(reg["year"]), reg["dx_group"]))
        if cat is not None:
            assert cat.isdigit() == reg["AU119"].isdigit(), (reg, cat)


def test_cli_audit(tmp_path: Path) -> None:
    from utfall.cli.app import app

    folder = _canonical(tmp_path, 400, 3)
    result = CliRunner().invoke(app, ["disclosure", "audit", "--data", str(folder)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "no masked cell is exactly recoverable" in result.output
    assert "kva_au119" in result.output and "regional" in result.output


def test_apply_disclosure_is_the_release_method() -> None:
    rows = [("x", "2021", "total", None, 30, 100), ("x", "2021", "sex", "F", 27, 50),
            ("x", "2021", "sex", "M", 3, 50)]
    assert (apply_disclosure(_table(rows)).to_pylist()
            == protect_release(_table(rows)).results.to_pylist())
