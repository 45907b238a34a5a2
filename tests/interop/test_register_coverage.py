"""Register coverage indicators on a hand-worked fixture (three persons, two units)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert

from tests.web.factory import build_world
from utfall.interop.register import load_mapping
from utfall.interop.register.coverage import (
    FOLLOWUP_12M,
    NEW_WITHIN_30D,
    coverage,
    disclosed_coverage,
)
from utfall.store.models import Contact
from utfall.store.models_register import RegisterDelivery, RegisterExport

AS_OF = dt.date(2026, 6, 1)
UTC = dt.UTC


@pytest.fixture
def world(settings, sqlite_url, monkeypatch):
    monkeypatch.setenv("UTFALL_DATABASE_URL", sqlite_url)
    from utfall.config import get_settings

    get_settings.cache_clear()
    w = build_world(sqlite_url)
    k = w.keys
    visits = [  # (person, unit, dx, date): the 2nd visit within 90 days establishes
        ("region", "reg-ber", "F10", dt.date(2025, 1, 10)),
        ("region", "reg-ber", "F10", dt.date(2025, 2, 1)),    # established 2025-02-01
        ("both", "reg-ber", "F12", dt.date(2025, 5, 1)),
        ("both", "reg-ber", "F12", dt.date(2025, 6, 15)),     # established 2025-06-15
        ("soc", "reg-laro", "F11", dt.date(2025, 11, 1)),
        ("soc", "reg-laro", "F11", dt.date(2025, 11, 20)),    # established 2025-11-20
        ("soc", "reg-ber", "F11", dt.date(2025, 1, 5)),
        ("soc", "reg-ber", "F11", dt.date(2025, 6, 5)),       # 151 days apart: not established
    ]
    sent = [  # (form, person, unit, delivered, rejected)
        ("new_registration", "region", "reg-ber", dt.date(2025, 2, 20), False),  # day 19: in time
        ("new_registration", "both", "reg-ber", dt.date(2025, 7, 31), False),    # day 46: late
        ("new_registration", "soc", "reg-laro", dt.date(2025, 11, 25), True),    # rejected
        ("followup_12", "region", "reg-ber", dt.date(2026, 2, 15), False),
    ]
    with w.engine.begin() as conn:
        for n, (who, unit, dx, day) in enumerate(visits):
            conn.execute(insert(Contact).values(
                contact_id=f"cov{n}", person_key=k[who], unit_id=unit, date=day,
                contact_type="outpatient", main_dx=dx + ".2", dx_group=dx))
        conn.execute(insert(RegisterExport).values(
            export_id="x1", register="sbr", mapping_version="0.1", mode="full", as_of=AS_OF,
            format="json", created_at=dt.datetime(2025, 2, 20, tzinfo=UTC), forms=4,
            manifest_sha256="0" * 64))
        for n, (form, who, unit, day, rejected) in enumerate(sent):
            conn.execute(insert(RegisterDelivery).values(
                export_id="x1", register="sbr", form_key=f"f{n}", form=form,
                person_key=k[who], unit_id=unit, trigger_date=day, content_hash="h",
                operation="new", rejected=rejected,
                delivered_at=dt.datetime.combine(day, dt.time(12), tzinfo=UTC)))
    return w


def test_hand_worked_coverage(world) -> None:
    k = world.keys
    with world.engine.connect() as conn:
        result = coverage(conn, load_mapping("sbr"), AS_OF)
    cells = {(r["indicator_id"], r["period"], r["breakdown"], r["level"]):
             (r["numerator"], r["denominator"]) for r in result.rows}
    assert cells == {
        (NEW_WITHIN_30D, "2025", "unit_id", "reg-ber"): (1, 2),
        (NEW_WITHIN_30D, "2025", "unit_id", "reg-laro"): (0, 1),
        (NEW_WITHIN_30D, "2025", "total", ""): (1, 3),
        # region due 2026-02-01; both (2026-06-15) and soc (2026-11-20) not yet due
        (FOLLOWUP_12M, "2026", "unit_id", "reg-ber"): (1, 1),
        (FOLLOWUP_12M, "2026", "total", ""): (1, 1),
    }
    assert result.missing[(NEW_WITHIN_30D, "2025", "reg-ber")] == [k["both"]]
    assert result.missing[(NEW_WITHIN_30D, "2025", "reg-laro")] == [k["soc"]]
    assert result.missing[(FOLLOWUP_12M, "2026", "reg-ber")] == []
    values = {(r["indicator_id"], r["level"]): r["value"] for r in result.rows
              if r["period"] == "2025"}
    assert values[(NEW_WITHIN_30D, "reg-ber")] == pytest.approx(0.5)


def test_coverage_is_disclosure_controlled(world) -> None:
    with world.engine.connect() as conn:
        table = disclosed_coverage(conn, load_mapping("sbr"), AS_OF)
    for row in table.to_pylist():
        for col in ("numerator", "denominator"):
            assert row[col] is None or row[col] == 0 or row[col] >= 5, row
        assert row["suppressed"]  # every cell of this tiny fixture is small


def test_cli_coverage_shows_display_values_only(world) -> None:
    import json

    from typer.testing import CliRunner

    from utfall.cli import app

    r = CliRunner().invoke(app, ["register", "coverage", "--register", "sbr",
                                 "--as-of", AS_OF.isoformat()])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert {row["indicator_id"] for row in rows} == {NEW_WITHIN_30D, FOLLOWUP_12M}
    assert all("numerator" not in row for row in rows)
    assert all(row["numerator_display"] in ("", "0", "<5", "..") for row in rows)


def test_coverage_indicators_are_catalogue_data() -> None:
    from utfall.analytics.semantics.catalogue import load_catalogue

    catalogue = load_catalogue()
    assert [i.id for i in catalogue.external if i.source == "register_coverage"] == [
        NEW_WITHIN_30D, FOLLOWUP_12M]
    one = catalogue.describe(NEW_WITHIN_30D)
    assert one.title.sv.startswith("Kvalitetsregister") and one.target == 0.9
    with pytest.raises(KeyError):  # the engine never gets an external indicator
        catalogue.get(NEW_WITHIN_30D)


def test_stored_run_protects_coverage_with_everything_else(world, tmp_path) -> None:
    """The coverage cells join the release before disclosure control: the stored run
    has every cell ``coverage()`` computes, masked by the same rules (here all small)."""
    from utfall.analytics.executor.run import data_span
    from utfall.analytics.regional import tables_from_arrow
    from utfall.analytics.runs import compute_and_store
    from utfall.store.canonical import canonical_tables

    run = compute_and_store(world.engine, tmp_path / "runs")
    as_of = data_span(tables_from_arrow(canonical_tables(world.engine)))[1]
    with world.engine.connect() as conn:
        raw = coverage(conn, load_mapping("sbr"), as_of).rows
    stored = [r for r in run.results.to_pylist()
              if r["indicator_id"] in (NEW_WITHIN_30D, FOLLOWUP_12M)]
    key = ("indicator_id", "period", "breakdown", "level")
    assert raw and {tuple(r[c] for c in key) for r in stored} == {
        tuple(r[c] for c in key) for r in raw}
    by_key = {tuple(r[c] for c in key): r for r in stored}
    for r in raw:
        shown = by_key[tuple(r[c] for c in key)]
        for col in ("numerator", "denominator"):
            small = 0 < r[col] < 5
            assert (shown[col] is None) if small else shown[col] in (None, r[col]), (r, shown)


def test_cli_coverage_without_cut_off_reads_the_stored_run(world) -> None:
    import json

    from typer.testing import CliRunner

    from utfall.analytics.runs import latest_results
    from utfall.cli import app

    r = CliRunner().invoke(app, ["register", "coverage", "--register", "sbr"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    stored = latest_results(world.engine, compute=False)
    assert stored is not None  # the command stored the run it showed
    expected = [{k: row[k] for k in ("indicator_id", "period", "breakdown", "level",
                                     "numerator_display")}
                for row in stored.to_pylist()
                if row["indicator_id"] in (NEW_WITHIN_30D, FOLLOWUP_12M)]
    def order(r: dict) -> tuple:
        return tuple(str(v) for v in r.values())

    assert rows and sorted(({k: row[k] for k in expected[0]} for row in rows),
                           key=order) == sorted(expected, key=order)
