"""Regional table (DOMAIN.md §6): hand-computed counts, CSV contract, masking."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from utfall.analytics.disclosure import load_rules
from utfall.analytics.regional import (
    REGIONAL_COLUMNS,
    protect_regional,
    regional_counts,
    regional_table,
    render_regional_csv,
    render_regional_html,
    render_regional_xlsx,
    tables_from_arrow,
    tables_from_parquet,
)
from utfall.analytics.schema import TABLES, conform

D = dt.date


def _contact(cid, person, unit, date, main_dx):
    group = main_dx[:3] if main_dx.startswith("F1") else None
    return {
        "contact_id": cid,
        "person_key": person,
        "unit_id": unit,
        "date": date,
        "contact_type": "outpatient",
        "main_dx": main_dx,
        "dx_group": group,
    }


def _proc(person, unit, date, contact_id, code):
    return {
        "person_key": person,
        "unit_id": unit,
        "date": date,
        "contact_id": contact_id,
        "kva_code": code,
    }


def canonical_fixture() -> dict[str, pa.Table]:
    """Small canonical data set; expected counts are worked out in the tests below."""
    contacts = [
        _contact("c1", "A", "U1", D(2021, 3, 1), "F102"),
        _contact("c2", "A", "U1", D(2021, 5, 1), "F112"),  # A is in two groups in 2021
        _contact("c3", "B", "U1", D(2021, 6, 1), "F102"),
        _contact("c4", "B", "U2", D(2022, 2, 1), "F102"),
        _contact("c5", "C", "U2", D(2021, 7, 1), "F122"),
        _contact("c6", "D", "U1", D(2021, 8, 1), "F322"),  # not a substance group
        _contact("c7", "A", "U2", D(2022, 1, 10), "F112"),
    ]
    procedures = [
        _proc("A", "U1", D(2021, 3, 1), "c1", "AU119"),  # F10 2021 AU119: A
        _proc("A", "U1", D(2021, 3, 1), "c1", "AU119"),  # duplicate: still one person
        _proc("A", "U1", D(2021, 5, 1), None, "DU119"),  # no contact_id -> c2: F11 DU119
        _proc("B", "U1", D(2021, 6, 1), "c3", "AU124"),  # F10 2021 AU124: B
        _proc("C", "U2", D(2021, 7, 1), "c5", "AU119"),  # on an F12 contact: F12, not F10
        _proc("B", "U2", D(2022, 2, 1), None, "DU119"),  # no contact_id -> c4: F10 2022
        _proc("B", "U1", D(2021, 6, 2), None, "AU119"),  # no contact that day: nothing
        _proc("A", "U1", D(2022, 1, 5), "c1", "AU119"),  # dated 2022, linked: c1's year (A again)
        _proc("D", "U1", D(2021, 8, 1), "c6", "AU119"),  # contact outside F10-F19
        _proc("B", "U1", D(2021, 6, 1), "c3", "AU118"),  # other KVÅ code
        _proc("A", "U2", D(2022, 1, 10), None, "AU119"),  # no contact_id -> c7: F11 2022
        _proc("A", "U1", D(2022, 1, 10), None, "AU124"),  # wrong unit: nothing
    ]
    # F19 2021: six persons, five with AU119 (5 of 6: the complement 1 masks the 5).
    for k in range(6):
        person = f"P{k}"
        contacts.append(_contact(f"f{k}", person, "U1", D(2021, 9, 1 + k), "F199"))
        if k < 5:
            procedures.append(_proc(person, "U1", D(2021, 9, 1 + k), f"f{k}", "AU119"))
    persons = sorted({c["person_key"] for c in contacts})
    return {
        "person": conform("person", pa.Table.from_pylist([{"person_key": p} for p in persons])),
        "unit": conform("unit", pa.Table.from_pylist([{"unit_id": "U1"}, {"unit_id": "U2"}])),
        "contact": conform("contact", pa.Table.from_pylist(contacts)),
        "procedure": conform("procedure", pa.Table.from_pylist(procedures)),
    }


EXPECTED = [
    # dx_group, year, AU119, AU124, DU119, persons
    ("F10", 2021, 1, 1, 0, 2),  # A (AU119 via c1), B (AU124 via c3)
    ("F10", 2022, 0, 0, 1, 1),  # B, DU119 matched by person/unit/date
    ("F11", 2021, 0, 0, 1, 1),  # A, DU119 without contact_id matched to c2
    ("F11", 2022, 1, 0, 0, 1),  # A, AU119 matched to c7 (same person/unit/date)
    ("F12", 2021, 1, 0, 0, 1),  # C, AU119 on the F12 contact
    ("F19", 2021, 5, 0, 0, 6),
]


def write_parquet_folder(folder: Path, tables: dict[str, pa.Table]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


def test_counts_by_hand() -> None:
    counts = regional_counts(tables_from_arrow(canonical_fixture()))
    assert counts.column_names == list(REGIONAL_COLUMNS)
    assert [f.type for f in counts.schema][2:] == [pa.int64()] * 4
    got = [tuple(r.values()) for r in counts.to_pylist()]
    assert got == EXPECTED


def test_procedure_linked_across_new_year_counts_in_contact_year() -> None:
    """One rule on both paths: a procedure linked by ``contact_id`` counts in the
    contact's year whatever its own date (docs/indicators.md)."""
    from utfall.analytics.executor.run import compute_catalogue

    contacts = [_contact("x1", "E", "U1", D(2021, 12, 30), "F102"),
                _contact("x2", "E", "U1", D(2022, 3, 1), "F102")]
    procedures = [_proc("E", "U1", D(2022, 1, 2), "x1", "DU119")]  # dated in 2022
    data = {
        "person": conform("person", pa.Table.from_pylist([{"person_key": "E"}])),
        "unit": conform("unit", pa.Table.from_pylist([{"unit_id": "U1"}])),
        "contact": conform("contact", pa.Table.from_pylist(contacts)),
        "procedure": conform("procedure", pa.Table.from_pylist(procedures)),
    }
    rows = {r["year"]: r["DU119"] for r in regional_counts(tables_from_arrow(data)).to_pylist()}
    assert rows == {2021: 1, 2022: 0}
    res = compute_catalogue(tables_from_arrow(data), indicators=["kva_du119"],
                            breakdowns=["dx_group"])
    assert {int(r["period"]): r["numerator"] for r in res.to_pylist()} == rows


