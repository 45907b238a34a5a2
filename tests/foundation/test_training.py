"""Training catalogue (data) and staff training records imported from CSV."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from utfall.analytics.training import (
    TrainingImportError,
    courses_next_to,
    import_training,
    load_courses,
    training_shares,
)
from utfall.cli import app
from utfall.store.db import ensure_schema, get_engine


@pytest.fixture
def engine(tmp_path: Path):
    from utfall.store.models import Organisation, Unit

    eng = get_engine(f"sqlite:///{tmp_path / 'store.db'}")
    ensure_schema(eng)
    with eng.begin() as conn:
        conn.execute(insert(Organisation), [{"id": 1, "name": "Region",
                                             "principal_type": "region"}])
        conn.execute(insert(Unit), [
            {"unit_id": "ber-a", "name": "Beroende A", "organisation_id": 1,
             "care_level": "specialist"},
            {"unit_id": "ber-b", "name": "Beroende B", "organisation_id": 1,
             "care_level": "specialist"}])
    yield eng
    eng.dispose()


def test_catalogue_places_courses_next_to_indicators() -> None:
    ids = {c.id for c in load_courses()}
    assert {"mi", "met", "ap", "substance_analysis", "laro_basics", "naloxone"} <= ids
    assert [c.id for c in courses_next_to("kva_du119")] == ["ap"]
    assert {c.id for c in courses_next_to("kva_au119")} == {"mi", "met"}
    ap = next(c for c in load_courses() if c.id == "ap")
    assert ap.title["sv"] == "Återfallsprevention (ÅP)"


def test_import_and_shares(engine, tmp_path: Path) -> None:
    f = tmp_path / "staff.csv"
    f.write_text("unit_id,staff_ref,course_id,completed_on\n"
                 "ber-a,S1,ap,2024-01-10\nber-a,S1,mi,2023-03-01\nber-a,S2,,\n"
                 "ber-a,S3,ap,\nber-b,S9,met,2022-09-09\n", encoding="utf-8")
    assert import_training(engine, f) == 5
    with engine.connect() as conn:
        shares = training_shares(conn)
    assert shares["ber-a"]["ap"] == (2, 3)  # S1, S3 of S1 S2 S3
    assert shares["ber-a"]["mi"] == (1, 3)
    assert shares["ber-b"]["met"] == (1, 1) and shares["ber-b"]["ap"] == (0, 1)
    # a new file replaces the snapshot
    f.write_text("unit_id,staff_ref,course_id,completed_on\nber-b,S9,ap,2024-01-01\n",
                 encoding="utf-8")
    assert import_training(engine, f) == 1
    with engine.connect() as conn:
        assert set(training_shares(conn)) == {"ber-b"}


def test_errors_name_file_line_column_and_nothing_is_loaded(engine, tmp_path: Path) -> None:
    from utfall.store.models_training import TrainingRecord

    good = tmp_path / "good.csv"
    good.write_text("unit_id,staff_ref,course_id,completed_on\nber-a,S1,ap,2024-01-10\n",
                    encoding="utf-8")
    import_training(engine, good)
    bad = tmp_path / "bad.csv"
    bad.write_text("unit_id,staff_ref,course_id,completed_on\n"
                   "ber-a,S1,ap,2024-01-10\n"
                   "nope,S2,ap,2024-01-10\n"
                   "ber-a,197001011234,mi,\n"
                   "ber-a,S4,yoga,\n"
                   "ber-a,S5,met,10/1/2024\n"
                   "ber-a,S6,,2024-01-01\n", encoding="utf-8")
    with pytest.raises(TrainingImportError) as err:
        import_training(engine, bad)
    assert err.value.errors == [
        "bad.csv:3: unit_id: unknown unit 'nope'",
        "bad.csv:4: staff_ref: looks like a personal identity number; use the region's "
        "pseudonymous staff reference",
        "bad.csv:5: course_id: unknown course 'yoga' (known: ap, laro_basics, met, mi, "
        "naloxone, substance_analysis)",
        "bad.csv:6: completed_on: not a date (YYYY-MM-DD): '10/1/2024'",
        "bad.csv:7: completed_on: given without a course_id",
    ]
    with engine.connect() as conn:  # the earlier snapshot is untouched
        assert conn.execute(select(func.count()).select_from(TrainingRecord)).scalar() == 1
    missing = tmp_path / "missing.csv"
    missing.write_text("unit_id,course_id\nber-a,ap\n", encoding="utf-8")
    with pytest.raises(TrainingImportError) as err:
        import_training(engine, missing)
    assert err.value.errors == ["missing.csv:1: staff_ref: column missing from the header",
                                "missing.csv:1: completed_on: column missing from the header"]


def test_cli_import(engine, tmp_path: Path) -> None:
    url = str(engine.url)
    f = tmp_path / "t.csv"
    f.write_text("unit_id;staff_ref;course_id;completed_on\nber-a;S1;naloxone;2024-05-05\n",
                 encoding="utf-8")
    res = CliRunner().invoke(app, ["training", "import", str(f), "--database", url])
    assert res.exit_code == 0, res.output
    assert "1 rader" in res.output
    f.write_text("unit_id;staff_ref;course_id;completed_on\nber-x;S1;ap;\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["training", "import", str(f), "--database", url])
    assert res.exit_code == 1
    assert "t.csv:2: unit_id: unknown unit 'ber-x'" in res.output
