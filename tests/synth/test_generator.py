"""Tests of the synthetic region generator; counts are made independently with DuckDB."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from utfall.domain.identity import parse_identity_number, with_check_digit
from utfall.synth import generate
from utfall.synth.identities import luhn_check_digits

N = 20_000
SEED = 11
TABLES = ["units", "persons", "contacts", "procedures", "medications", "enrolments",
          "assessments"]
COLUMNS = {
    "units": ["unit_id", "name", "organisation", "principal_type", "care_level",
              "municipality_code"],
    "persons": ["person_id", "sex", "municipality_code", "death_date"],
    "contacts": ["contact_id", "person_id", "unit_id", "date", "end_date", "contact_type",
                 "main_dx", "other_dx"],
    "procedures": ["person_id", "unit_id", "date", "contact_id", "kva_code"],
    "medications": ["person_id", "unit_id", "atc", "start_date", "end_date"],
    "enrolments": ["person_id", "unit_id", "programme", "start_date", "end_date", "end_reason"],
    "assessments": ["person_id", "unit_id", "date", "instrument", "stage",
                    *[f"item_{i}" for i in range(1, 12)]],
}
# DOMAIN.md §6: persons per year with the group as main diagnosis (2017, 2021), and
# persons with each KVÅ code; written out here again so the test does not trust the
# generator's own tables.
PERSONS_2017_2021 = {"F10": (8455, 7378), "F11": (1476, 1615), "F12": (659, 485),
                     "F14": (90, 78), "F15": (337, 351), "F19": (3643, 3235)}
KVA_2017_2021 = {
    ("F10", "AU119"): (632, 392), ("F10", "DU119"): (200, 128), ("F10", "AU124"): (0, 70),
    ("F19", "AU119"): (374, 280), ("F19", "DU119"): (181, 158), ("F19", "AU124"): (0, 41),
    ("F11", "AU119"): (80, 116), ("F11", "DU119"): (96, 72),
}


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("region")
    summary = generate(out, persons=N, seed=SEED)
    return out, summary


@pytest.fixture(scope="module")
def db(region: tuple[Path, dict]) -> duckdb.DuckDBPyConnection:
    out, _ = region
    con = duckdb.connect()
    text = {"person_id", "unit_id", "contact_id", "municipality_code", "main_dx", "other_dx",
            "end_reason", "kva_code", "atc"}
    for name in TABLES:
        types = ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS[name] if c in text)
        con.execute(f"create view {name} as select * from read_csv('{out / name}.csv', "
                    f"header=true, types={{{types}}})")
    con.execute("""create view cx as select *, year(date) as y,
                   substr(replace(upper(main_dx), '.', ''), 1, 3) as grp from contacts""")
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    return con.execute(sql).fetchone()[0]


def test_files_and_columns_follow_the_spec(region: tuple[Path, dict]) -> None:
    out, summary = region
    for name in TABLES:
        header = (out / f"{name}.csv").read_text(encoding="utf-8").split("\n", 1)[0]
        assert header.split(",") == COLUMNS[name], name
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "utfall-extract" and manifest["version"] == 1
    assert manifest["synthetic"] is True and manifest["generator"] == "utfall.synth"
    assert manifest["seed"] == SEED and manifest["persons"] == N
    assert manifest["planted_findings"] == json.loads(json.dumps(summary["planted_findings"]))


def test_units_and_municipalities(db: duckdb.DuckDBPyConnection) -> None:
    levels = dict(db.execute("select care_level, count(*) from units group by 1").fetchall())
    assert levels["social_services"] == 10 and levels["laro"] >= 2 and levels["youth"] >= 1
    assert levels["specialist_inpatient"] >= 1 and levels["primary_care"] >= 2
    assert one(db, "select count(*) from units where principal_type = 'private'") >= 1
    assert one(db, """select count(*) from units where principal_type = 'municipality'
                      and (care_level <> 'social_services' or municipality_code not like '12__')
                      """) == 0
    assert one(db, """select count(*) from persons where municipality_code is not null
                      and municipality_code not in (select municipality_code from units
                      where principal_type = 'municipality')""") == 0


def test_calibration_persons_per_group_and_year(db: duckdb.DuckDBPyConnection) -> None:
    """Within ±10 % of DOMAIN.md §6 (linear between 2017 and 2021) for groups ≥ 300."""
    rows = db.execute("""select grp, y, count(distinct person_id) from cx
                         where grp like 'F1_' group by all""").fetchall()
    got = {(g, y): n for g, y, n in rows}
    for group, (a, b) in PERSONS_2017_2021.items():
        for year in range(2017, 2022):
            expected = a + (b - a) * (year - 2017) / 4
            tolerance = 0.10 if expected >= 300 else 0.25
            assert abs(got[(group, year)] - expected) <= tolerance * expected, (group, year)
        for year in (2022, 2023, 2024):  # gentle extrapolation: at most the 2017-21 slope
            full = b + (b - a) / 4 * (year - 2021)
            low, high = min(b, full), max(b, full)
            assert low * 0.9 - 3 <= got[(group, year)] <= high * 1.1 + 3, (group, year)
    assert got[("F11", 2021)] > got[("F11", 2017)] * 1.05  # the opioid group grows
    for small in ("F13", "F16", "F18"):
        total = sum(n for (g, _), n in got.items() if g == small)
        assert 0 < total < 0.1 * sum(n for (g, _), n in got.items() if g == "F10")
    assert ("F17", 2017) not in got


def test_calibration_kva_per_group(db: duckdb.DuckDBPyConnection) -> None:
    """Persons with a code linked to a contact with the group as main diagnosis.

    Tolerance ±20 % or three Poisson standard deviations, whichever is larger.
    """
    rows = db.execute("""
        with linked as (
            select p.kva_code, c.grp, c.y, c.person_id from procedures p join cx c
            on p.contact_id = c.contact_id
            union all
            select p.kva_code, c.grp, c.y, c.person_id from procedures p join cx c
            on p.contact_id is null and p.person_id = c.person_id and p.unit_id = c.unit_id
            and p.date = c.date)
        select grp, kva_code, y, count(distinct person_id) from linked group by all""").fetchall()
    got = {(g, k, y): n for g, k, y, n in rows}
    for (group, code), (a, b) in KVA_2017_2021.items():
        for year, expected in ((2017, a), (2021, b)):
            value = got.get((group, code, year), 0)
            tolerance = max(0.2 * expected, 3 * expected**0.5, 5)  # ±20 % or 3 Poisson SD
            assert abs(value - expected) <= tolerance, (group, code, year, value)


def test_contacts_shape(db: duckdb.DuckDBPyConnection) -> None:
    per_person = one(db, "select count(*) / count(distinct person_id) from contacts")
    assert 18 <= per_person <= 22
    assert one(db, "select count(*) from persons where person_id not in "
                   "(select person_id from contacts)") == 0
    types = dict(db.execute("select contact_type, count(*) from contacts group by 1").fetchall())
    assert set(types) == {"outpatient", "inpatient", "social_services", "digital"}
    assert one(db, "select count(*) from contacts where contact_type = 'inpatient' "
                   "and (end_date is null or end_date < date)") == 0
    assert one(db, "select count(*) from contacts where contact_type <> 'inpatient' "
                   "and end_date is not null") == 0
    assert one(db, "select count(*) from contacts where contact_type = 'social_services' "
                   "and main_dx is not null") == 0
    assert one(db, "select min(date) from contacts") >= dt.date(2017, 1, 1)
    assert one(db, "select max(greatest(date, coalesce(end_date, date))) from contacts") <= \
        dt.date(2024, 12, 31)
    assert one(db, "select count(distinct person_id) from (select person_id from cx "
                   "group by person_id having count(distinct y) >= 3)") > N / 3
    # both code forms, mostly dependence, some harmful use
    assert one(db, "select count(*) from contacts where main_dx like 'F1_.%'") > 0
    assert one(db, "select count(*) from contacts "
                   "where regexp_matches(main_dx, '^F1[0-9]{2}$')") > 0
    states = dict(db.execute("""select substr(replace(main_dx, '.', ''), 4, 1), count(*)
        from contacts where main_dx like 'F1%' group by 1""").fetchall())
    assert states["2"] > 0.6 * sum(states.values()) and states["1"] > 0.04 * sum(states.values())
    other = one(db, "select count(*) from contacts where other_dx like '%;%'")
    assert other > 0
    assert one(db, "select count(*) from contacts where other_dx like '%F90%'") > 0
    several = one(db, """select count(*) from (select person_id from cx where grp like 'F1_'
                         group by person_id having count(distinct grp) >= 2)""")
    assert several > N / 20


def test_identity_numbers_are_valid_and_unique(db: duckdb.DuckDBPyConnection) -> None:
    ids = db.execute("select person_id, sex from persons").fetchall()
    today = dt.date(2026, 1, 1)
    parsed = [parse_identity_number(pid, today) for pid, _ in ids]
    assert len({p.canonical for p in parsed}) == len(ids)
    mismatched = sum(p.sex != sex for p, (_, sex) in zip(parsed, ids, strict=True))
    assert mismatched <= len(ids) / 1000
    assert sum(p.coordination for p in parsed) > 0
    ten = sum(len(pid) == 11 for pid, _ in ids)
    assert 0.05 * len(ids) < ten < 0.3 * len(ids)
    assert all(len(pid) in (11, 13) and pid[-5] == "-" for pid, _ in ids)
    assert max(p.birth_date for p in parsed) <= dt.date(2024, 12, 31)


def test_luhn_agrees_with_domain() -> None:
    rng = np.random.default_rng(0)
    nine = rng.integers(0, 10**9, 2000)
    ours = luhn_check_digits(nine)
    for value, check in zip(nine, ours, strict=True):
        assert with_check_digit(f"{value:09d}")[-1] == str(check)


def test_ages_deaths_and_dates(db: duckdb.DuckDBPyConnection) -> None:
    births = {pid: parse_identity_number(pid, dt.date(2026, 1, 1)).birth_date
              for (pid,) in db.execute("select person_id from persons").fetchall()}
    db.register("births", __import__("pandas").DataFrame(
        {"person_id": list(births), "birth": list(births.values())}))
    ages = db.execute("""select min(datediff('year', b.birth, c.date)),
                                max(date_diff('day', b.birth, c.date) / 365.25)
                         from contacts c join births b using (person_id)""").fetchone()
    assert ages[0] >= 13 and ages[1] < 86
    assert one(db, "select count(*) from persons where death_date is not null") > N / 50
    for table, col in (("contacts", "coalesce(end_date, date)"), ("procedures", "date"),
                       ("medications", "coalesce(end_date, start_date)"),
                       ("enrolments", "coalesce(end_date, start_date)"),
                       ("assessments", "date")):
        after = one(db, f"""select count(*) from {table} t join persons p using (person_id)
                            where p.death_date is not null and {col} > p.death_date""")
        assert after == 0, table
    for table, start in (("medications", "start_date"), ("enrolments", "start_date")):
        assert one(db, f"select count(*) from {table} where end_date < {start}") == 0
        assert one(db, f"select max({start}) from {table}") <= dt.date(2024, 12, 31)


def test_referential_integrity(db: duckdb.DuckDBPyConnection) -> None:
    assert one(db, "select count(*) - count(distinct contact_id) from contacts") == 0
    assert one(db, "select count(*) - count(distinct unit_id) from units") == 0
    for table in TABLES[2:]:
        assert one(db, f"select count(*) from {table} where person_id not in "
                       "(select person_id from persons)") == 0, table
        assert one(db, f"select count(*) from {table} where unit_id not in "
                       "(select unit_id from units)") == 0, table
    assert one(db, """select count(*) from procedures p join contacts c using (contact_id)
                      where p.person_id <> c.person_id or p.unit_id <> c.unit_id
                      or p.date <> c.date""") == 0
    assert one(db, """select count(*) from procedures where contact_id is not null
                      and contact_id not in (select contact_id from contacts)""") == 0
    unlinked = one(db, "select avg(case when contact_id is null then 1 else 0 end) "
                       "from procedures")
    assert 0.07 < unlinked < 0.13
    assert one(db, """select count(*) from procedures p where contact_id is null and not exists
                      (select 1 from contacts c where c.person_id = p.person_id
                       and c.unit_id = p.unit_id and c.date = p.date)""") == 0
    codes = {c for (c,) in db.execute("select distinct kva_code from procedures").fetchall()}
    assert {"AU119", "AU124", "DU119", "AU118", "AU006", "DU011", "DU118"} <= codes


def test_medications_and_enrolments(db: duckdb.DuckDBPyConnection) -> None:
    atc = dict(db.execute("select atc, count(*) from medications group by 1").fetchall())
    assert {"N07BB01", "N07BB03", "N07BB04", "N07BB05", "N07BC01", "N07BC02", "N07BC51",
            "V03AB15"} <= set(atc)
    assert any(code.startswith("N02AA") for code in atc)
    assert one(db, """select count(*) from medications m where atc like 'N07BC%' and not exists
                      (select 1 from enrolments e where e.person_id = m.person_id
                       and e.programme = 'laro')""") == 0
    assert one(db, """select count(*) from medications m where atc like 'N07BB%' and not exists
                      (select 1 from cx where cx.person_id = m.person_id and grp = 'F10')""") == 0
    programmes = dict(db.execute("select programme, count(*) from enrolments group by 1")
                      .fetchall())
    assert set(programmes) == {"laro", "vip-beroende", "rop"}
    assert one(db, """select count(*) from enrolments e where programme = 'laro' and not exists
                      (select 1 from contacts c where c.person_id = e.person_id
                       and replace(c.main_dx, '.', '') = 'F112')""") == 0
    reasons = {r for (r,) in db.execute("select distinct end_reason from enrolments "
                                        "where programme = 'laro'").fetchall()}
    assert {"dropout", "deceased", "completed", "involuntary_discharge"} <= reasons
    assert one(db, "select count(*) from enrolments where end_reason is not null "
                   "and end_date is null") == 0
    assert one(db, """select count(*) from enrolments e where programme = 'rop' and not exists
                      (select 1 from contacts c where c.person_id = e.person_id
                       and c.other_dx similar to '.*F(2|3|4|6|9).*')""") == 0


def test_assessments(db: duckdb.DuckDBPyConnection) -> None:
    bad = one(db, """select count(*) from assessments where
        (instrument = 'audit' and (greatest(item_1, item_2, item_3, item_4, item_5, item_6,
            item_7, item_8) > 4 or item_9 % 2 = 1 or item_10 % 2 = 1 or item_11 is not null
            or item_10 is null))
        or (instrument = 'audit-c' and (item_4 is not null or (item_1 > 0 and item_3 is null)))
        or (instrument = 'audit' and item_1 = 0 and item_2 is not null)
        or (instrument = 'dudit' and (item_10 % 2 = 1 or item_11 % 2 = 1 or item_11 is null))""")
    assert bad == 0
    assert {s for (s,) in db.execute("select distinct stage from assessments").fetchall()} == \
        {"intake", "month-6", "month-12", "discharge"}
    change = db.execute("""
        with t as (select person_id, stage, item_1 + coalesce(item_2, 0) + coalesce(item_3, 0)
                   + coalesce(item_4, 0) + coalesce(item_5, 0) + coalesce(item_6, 0)
                   + coalesce(item_7, 0) + coalesce(item_8, 0) + item_9 + item_10 as total
                   from assessments where instrument = 'audit')
        select avg(case when f.total < i.total then 1.0 else 0 end), count(*)
        from t i join t f on i.person_id = f.person_id
        where i.stage = 'intake' and f.stage = 'month-12'""").fetchone()
    assert change[1] > 100 and 0.55 < change[0] < 0.95


def test_planted_findings_are_visible(db: duckdb.DuckDBPyConnection, region: tuple) -> None:
    findings = region[1]["planted_findings"]
    rates = dict(db.execute("""
        with base as (select distinct unit_id, person_id, y from cx where grp like 'F1_'
                      and unit_id like 'ber-%'),
        au as (select distinct unit_id, person_id, year(date) y from procedures
               where kva_code = 'AU119')
        select b.unit_id, avg(case when a.person_id is null then 0.0 else 1 end)
        from base b left join au a using (unit_id, person_id, y) group by 1""").fetchall())
    under = findings["au119_under_coding"]["unit_id"]
    others = [v for k, v in rates.items() if k != under]
    assert rates[under] < 0.35 * min(others)

    gap = findings["kva_coding_gap"]
    per_year = dict(db.execute(f"""select year(date), count(*) from procedures
        where unit_id = '{gap['unit_id']}' group by 1""").fetchall())
    assert per_year.get(gap["year"], 0) == 0
    assert per_year[gap["year"] - 1] > 50 and per_year[gap["year"] + 1] > 50

    assert one(db, "select count(*) from contacts where main_dx is null "
                   "and contact_type <> 'social_services'") == 0  # the spec requires it
    vague = dict(db.execute("""select unit_id, avg(case when main_dx like 'Z71%' then 1.0
        else 0 end) from contacts where contact_type <> 'social_services' group by 1""")
        .fetchall())
    unit = findings["unspecific_main_dx"]["unit_id"]
    assert vague[unit] > 0.15 and max(v for k, v in vague.items() if k != unit) < 0.02

    retention = dict(db.execute("""select unit_id, avg(case when end_date is null or
        end_date >= start_date + 365 then 1.0 else 0 end) from enrolments
        where programme = 'laro' and start_date >= '2017-01-01' and start_date <= '2023-12-31'
        group by 1""").fetchall())
    low = findings["low_laro_retention"]["unit_id"]
    assert retention[low] < min(v for k, v in retention.items() if k != low) - 0.2

    followup = dict(db.execute("""select e.unit_id, count(distinct a.person_id) * 1.0
        / count(distinct e.person_id) from enrolments e left join assessments a
        on a.person_id = e.person_id and a.unit_id = e.unit_id and a.stage = 'month-6'
        where e.programme = 'vip-beroende' and e.start_date <= '2024-06-01'
        group by 1""").fetchall())
    low = findings["low_followup_completion"]["unit_id"]
    assert followup[low] < 0.5 * min(v for k, v in followup.items() if k != low)

    detox = dict(db.execute("""
        with stays as (select person_id, end_date from contacts where contact_type = 'inpatient'
                       and end_date <= '2024-12-01'),
        home as (select person_id, arg_max(unit_id, n) as clinic from (
                   select person_id, unit_id, count(*) n from contacts
                   where unit_id like 'ber-%' group by all) group by 1),
        seen as (select s.person_id, s.end_date, bool_or(c.date is not null) as hit
                 from stays s left join contacts c on c.person_id = s.person_id
                 and c.contact_type in ('outpatient', 'digital')
                 and c.date > s.end_date and c.date <= s.end_date + 30
                 group by all)
        select clinic, avg(case when hit then 1.0 else 0 end) from seen join home
        using (person_id) group by 1""").fetchall())
    slow = findings["slow_follow_up_after_detox"]["unit_id"]
    assert detox[slow] < min(v for k, v in detox.items() if k != slow) - 0.15


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, persons=1500, seed=3)
    generate(b, persons=1500, seed=3)
    generate(c, persons=1500, seed=4)
    for name in [*TABLES, "manifest"]:
        suffix = "json" if name == "manifest" else "csv"
        assert (a / f"{name}.{suffix}").read_bytes() == (b / f"{name}.{suffix}").read_bytes()
    assert (a / "persons.csv").read_bytes() != (c / "persons.csv").read_bytes()
    assert (a / "contacts.csv").read_bytes() != (c / "contacts.csv").read_bytes()


def test_parquet_and_csv_hold_the_same_rows(tmp_path: Path) -> None:
    generate(tmp_path / "csv", persons=1500, seed=5, fmt="csv")
    generate(tmp_path / "pq", persons=1500, seed=5, fmt="parquet")
    for name in TABLES:
        parquet = pq.read_table(tmp_path / "pq" / f"{name}.parquet")
        csv = pacsv.read_csv(tmp_path / "csv" / f"{name}.csv",
                             convert_options=pacsv.ConvertOptions(
                                 column_types=parquet.schema, strings_can_be_null=True))
        assert csv.schema.names == parquet.schema.names == COLUMNS[name]
        assert csv.equals(parquet), name
        for field in parquet.schema:
            if field.name.endswith("_id") or field.name.endswith("_code"):
                assert str(field.type) == "string"
            if field.name in ("date", "end_date", "start_date", "death_date"):
                assert str(field.type) == "date32[day]"


def test_cli_writes_an_extract(tmp_path: Path) -> None:
    from utfall.cli import app

    result = CliRunner().invoke(app, ["synth", "--persons", "400", "--seed", "2",
                                      "--format", "parquet", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x" / "contacts.parquet").exists()
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["synthetic"] is True and manifest["persons"] == 400


def test_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, persons=10, seed=1, fmt="xlsx")


def test_the_project_importer_accepts_the_extract(tmp_path: Path) -> None:
    """Contract test against the importer's validation (skipped if it is not there)."""
    validate = pytest.importorskip("utfall.interop.extract_validate")
    generate(tmp_path, persons=1500, seed=9)
    validated = validate.validate_extract(tmp_path, b"k" * 32, today=dt.date(2026, 1, 1))
    assert validated.synthetic is True
    assert validated.row_counts["contacts"] > 20_000


def test_progress_is_reported_up_to_done(tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []
    summary = generate(tmp_path, persons=300, seed=1, fmt="parquet",
                       progress=lambda step, fraction: seen.append((step, fraction)))
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and seen[-1] == ("done", 1.0)
    assert summary["rows"]["persons"] == 300 and summary["rows"]["contacts"] > 300 * 15


@pytest.mark.parametrize(("persons", "first", "last"), [(1, 2017, 2024), (7, 2017, 2024),
                                                         (300, 2020, 2021)])
def test_small_and_other_periods(tmp_path: Path, persons: int, first: int, last: int) -> None:
    summary = generate(tmp_path, persons=persons, seed=2, first_year=first, last_year=last)
    assert summary["rows"]["persons"] == persons
    con = duckdb.connect()
    span = con.execute(f"select min(date), max(date) from read_csv('{tmp_path}/contacts.csv')"
                       ).fetchone()
    assert dt.date(first, 1, 1) <= span[0] and span[1] <= dt.date(last, 12, 31)
