"""``utfall indicators`` over a Parquet folder: disclosure applied, formats, options."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from utfall.analytics.example import example_tables
from utfall.cli import app


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("canonical")
    for name, table in example_tables().items():
        pq.write_table(table, out / f"{name}.parquet")
    return out


def test_json_is_disclosure_controlled(folder: Path) -> None:
    res = CliRunner().invoke(
        app, ["indicators", "--data", str(folder), "-i", "kva_au119", "--by", "unit_id",
              "--years", "2021", "--format", "json"],
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    total = next(r for r in rows if r["breakdown"] == "total")
    # 2 of 6 persons: a count of 2 must never be shown
    assert total["suppressed"] is True
    assert total["numerator"] is None
    assert total["numerator_display"] == "<5"
    assert {r["breakdown"] for r in rows} == {"total", "unit_id"}


def test_parquet_and_stored_run(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "res.parquet"
    res = CliRunner().invoke(
        app, ["indicators", "--data", str(folder), "--years", "2021-2022", "--format", "parquet",
              "--out", str(out), "--store-results", str(tmp_path / "runs")],
    )
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert {"suppressed", "suppression_reason"} <= set(table.column_names)
    assert (tmp_path / "runs" / "LATEST").exists()


def test_table_output_and_errors(folder: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["indicators", "--data", str(folder), "-i", "laro_persons",
                              "--years", "2021"])
    assert res.exit_code == 0, res.output
    assert "laro_persons" in res.stdout
    res = runner.invoke(app, ["indicators", "--data", str(folder), "-i", "nope"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["indicators", "--data", str(folder / "missing")])
    assert res.exit_code == 1


def test_region_adds_an_indicator(folder: Path, tmp_path: Path) -> None:
    own = tmp_path / "region"
    own.mkdir()
    (own / "cbt.yaml").write_text(
        """
id: region_du011
kind: proportion
title: {sv: KBT, en: CBT}
definition: {sv: Andel med DU011., en: Share with DU011.}
data_source: {sv: PAS, en: PAS}
population: {source: contact, dx_groups: [F10]}
numerator: {event: procedure, kva_codes: [DU011]}
""",
        encoding="utf-8",
    )
    res = CliRunner().invoke(
        app, ["indicators", "--data", str(folder), "--catalogue-dir", str(own),
              "-i", "region_du011", "--years", "2021", "--format", "json"],
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert rows[0]["indicator_id"] == "region_du011"
    assert rows[0]["denominator_display"] == "<5"  # F10 persons 2021: p1 p2 p4