def test_counts_from_parquet_folder(tmp_path: Path) -> None:
    folder = write_parquet_folder(tmp_path / "export", canonical_fixture())
    counts = regional_counts(tables_from_parquet(folder))
    assert [tuple(r.values()) for r in counts.to_pylist()] == EXPECTED


def test_empty_source() -> None:
    tables = {name: schema.empty_table() for name, schema in TABLES.items()}
    counts = regional_counts(tables_from_arrow(tables))
    assert counts.num_rows == 0
    assert counts.column_names == list(REGIONAL_COLUMNS)
    assert render_regional_csv(regional_table(tables_from_arrow(tables))) == (
        "dx_group,year,AU119,AU124,DU119,persons\n"
    )


def test_masking_small_counts_and_zeros() -> None:
    table = regional_table(tables_from_arrow(canonical_fixture()))
    rows = {(r["dx_group"], r["year"]): r for r in table.to_pylist()}
    assert rows[("F10", 2021)] == {
        "dx_group": "F10",
        "year": 2021,
        "AU119": "<5",
        "AU124": "<5",
        "DU119": "0",
        "persons": "<5",
    }
    # 5 of 6 persons: the complement (6 − 5 = 1) is small, so the catalogue masks the
    # kva_au119 numerator of F19 2021; the regional cell is the same count (one release)
    assert rows[("F19", 2021)]["AU119"] == "<5"
    assert rows[("F19", 2021)]["persons"] == "6"
    assert rows[("F19", 2021)]["AU124"] == "0"


