"""Import into the store: all-or-nothing, killed imports, idempotency, SQLite = PostgreSQL."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from tests.foundation.extract_factory import P1, P2, P3, P4, TABLES, write_extract
from utfall.access.audit import verify_chain
from utfall.cli import app
from utfall.config import Settings
from utfall.interop.extract_load import import_extract
from utfall.interop.extract_validate import ExtractRejected
from utfall.store.canonical import canonical_tables
from utfall.store.db import get_engine, table_names
from utfall.store.models import AuditEvent, Contact, ImportBatch, Person

DATA_TABLES = ("organisation", "unit", "person", "contact", "procedure", "medication",
               "enrolment", "assessment", "import_batch")


def _counts(url: str) -> dict[str, int]:
    engine = get_engine(url)
    if "person" not in table_names(engine):
        return dict.fromkeys(DATA_TABLES, 0)
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in DATA_TABLES}


def _snapshot(url: str) -> dict[str, list]:
    """Canonical tables as sorted row lists (comparable across databases)."""
    tables = canonical_tables(get_engine(url))
    return {name: sorted(map(str, t.to_pylist())) for name, t in tables.items()}


def test_import_then_canonical_tables(tmp_path: Path, settings: Settings, sqlite_url: str) -> None:
    result = import_extract(write_extract(tmp_path / "x"), get_engine(sqlite_url),
                            settings=settings)
    assert result.row_counts["contacts"] == 6
    tables = canonical_tables(get_engine(sqlite_url))
    assert tables["person"].num_rows == 4
    assert sorted(tables["person"]["birth_year"].to_pylist()) == [1980, 1985, 1990, 2002]
    contact = {r["contact_id"]: r for r in tables["contact"].to_pylist()}
    assert contact["C4"]["end_date"].isoformat() == "2020-11-27"
    unit = {r["unit_id"]: r for r in tables["unit"].to_pylist()}
    assert unit["S1"]["principal_type"] == "municipality"
    assert unit["S1"]["organisation"] == "Malmö stad"


def test_rejected_folder_writes_nothing(tmp_path: Path, settings: Settings,
                                        sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    import_extract(write_extract(tmp_path / "good"), engine, settings=settings)
    before = _counts(sqlite_url)
    tables = copy.deepcopy(TABLES)
    tables["contacts"].append({**tables["contacts"][0], "contact_id": "C7",
                               "date": "2030-01-01"})
    tables["units"].append({**tables["units"][0], "unit_id": "NEW"})
    with pytest.raises(ExtractRejected):
        import_extract(write_extract(tmp_path / "bad", tables), engine, settings=settings)
    assert _counts(sqlite_url) == before


def test_failure_during_load_rolls_back(tmp_path: Path, settings: Settings, sqlite_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import utfall.interop.extract_load as load

    def boom(name: str) -> None:
        if name == "after-procedures":
            raise RuntimeError("disk full")

    monkeypatch.setattr(load, "_checkpoint", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        import_extract(write_extract(tmp_path / "x"), get_engine(sqlite_url), settings=settings)
    assert _counts(sqlite_url) == dict.fromkeys(DATA_TABLES, 0)


@pytest.mark.parametrize("pause_at", ["after-contacts", "before-commit"])
def test_killed_import_leaves_nothing(tmp_path: Path, settings: Settings, sqlite_url: str,
                                      pause_at: str) -> None:
    folder = write_extract(tmp_path / "x")
    env = {**os.environ, "UTFALL_DATABASE_URL": sqlite_url, "UTFALL_IMPORT_PAUSE_AT": pause_at}
    proc = subprocess.Popen([sys.executable, "-m", "utfall", "import", str(folder)], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "utfall-import-paused-at" in line or proc.poll() is not None:
            break
    assert f"utfall-import-paused-at {pause_at}" in line
    # rows were written inside the open transaction; now the process dies hard
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _counts(sqlite_url) == dict.fromkeys(DATA_TABLES, 0)
    # and the store is healthy afterwards: the same folder imports fine
    import_extract(folder, get_engine(sqlite_url), settings=settings)
    assert _counts(sqlite_url)["contact"] == 6


def test_reimport_is_idempotent(tmp_path: Path, settings: Settings, sqlite_url: str) -> None:
    folder = write_extract(tmp_path / "x")
    engine = get_engine(sqlite_url)
    import_extract(folder, engine, settings=settings)
    first = _snapshot(sqlite_url)
    counts = _counts(sqlite_url)
    import_extract(folder, engine, settings=settings)
    assert _snapshot(sqlite_url) == first
    again = _counts(sqlite_url)
    assert again.pop("import_batch") == 2  # the log of imports grows, nothing else
    counts.pop("import_batch")
    assert again == counts


def test_reimport_updates_changed_rows(tmp_path: Path, settings: Settings,
                                       sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    import_extract(write_extract(tmp_path / "a"), engine, settings=settings)
    tables = copy.deepcopy(TABLES)
    tables["contacts"][0]["main_dx"] = "F11.2"
    tables["persons"][1]["death_date"] = "2024-01-01"
    import_extract(write_extract(tmp_path / "b", tables), engine, settings=settings)
    with engine.connect() as conn:
        assert conn.execute(select(Contact.dx_group).where(Contact.contact_id == "C1")
                            ).scalar_one() == "F11"
        assert conn.execute(select(func.count()).select_from(Person)).scalar_one() == 4


def test_ten_and_twelve_digit_forms_are_the_same_person_across_imports(
        tmp_path: Path, settings: Settings, sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    import_extract(write_extract(tmp_path / "a"), engine, settings=settings)
    tables = copy.deepcopy(TABLES)
    for table in tables.values():
        for row in table:
            if "person_id" in row and row["person_id"] == P1:
                row["person_id"] = P1[2:]  # YYMMDD-NNNN
    import_extract(write_extract(tmp_path / "b", tables), engine, settings=settings)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Person)).scalar_one() == 4


def test_identity_numbers_are_encrypted_at_rest(tmp_path: Path, settings: Settings,
                                                sqlite_url: str) -> None:
    import_extract(write_extract(tmp_path / "x"), get_engine(sqlite_url), settings=settings)
    raw = Path(sqlite_url.removeprefix("sqlite:///")).read_bytes()
    wal = Path(sqlite_url.removeprefix("sqlite:///") + "-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    for number in (P1, P2, P3, P4):
        digits = number.replace("-", "")
        assert digits.encode() not in raw and digits[2:].encode() not in raw
    from utfall.access.pseudonym import IdentityVault

    vault = IdentityVault(settings.effective_encryption_key)
    with get_engine(sqlite_url).connect() as conn:
        tokens = conn.execute(select(Person.pnr_encrypted)).scalars().all()
    assert sorted(vault.decrypt(t) for t in tokens) == sorted(
        n.replace("-", "") for n in (P1, P2, P3, P4))


def test_import_is_audit_logged_in_a_valid_chain(tmp_path: Path, settings: Settings,
                                                 sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    folder = write_extract(tmp_path / "x")
    import_extract(folder, engine, settings=settings)
    import_extract(folder, engine, settings=settings)
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [r.action for r in rows] == ["import", "import"]
        assert verify_chain(rows) == []
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET detail = '{}' WHERE id = 1"))
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [p.event_id for p in verify_chain(rows)] == [1]


@pytest.mark.postgres
def test_sqlite_and_postgres_store_the_same_data(tmp_path: Path, settings: Settings,
                                                 sqlite_url: str, pg_url: str) -> None:
    folder = write_extract(tmp_path / "x")
    for url in (sqlite_url, pg_url):
        import_extract(folder, get_engine(url), settings=settings)
        import_extract(folder, get_engine(url), settings=settings)  # idempotent on both
    assert _snapshot(sqlite_url) == _snapshot(pg_url)
    assert _counts(sqlite_url) == _counts(pg_url)


@pytest.mark.postgres
def test_postgres_rejected_and_failed_imports_write_nothing(
        tmp_path: Path, settings: Settings, pg_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import utfall.interop.extract_load as load

    def boom(name: str) -> None:
        if name == "after-enrolments":
            raise RuntimeError("connection lost")

    monkeypatch.setattr(load, "_checkpoint", boom)
    with pytest.raises(RuntimeError):
        import_extract(write_extract(tmp_path / "x"), get_engine(pg_url), settings=settings)
    assert _counts(pg_url) == dict.fromkeys(DATA_TABLES, 0)


def test_cli_exit_codes_and_error_lines(tmp_path: Path, settings: Settings,
                                        sqlite_url: str) -> None:
    runner = CliRunner()
    good = write_extract(tmp_path / "good")
    result = runner.invoke(app, ["import", str(good), "--database", sqlite_url])
    assert result.exit_code == 0, result.output
    tables = copy.deepcopy(TABLES)
    tables["contacts"][1]["unit_id"] = "NOPE"
    bad = write_extract(tmp_path / "bad", tables)
    result = runner.invoke(app, ["import", str(bad), "--database", sqlite_url])
    assert result.exit_code == 1
    assert "contacts.csv:3: unit_id: no unit 'NOPE' in units" in result.stderr
    result = runner.invoke(app, ["import", str(tmp_path / "missing"), "--database", sqlite_url])
    assert result.exit_code == 2
    result = runner.invoke(app, ["import", str(good), "--no-such-flag"])
    assert result.exit_code == 2


def test_export_analytics_contract(tmp_path: Path, settings: Settings, sqlite_url: str) -> None:
    runner = CliRunner()
    folder = write_extract(tmp_path / "x")
    assert runner.invoke(app, ["import", str(folder), "--database", sqlite_url]).exit_code == 0
    out = tmp_path / "analytics"
    result = runner.invoke(app, ["export-analytics", str(out), "--database", sqlite_url])
    assert result.exit_code == 0, result.output
    expected = {"person", "unit", "contact", "procedure", "medication", "enrolment",
                "assessment"}
    assert {p.stem for p in out.glob("*.parquet")} == expected
    for path in out.glob("*.parquet"):
        table = pq.read_table(path)
        if path.stem not in ("unit",):
            assert "person_key" in table.column_names
        assert not {"person_id", "pnr", "pnr_encrypted"} & set(table.column_names)
        blob = path.read_bytes() + str(table.to_pylist()).encode()
        for number in (P1, P2, P3, P4):
            digits = number.replace("-", "")
            assert digits.encode() not in blob and digits[2:].encode() not in blob
    person = pq.read_table(out / "person.parquet")
    assert person.schema.field("birth_year").type == pa.int32()
    with get_engine(sqlite_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(ImportBatch)).scalar_one() == 1
        actions = conn.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars()
        assert list(actions) == ["import", "export"]
