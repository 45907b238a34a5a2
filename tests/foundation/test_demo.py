"""``utfall demo`` end to end, and its regional table against an independent count."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from utfall.cli import app
from utfall.cli.demo import demo_folder, regional_display
from utfall.config import Settings
from utfall.store.db import get_engine

PERSONS, SEED = 3000, 11


def independent_counts(folder: Path) -> dict[tuple[str, int], dict[str, int]]:
    """The regional table counted straight from the extract's CSV files with SQL.

    Persons are identified by the last 10 digits of the identity number, independent
    of Utfall's parsing and pseudonymisation.
    """
    con = duckdb.connect()
    con.execute(f"""
        create view contacts as select * from read_csv('{folder}/contacts.csv', all_varchar=true);
        create view procedures as select * from read_csv('{folder}/procedures.csv',
                                                         all_varchar=true);
        create view c as
          select contact_id,
                 right(regexp_replace(person_id, '[-+]', '', 'g'), 10) as pid,
                 unit_id, date, year(cast(date as date)) as y,
                 left(replace(upper(main_dx), '.', ''), 3) as g
          from contacts
          where regexp_matches(replace(upper(main_dx), '.', ''), '^F1[0-9]');
        create view p as
          select right(regexp_replace(person_id, '[-+]', '', 'g'), 10) as pid,
                 unit_id, date, nullif(contact_id, '') as contact_id, upper(kva_code) as kva
          from procedures;
    """)
    result: dict[tuple[str, int], dict[str, int]] = {}
    for g, y, n in con.execute("select g, y, count(distinct pid) from c group by 1, 2").fetchall():
        result[(g, y)] = {"persons": n, "AU119": 0, "AU124": 0, "DU119": 0}
    rows = con.execute("""
        select c.g, c.y, p.kva, count(distinct c.pid)
        from p join c on (p.contact_id is not null and p.contact_id = c.contact_id)
                      or (p.contact_id is null and p.pid = c.pid and p.unit_id = c.unit_id
                          and p.date = c.date)
        where p.kva in ('AU119', 'AU124', 'DU119')
        group by 1, 2, 3
    """).fetchall()
    for g, y, kva, n in rows:
        result[(g, y)][kva] = n
    return result


def masked(n: int) -> str:
    return "<5" if 1 <= n <= 4 else str(n)


@pytest.mark.slow
def test_demo_table_matches_independent_count(tmp_path: Path, settings: Settings) -> None:
    result = CliRunner().invoke(app, ["demo", "--persons", str(PERSONS), "--seed", str(SEED),
                                      "--no-serve"])
    assert result.exit_code == 0, result.output
    html = settings.data_dir / "demo" / "regional.html"
    assert html.exists()
    assert str(html.resolve()) in result.output.replace("\n", "")
    table = regional_display(get_engine()).to_pylist()
    expected = independent_counts(demo_folder(PERSONS, SEED))
    assert {(r["dx_group"], r["year"]) for r in table} == set(expected)
    secondary = 0
    cells = 0
    for row in table:
        counts = expected[(row["dx_group"], row["year"])]
        for column in ("AU119", "AU124", "DU119", "persons"):
            cells += 1
            if row[column] == "..":  # linked secondary suppression over the whole release
                secondary += 1
                continue
            assert row[column] == masked(counts[column]), (row, counts)
    # secondary masks are the exception: the table stays informative
    assert secondary <= cells // 10, (secondary, cells)
    # the table is not trivial: big groups have many persons and real interventions
    f10 = [r for r in table if r["dx_group"] == "F10"]
    assert len(f10) == 8 and all(int(r["persons"]) > 500 for r in f10)
    assert any(r["AU119"] not in ("0", "<5") for r in f10)
    # a second run re-uses the extract and re-imports idempotently: same table
    again = CliRunner().invoke(app, ["demo", "--persons", str(PERSONS), "--seed", str(SEED),
                                     "--no-serve"])
    assert again.exit_code == 0, again.output
    assert regional_display(get_engine()).to_pylist() == table
