"""Signed audit checkpoints prove completeness (issue 13, part 4).

Each tampering an attacker with write access to the database (but not to the audit
key) can do — delete the last row, the last 20, all rows, rewrite a middle row and
recompute every later hash, delete a row and re-chain — makes ``utfall audit
verify`` exit 1, on SQLite and PostgreSQL; the untampered log verifies (exit 0).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
import time

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from utfall.access.audit import Actor, _digest, _fields, log_event
from utfall.access.checkpoint import (
    CheckpointRefused,
    prune_before,
    start_periodic,
    verify_store,
    write_checkpoint,
)
from utfall.cli import app
from utfall.config import Settings
from utfall.store.db import ensure_schema, get_engine

runner = CliRunner()
ALICE = Actor("alice", "clinician", None)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, settings: Settings, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    return request.getfixturevalue("pg_url")


def _log(engine: Engine, n: int, *, at: dt.datetime | None = None) -> None:
    with engine.begin() as conn:
        for i in range(n):
            log_event(conn, ALICE, "read", f"p{i % 7}", {"i": i},
                      at=(at + dt.timedelta(seconds=i)) if at else None)


@pytest.fixture
def store(url: str) -> Engine:
    """65 events, two checkpoints (the second covering all of them)."""
    engine = get_engine(url)
    ensure_schema(engine)
    _log(engine, 30)
    _log(engine, 30)
    assert runner.invoke(app, ["audit", "checkpoint", "--database", url]).exit_code == 0
    _log(engine, 5)
    result = runner.invoke(app, ["audit", "checkpoint", "--database", url])
    assert result.exit_code == 0, result.output
    return engine


def _verify(url: str):
    return runner.invoke(app, ["audit", "verify", "--database", url])


def _ids(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT id FROM audit_event ORDER BY id")).scalars())


def _rechain(engine: Engine) -> None:
    """What an attacker who knows the (public) algorithm does: recompute every hash."""
    with engine.begin() as conn:
        rows = conn.execute(text(
            "SELECT id, at, actor, role, unit_id, action, person_key, detail "
            "FROM audit_event ORDER BY id")).all()
        prev = "0" * 64
        for r in rows:
            at = r.at if isinstance(r.at, dt.datetime) else dt.datetime.fromisoformat(r.at)
            at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
            detail = r.detail if isinstance(r.detail, dict) else json.loads(r.detail)
            digest = _digest(prev, _fields(at, r.actor, r.role, r.unit_id, r.action,
                                           r.person_key, detail))
            conn.execute(text("UPDATE audit_event SET prev_hash = :p, hash = :h WHERE id = :i"),
                         {"p": prev, "h": digest, "i": r.id})
            prev = digest


def test_untampered_log_verifies(store: Engine, url: str) -> None:
    result = _verify(url)
    assert result.exit_code == 0, result.output
    assert "65" in result.output
    _log(store, 3)  # events after the last checkpoint are fine
    assert _verify(url).exit_code == 0


def test_delete_last_row(store: Engine, url: str) -> None:
    with store.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id = :i"), {"i": _ids(store)[-1]})
    result = _verify(url)
    assert result.exit_code == 1
    assert "1 are missing" in result.output


def test_delete_last_20_rows(store: Engine, url: str) -> None:
    with store.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id >= :i"), {"i": _ids(store)[-20]})
    result = _verify(url)
    assert result.exit_code == 1
    assert "20 are missing" in result.output


def test_delete_all_rows(store: Engine, url: str) -> None:
    with store.begin() as conn:
        conn.execute(text("DELETE FROM audit_event"))
    result = _verify(url)
    assert result.exit_code == 1
    assert "holds only 0 events" in result.output


def test_rewrite_middle_row_and_rechain(store: Engine, url: str) -> None:
    victim = _ids(store)[30]
    with store.begin() as conn:
        conn.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE id = :i"),
                     {"i": victim})
    _rechain(store)
    with store.connect() as conn:  # the chain itself is consistent again ...
        from utfall.access.review import verify_all

        assert verify_all(conn) == []
    result = _verify(url)  # ... but not what the checkpoints signed
    assert result.exit_code == 1
    assert "does not have the checkpointed hash" in result.output


def test_delete_middle_row_and_rechain(store: Engine, url: str) -> None:
    with store.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id = :i"), {"i": _ids(store)[10]})
    _rechain(store)
    result = _verify(url)
    assert result.exit_code == 1
    assert "are missing" in result.output


def test_forged_or_edited_checkpoint_is_detected(store: Engine, url: str,
                                                  settings: Settings) -> None:
    path = settings.effective_checkpoint_file
    lines = path.read_text().splitlines()
    record = json.loads(lines[-1])
    record["count"] -= 1  # e.g. to hide the deletion of the last row
    path.write_text("\n".join([*lines[:-1], json.dumps(record)]) + "\n")
    result = _verify(url)
    assert result.exit_code == 1
    assert "signature does not verify" in result.output


def test_no_checkpoint_means_unproven(settings: Settings, url: str) -> None:
    engine = get_engine(url)
    ensure_schema(engine)
    assert _verify(url).exit_code == 0  # empty log, nothing to prove
    _log(engine, 2)
    result = _verify(url)
    assert result.exit_code == 1
    assert "no signed checkpoint" in result.output


def test_checkpoint_refuses_to_bless_tampering(store: Engine, url: str) -> None:
    with store.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id = :i"), {"i": _ids(store)[-1]})
    _log(store, 2)  # new events hide the deleted count from a naive writer
    result = runner.invoke(app, ["audit", "checkpoint", "--database", url])
    assert result.exit_code == 1
    assert "does not extend the last checkpoint" in result.output
    assert _verify(url).exit_code == 1
    # a key holder can start over on purpose (e.g. after restoring a backup)
    result = runner.invoke(app, ["audit", "checkpoint", "--database", url,
                                 "--reanchor", "restored backup of 2026-12-01"])
    assert result.exit_code == 0, result.output
    assert _verify(url).exit_code == 0


def test_checkpoint_file_log_and_key(store: Engine, settings: Settings, caplog) -> None:
    path = settings.effective_checkpoint_file
    assert path.parent == settings.data_dir
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["count"] for r in records] == [60, 65]
    key = settings.effective_audit_key
    with store.connect() as conn:  # the key is nowhere in the database
        dump = " ".join(str(r) for r in conn.execute(text("SELECT * FROM audit_event")))
    assert key.decode() not in dump
    secrets = json.loads((settings.data_dir / "secrets.json").read_text())
    assert secrets["audit_key"] == key.decode()
    with caplog.at_level(logging.INFO, logger="utfall.audit"):
        record = write_checkpoint(store, "test", settings)
    assert record is not None and record["count"] == 65
    assert any(record["sig"] in m for m in caplog.messages)  # also in the application log


def test_prune_only_beyond_retention_and_bridged(settings: Settings, url: str) -> None:
    engine = get_engine(url)
    ensure_schema(engine)
    old = dt.datetime(2010, 1, 1, tzinfo=dt.UTC)
    _log(engine, 40, at=old)
    _log(engine, 10)
    with pytest.raises(CheckpointRefused, match="no signed checkpoint"):
        prune_before(engine, dt.date(2012, 1, 1), settings)
    write_checkpoint(engine, "test", settings)
    with pytest.raises(CheckpointRefused, match="kept 10 years"):
        prune_before(engine, dt.date.today(), settings)
    result = runner.invoke(app, ["audit", "prune", "--before", "2012-01-01",
                                 "--database", url])
    assert result.exit_code == 0, result.output
    assert "40" in result.output
    assert len(_ids(engine)) == 10
    checked = verify_store(engine, settings)
    assert checked.problems == [] and checked.total == 50 and checked.events == 10
    assert _verify(url).exit_code == 0
    _log(engine, 3)
    write_checkpoint(engine, "test", settings)
    assert _verify(url).exit_code == 0
    with engine.begin() as conn:  # deleting more than the signed prune point: detected
        conn.execute(text("DELETE FROM audit_event WHERE id = :i"), {"i": _ids(engine)[0]})
    result = _verify(url)
    assert result.exit_code == 1
    assert "signed prune point" in result.output


def test_scheduler_checkpoints_every_n_events(settings: Settings, sqlite_url: str) -> None:
    """The web app's scheduler writes a checkpoint once N events were logged."""
    engine = get_engine(sqlite_url)
    ensure_schema(engine)
    every = Settings(audit_checkpoint_every=5, audit_checkpoint_minutes=0)
    path = settings.effective_checkpoint_file

    def reasons() -> list[str]:
        if not path.exists():
            return []
        return [json.loads(line)["reason"] for line in path.read_text().splitlines() if line]

    def wait_for(reason: str) -> None:
        for _ in range(300):  # wait for the background thread (not a speed measurement)
            if reason in reasons():
                return
            time.sleep(0.1)

    _log(engine, 1)
    start_periodic(engine, every)
    wait_for("startup")  # the start-up checkpoint covers the event logged before start
    assert reasons() == ["startup"]
    for _ in range(6):
        _log(engine, 1)
    wait_for("periodic")
    record = json.loads(path.read_text().splitlines()[-1])
    assert record["reason"] == "periodic" and record["count"] >= 5
    assert verify_store(engine, settings).problems == []


