"""``utfall gaps``: gap to target per unit and region, from the protected release only."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from tests.reports.synthetic import synthetic_tables, write_parquet
from utfall.analytics.gaps import gap_sentence, published_gaps
from utfall.cli import app

runner = CliRunner()


def _few_au119_at_u3(tables: dict[str, pa.Table], keep: int = 3) -> dict[str, pa.Table]:
    """Under-coding made worse: unit U3 registers AU119 for only ``keep`` persons in 2022
    (a small, masked numerator next to a published denominator of ~140)."""
    proc = tables["procedure"].to_pylist()
    kept: set[str] = set()
    out = []
    for r in proc:
        if r["unit_id"] == "U3" and r["kva_code"] == "AU119" and r["date"].year == 2022:
            if r["person_key"] not in kept and len(kept) >= keep:
                continue
            kept.add(r["person_key"])
        out.append(r)
    return {**tables, "procedure": pa.Table.from_pylist(out, schema=tables["procedure"].schema)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_parquet(tmp_path_factory.mktemp("gaps") / "export",
                         _few_au119_at_u3(synthetic_tables(500, 11)))


@pytest.fixture(scope="module")
def raw(folder: Path) -> dict[tuple[str, str, str], tuple[int, int]]:
    """Raw (unprotected) counts of AU119 by unit and year, straight from the engine."""
    from utfall.analytics.executor.backends import duckdb_tables
    from utfall.analytics.executor.run import compute_catalogue

    res = compute_catalogue(duckdb_tables(folder), indicators=["kva_au119"],
                            breakdowns=["total", "unit_id"])
    return {(r["period"], r["breakdown"], r["level"]): (r["numerator"], r["denominator"])
            for r in res.to_pylist()}


@pytest.fixture(scope="module")
def gaps_json(folder: Path) -> list[dict]:
    res = runner.invoke(app, ["gaps", "--data", str(folder), "--indicator", "kva_au119",
                              "--year", "2021", "--format", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_gap_in_points_and_persons(gaps_json: list[dict], raw: dict) -> None:
    assert {r["breakdown"] for r in gaps_json} == {"total", "unit_id"}
    assert {r["period"] for r in gaps_json} == {"2021"}
    published = [r for r in gaps_json if not r["withheld"]]
    assert published, "the fixture must have published gaps"
    for r in published:
        num, den = raw[(r["period"], r["breakdown"], r["level"])]
        # the published counts are the raw ones where nothing is masked …
        assert (r["numerator"], r["denominator"]) == (num, den)
        # … and the gap follows from them: AU119's target is 50 %
        assert r["target"] == 0.5 and r["target_source"] == "catalogue"
        assert r["gap_persons"] == max(0, math.ceil(0.5 * den - num))
        assert r["gap_pp"] == pytest.approx(50 - 100 * num / den)
    region = next(r for r in gaps_json if r["breakdown"] == "total")
    assert not region["withheld"]
    assert region["summary"].endswith("behöver få AU119 för att nå målet 50 %")
    assert region["summary"].split(" ")[0].replace(" ", "") == str(region["gap_persons"])
    # unit names from the unit table, never only the code
    assert {r["unit_name"] for r in gaps_json if r["breakdown"] == "unit_id"} >= {
        "Beroendemottagning Nord", "Mottagning Väst"}


def test_gap_never_reveals_a_masked_count(folder: Path, raw: dict) -> None:
    """Attacker: gap_persons = ceil(t·den − num) would give a masked numerator back from
    a published denominator. Every cell whose raw count is 1–4 must give no gap, and no
    gap may come from a masked cell (secondary suppression included)."""
    res = runner.invoke(app, ["gaps", "--data", str(folder), "--indicator", "kva_au119",
                              "--year", "2022", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    from utfall.analytics.executor.backends import duckdb_tables
    from utfall.analytics.runs import compute_release

    release = compute_release(duckdb_tables(folder)).subset(indicators=["kva_au119"],
                                                              periods=["2022"])
    masked = {(r["breakdown"], r["level"]) for r in release.to_pylist()
              if r["numerator"] is None or r["denominator"] is None}
    assert ("unit_id", "U3") in masked
    for r in rows:
        assert r["withheld"] == ((r["breakdown"], r["level"]) in masked)
    small = [r for r in rows if 1 <= raw[(r["period"], r["breakdown"], r["level"])][0] <= 4]
    assert small, "the fixture must have a small numerator (under-coding unit U3)"
    for r in small:
        assert r["withheld"] is True
        assert r["gap_persons"] is None and r["gap_pp"] is None
        assert r["numerator"] is None and r["value"] is None
        assert "röjandekontroll" in r["summary"]


def test_published_gaps_use_published_cells_only() -> None:
    """A row with a masked numerator but a published denominator gives no gap; a
    regional target is taken only from a published regional value."""
    rows = [
        dict(indicator_id="kva_au119", period="2024", breakdown="total", level="",
             numerator=60, denominator=100, value=0.6),
        dict(indicator_id="kva_au119", period="2024", breakdown="unit_id", level="A",
             numerator=None, denominator=40, value=None),
        dict(indicator_id="kva_au119", period="2024", breakdown="unit_id", level="B",
             numerator=12, denominator=60, value=0.2),
        dict(indicator_id="kva_du119", period="2024", breakdown="total", level="",
             numerator=None, denominator=100, value=None),
        dict(indicator_id="kva_du119", period="2024", breakdown="unit_id", level="B",
             numerator=10, denominator=60, value=10 / 60),
    ]
    out = {(r["indicator_id"], r["level"]): r
           for r in published_gaps(pa.Table.from_pylist(rows)).to_pylist()}
    assert out[("kva_au119", "A")]["withheld"] and out[("kva_au119", "A")]["gap_persons"] is None
    assert out[("kva_au119", "B")]["gap_persons"] == 18  # ceil(30 − 12)
    assert out[("kva_au119", "")]["gap_persons"] == 0  # 60 % ≥ 50 %
    assert "Målet är nått" in gap_sentence(out[("kva_au119", "")], "sv")
    # DU119 has no target: the regional value is masked, so no gap at all
    assert out[("kva_du119", "B")]["withheld"] and out[("kva_du119", "B")]["target"] is None
    assert ("kva_du119", "") not in out  # the region against itself has no gap


def test_table_and_csv(folder: Path) -> None:
    res = runner.invoke(app, ["gaps", "--data", str(folder), "--format", "table"],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "Strukturerad bedömning av alkohol- och drogvanor (AU119)" in res.stdout
    assert "Hela regionen:" in res.stdout and "för att nå målet 50\u00a0%" in res.stdout
    assert "Mottagning Väst" in res.stdout
    res = runner.invoke(app, ["gaps", "--data", str(folder), "--format", "csv",
                              "--by", "unit_id", "--year", "2022"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert res.stdout.splitlines()[0].startswith("indicator_id,title,period,breakdown,level")
    assert {r["indicator_id"] for r in rows} >= {"kva_au119", "alcohol_relapse_medication"}
    # CSV keeps raw numbers (a share, not "8,9 %")
    value = next(r["value"] for r in rows if r["value"])
    assert 0 <= float(value) <= 1


def test_usage_errors(folder: Path) -> None:
    res = runner.invoke(app, ["gaps", "--data", str(folder), "-i", "no_such"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["gaps", "--data", str(folder), "-i", "laro_persons"])
    assert res.exit_code == 2 and "mål" in res.output  # a count has no target
    res = runner.invoke(app, ["gaps", "--data", str(folder), "--by", "sex"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["gaps", "--data", str(folder), "--year", "1999"])
    assert res.exit_code == 1 and "2022" in res.output


def test_indicators_table_shows_percentages_csv_keeps_raw(folder: Path) -> None:
    """`utfall indicators`: the table formats shares as Swedish percentages; JSON/CSV keep
    the raw proportion (the interface is unchanged)."""
    args = ["indicators", "--data", str(folder), "-i", "kva_au119", "--years", "2021"]
    res = runner.invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    total = next(r for r in json.loads(res.stdout) if r["breakdown"] == "total")
    assert 0 < total["value"] < 1  # raw share
    expected = f"{total['value'] * 100:.1f}".replace(".", ",") + "\u00a0%"
    res = runner.invoke(app, [*args, "--format", "table"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert expected in res.stdout
    assert str(total["value"])[:6] not in res.stdout  # no raw 0.4758…
    res = runner.invoke(app, [*args, "--format", "csv"])
    row = next(csv.DictReader(io.StringIO(res.stdout)))
    assert float(row["value"]) == pytest.approx(total["value"])


def test_report_xlsx_has_the_same_gaps(folder: Path, raw: dict, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from utfall.analytics.executor.backends import duckdb_tables
    from utfall.reports import build_report, render_report_xlsx

    report = build_report(duckdb_tables(folder), indicators=["kva_au119"])
    render_report_xlsx(report, "sv", tmp_path / "r.xlsx")
    ws = load_workbook(tmp_path / "r.xlsx")["Målgap"]
    head = [c.value for c in ws[1]]
    rows = [dict(zip(head, (c.value for c in r), strict=True)) for r in ws.iter_rows(min_row=2)]
    u1 = next(r for r in rows if r["period"] == "2021" and r["level"] == "Beroendemottagning Nord")
    num, den = raw[("2021", "unit_id", "U1")]
    assert u1["gap_persons"] == max(0, math.ceil(0.5 * den - num))
    u3 = next(r for r in rows if r["period"] == "2022" and r["level"] == "Mottagning Väst")
    assert u3["withheld"] is True and u3["gap_persons"] is None and u3["value"] is None