def test_csv_contract() -> None:
    text = render_regional_csv(regional_table(tables_from_arrow(canonical_fixture())))
    lines = text.splitlines()
    assert lines[0] == "dx_group,year,AU119,AU124,DU119,persons"
    assert lines[1] == "F10,2021,<5,<5,0,<5"
    assert lines[-1] == "F19,2021,<5,0,0,6"  # complement of 1 masked (see above)
    for line in lines[1:]:
        for cell in line.split(",")[2:]:
            assert cell not in {"1", "2", "3", "4"}


def test_renderers_refuse_raw_counts() -> None:
    counts = regional_counts(tables_from_arrow(canonical_fixture()))
    with pytest.raises(TypeError):
        render_regional_csv(counts)
    with pytest.raises(TypeError):
        render_regional_html(counts)


def test_html_layout_and_notes() -> None:
    table = regional_table(tables_from_arrow(canonical_fixture()))
    page = render_regional_html(table)
    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="sv">' in page
    assert "F10 Alkohol" in page and "F10 Alcohol" in page
    assert "Alla personer" in page and "All persons" in page
    assert "kan inte summeras" in page and "do not add up" in page
    assert "&lt;5" in page
    assert "version 1" in page  # which rules were applied
    assert "<script src" not in page and "<link" not in page  # self-contained
    english = render_regional_html(table, locale="en")
    assert '<html lang="en">' in english


def test_xlsx(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    table = regional_table(tables_from_arrow(canonical_fixture()))
    path = tmp_path / "regional.xlsx"
    render_regional_xlsx(table, path)
    wb = load_workbook(path)
    values = [c.value for ws in wb for row in ws.iter_rows() for c in row]
    assert "<5" in values
    assert 6 in values and 5 not in values  # F19 2021: 5 of 6 is a complement mask
    assert not any(v in (1, 2, 3, 4) for v in values if isinstance(v, int) and v < 1000)


def test_threshold_is_configurable() -> None:
    counts = regional_counts(tables_from_arrow(canonical_fixture()))
    from dataclasses import replace

    rules = replace(load_rules(), threshold=7, primary_display="<7", version="test")
    table = protect_regional(counts, rules)
    f19 = next(r for r in table.to_pylist() if r["dx_group"] == "F19")
    assert f19["AU119"] == "<7" and f19["persons"] == "<7"


@pytest.mark.postgres
def test_counts_on_postgres() -> None:
    """The same Ibis expression gives the same numbers on PostgreSQL."""
    ibis = pytest.importorskip("ibis")
    from utfall.analytics.executor.backends import postgres_tables

    try:
        con = ibis.postgres.connect(host="127.0.0.1", user="postgres", database="postgres")
    except Exception as exc:  # pragma: no cover - server down
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    schema = "utfall_test_regional"
    try:
        tables = postgres_tables(canonical_fixture(), con=con, schema=schema)
        counts = regional_counts(tables)
        assert [tuple(r.values()) for r in counts.to_pylist()] == EXPECTED
    finally:
        con.raw_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE').close()


@pytest.mark.spark
@pytest.mark.slow
def test_counts_on_spark() -> None:
    """The same Ibis expression gives the same numbers on PySpark (local mode)."""
    pyspark_sql = pytest.importorskip("pyspark.sql")
    from utfall.analytics.executor.backends import spark_tables

    session = (
        pyspark_sql.SparkSession.builder.master("local[1]")
        .appName("utfall-test-regional")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    tables = spark_tables(canonical_fixture(), session, prefix="utfall_regional_")
    counts = regional_counts(tables)
    assert [tuple(r.values()) for r in counts.to_pylist()] == EXPECTED