def test_checkpoints_while_writers_append(url: str, settings: Settings) -> None:
    """Checkpoints taken during concurrent appends only ever cover a committed prefix:
    every one of them still verifies afterwards (PostgreSQL: commit-time appends under
    the advisory lock; SQLite: one writer at a time)."""
    import threading

    engine = get_engine(url)
    ensure_schema(engine)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(15):
                _log(engine, 3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for th in threads:
        th.start()
    taken = 0
    while any(th.is_alive() for th in threads):
        write_checkpoint(engine, "test", settings)
        taken += 1
    for th in threads:
        th.join()
    assert not errors, errors
    final = write_checkpoint(engine, "test", settings)
    assert final is not None and final["count"] == 4 * 15 * 3
    result = verify_store(engine, settings)
    assert result.problems == [] and result.total == 180
    assert taken >= 1


def test_import_and_export_batches_write_checkpoints(settings: Settings, sqlite_url: str,
                                                     tmp_path) -> None:
    from tests.foundation.extract_factory import write_extract
    from utfall.interop.extract_load import import_extract

    engine = get_engine(sqlite_url)
    import_extract(write_extract(tmp_path / "extract"), engine, settings=settings)
    result = runner.invoke(app, ["export-analytics", str(tmp_path / "out"),
                                 "--database", sqlite_url])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in
               settings.effective_checkpoint_file.read_text().splitlines()]
    assert [r["reason"] for r in records] == ["import", "export"]
    assert records[-1]["count"] == records[0]["count"] + 1  # the export event
    assert _verify(sqlite_url).exit_code == 0
