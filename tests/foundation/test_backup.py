"""``utfall db backup`` / ``db restore`` on SQLite and PostgreSQL (issue 15, part 6).

Backup → restore into a fresh store → the row count of every table equals the
source's (counted with plain SQL on both) and ``utfall audit verify`` passes; a
non-empty store is refused without ``--force``.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from tests.conftest import PG_ADMIN_URL
from tests.web.factory import SYSTEM, build_world
from utfall.care import record_assessment
from utfall.cli import app
from utfall.store.db import _engine_for, get_engine

runner = CliRunner()
ANSWERS = {"item_1": 2, "item_2": 1, "item_3": 1}


def _counts(url: str) -> dict[str, int]:
    """Rows per table, counted independently of the backup module."""
    engine = create_engine(url)
    try:
        names = [n for n in inspect(engine).get_table_names() if n != "alembic_version"]
        with engine.connect() as conn:
            return {n: conn.execute(text(f'SELECT count(*) FROM "{n}"')).scalar_one()
                    for n in sorted(names)}
    finally:
        engine.dispose()


def _add_assessments(url: str, key: str, n: int) -> None:
    engine = get_engine(url)
    for _ in range(n):
        with engine.begin() as conn:
            record_assessment(conn, SYSTEM, key, "audit-c", ANSWERS, unit_id="reg-ber",
                              on_date=dt.date(2026, 5, 4), source="capture")


def _round_trip(source_url: str, target_url: str, out: Path) -> None:
    before = _counts(source_url)
    assert before["audit_event"] > 0 and before["assessment"] > 0
    result = runner.invoke(app, ["db", "backup", str(out), "--database", source_url])
    assert result.exit_code == 0, result.output
    assert out.exists() and out.stat().st_size > 0
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    again = runner.invoke(app, ["db", "backup", str(out), "--database", source_url])
    assert again.exit_code == 1  # never overwrites an earlier backup

    result = runner.invoke(app, ["db", "restore", str(out), "--database", target_url])
    assert result.exit_code == 0, result.output
    assert _counts(target_url) == before
    verify = runner.invoke(app, ["audit", "verify", "--database", target_url])
    assert verify.exit_code == 0, verify.output

    # the restored store now holds data: refused without --force, and left as it was
    refused = runner.invoke(app, ["db", "restore", str(out), "--database", target_url])
    assert refused.exit_code == 1
    assert "--force" in refused.output
    assert _counts(target_url) == before
    forced = runner.invoke(app, ["db", "restore", str(out), "--force",
                                 "--database", target_url])
    assert forced.exit_code == 0, forced.output
    assert _counts(target_url) == before


def test_sqlite_backup_restore(settings, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    world = build_world(source)
    _add_assessments(source, world.keys["region"], 5)
    _round_trip(source, f"sqlite:///{tmp_path / 'fresh' / 'target.db'}", tmp_path / "b.sqlite")


def test_sqlite_online_backup_during_writes(settings, tmp_path: Path) -> None:
    """A backup taken while another thread writes is a consistent snapshot."""
    source = f"sqlite:///{tmp_path / 'source.db'}"
    world = build_world(source)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            _add_assessments(source, world.keys["both"], 1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = runner.invoke(app, ["db", "backup", str(tmp_path / "live.sqlite"),
                                     "--database", source])
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    assert runner.invoke(app, ["db", "restore", str(tmp_path / "live.sqlite"),
                               "--database", target]).exit_code == 0
    counts = _counts(target)
    assert counts["assessment"] == counts["care_assessment"]  # no half-written request
    assert runner.invoke(app, ["audit", "verify", "--database", target]).exit_code == 0


def test_restore_detects_audit_events_removed_from_the_backup(settings, tmp_path: Path
                                                             ) -> None:
    """The last events cut from a backup keep the chain valid, but not the signed count."""
    import sqlite3

    source = f"sqlite:///{tmp_path / 'source.db'}"
    build_world(source)
    out = tmp_path / "b.sqlite"
    assert runner.invoke(app, ["db", "backup", str(out), "--database", source]).exit_code == 0
    assert (tmp_path / "b.sqlite.manifest.json").exists()
    with sqlite3.connect(out) as conn:
        conn.execute("DELETE FROM audit_event WHERE id = (SELECT max(id) FROM audit_event)")
    result = runner.invoke(app, ["db", "restore", str(out), "--database",
                                 f"sqlite:///{tmp_path / 'target.db'}"])
    assert result.exit_code == 1
    assert "signed at backup time" in result.output


def test_restore_refuses_a_foreign_file(settings, tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-backup.bin"
    bogus.write_bytes(b"hello")
    result = runner.invoke(app, ["db", "restore", str(bogus), "--database",
                                 f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 1
    assert "not an Utfall backup" in result.output


@pytest.fixture
def pg_url2() -> Iterator[str]:
    """A second fresh PostgreSQL database (the restore target)."""
    name = f"utfall_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        yield url
    finally:
        _engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_backup_restore(settings, pg_url: str, pg_url2: str, tmp_path: Path) -> None:
    world = build_world(pg_url)
    _add_assessments(pg_url, world.keys["region"], 5)
    _round_trip(pg_url, pg_url2, tmp_path / "b.pgdump")
