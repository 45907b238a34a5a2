"""Backup and restore of the operational store (``utfall db backup`` / ``db restore``).

- SQLite: the online backup API (``sqlite3.Connection.backup``) copies a consistent
  snapshot while the app keeps running; the backup is itself an SQLite database file.
- PostgreSQL: ``pg_dump --format=custom`` / ``pg_restore`` (a consistent snapshot too;
  the password, if any, goes to the tools through ``PGPASSWORD``, never the command line).

Audit completeness survives the round trip: a backup first writes a signed audit
checkpoint of the source store (``utfall.access.checkpoint``) and keeps it in a manifest
next to the backup (``OUT.manifest.json``). A restore refuses a store that already holds
rows unless ``force`` is given, brings the restored store to the current migrations,
verifies the hash chain and that it still reaches the checkpointed event with the signed
hash (the checkpoint must be in the checkpoint file of this data folder, i.e. signed
with this audit key), and only then re-anchors the checkpoints of the restored store, so
``utfall audit verify`` proves it complete from there.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, func, select, table
from sqlalchemy.engine import make_url

from utfall.store.db import ensure_schema, get_engine, table_names

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
SKIP_TABLES = frozenset({"alembic_version"})


class BackupError(RuntimeError):
    """A backup or restore that could not be done (the message says why)."""


class StoreNotEmpty(BackupError):
    """The target store holds data and ``force`` was not given."""


@dataclass
class BackupResult:
    """What a backup or restore did."""

    path: Path
    kind: str  # "sqlite" | "postgresql"
    row_counts: dict[str, int] = field(default_factory=dict)
    audit_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def manifest_path(backup_file: Path) -> Path:
    """The manifest written next to a backup."""
    return backup_file.with_name(backup_file.name + ".manifest.json")


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table of the store (without Alembic's bookkeeping)."""
    counts: dict[str, int] = {}
    names = sorted(table_names(engine) - SKIP_TABLES)
    with engine.connect() as conn:
        for name in names:
            counts[name] = conn.execute(select(func.count()).select_from(table(name))
                                        ).scalar_one()
    return counts


def _kind(url: str) -> str:
    if url.startswith("sqlite"):
        return "sqlite"
    if url.startswith("postgresql"):
        return "postgresql"
    raise BackupError(f"backup supports SQLite and PostgreSQL, not {url.split(':', 1)[0]}")


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite store cannot be backed up")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment carrying it."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (PostgreSQL client tools are needed)")
    return path


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()][-5:]
        raise BackupError(f"{Path(args[0]).name} failed: " + " | ".join(lines))


def backup(out: Path, url: str | None = None) -> BackupResult:
    """Write a consistent copy of the store to ``out`` (a new file)."""
    engine = get_engine(url)
    url = engine.url.render_as_string(hide_password=False)
    kind = _kind(url)
    out = Path(out)
    if out.exists():
        raise BackupError(f"{out} exists already; choose a new file")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    notes: list[str] = []
    checkpoint = _checkpoint_before_backup(engine, notes)
    counts = row_counts(engine)
    try:
        if kind == "sqlite":
            source = sqlite3.connect(_sqlite_path(url))
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
        else:
            dsn, env = _libpq(url)
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                  f"--file={partial}", f"--dbname={dsn}"], env)
        os.chmod(partial, 0o600)  # the backup holds encrypted identities and the audit log
        partial.rename(out)
    finally:
        partial.unlink(missing_ok=True)
    from utfall.access.checkpoint import store_id

    manifest = {"v": 1, "kind": kind, "file": out.name, "source_store": store_id(engine),
                "made_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "row_counts_before": counts, "checkpoint": checkpoint}
    fd = os.open(manifest_path(out), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
    return BackupResult(out, kind, counts, notes=notes)


def _checkpoint_before_backup(engine: Engine, notes: list[str]) -> dict | None:
    """Sign a checkpoint of the source's audit log (the backup will contain it)."""
    from utfall.access.checkpoint import CheckpointRefused, write_checkpoint

    try:
        return write_checkpoint(engine, "backup")
    except CheckpointRefused as exc:  # still make the backup: it is evidence too
        notes.append(f"no checkpoint before the backup: {exc}")
    except OSError as exc:
        notes.append(f"no checkpoint before the backup (checkpoint file: {exc})")
    return None


def backup_kind(path: Path) -> str:
    """``sqlite`` or ``postgresql`` from the file's first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_MAGIC):
        return "postgresql"
    raise BackupError(f"{path.name} is not an Utfall backup (neither SQLite nor pg_dump)")


def is_empty(engine: Engine) -> bool:
    """Whether the store holds no rows (tables of a fresh ``db upgrade`` are fine)."""
    return not any(row_counts(engine).values())


def restore(source: Path, url: str | None = None, *, force: bool = False) -> BackupResult:
    """Restore the backup ``source`` into the store; returns counts and chain problems.

    Raises :class:`StoreNotEmpty` when the store holds rows and ``force`` is false.
    """
    engine = get_engine(url)
    url = engine.url.render_as_string(hide_password=False)
    kind = _kind(url)
    source = Path(source)
    found = backup_kind(source)
    if found != kind:
        raise BackupError(f"{source.name} is a {found} backup; the store is {kind}")
    if not force and not is_empty(engine):
        raise StoreNotEmpty("the store is not empty; give --force to replace it")
    if kind == "sqlite":
        _restore_sqlite(source, _sqlite_path(url))
    else:
        _restore_pg(source, engine, url)
    engine.dispose()  # pooled connections may have seen the old content
    ensure_schema(engine)  # a backup made by older code is brought up to date
    result = BackupResult(source, kind, row_counts(engine), audit_problems(engine))
    if not result.audit_problems:
        _reanchor(engine, source, result)
    return result


def _reanchor(engine: Engine, source: Path, result: BackupResult) -> None:
    """Check the restored log against the backup's signed checkpoint, then start the
    restored store's checkpoints from it (``audit verify`` then proves completeness)."""
    from utfall.access.checkpoint import read_records, write_checkpoint
    from utfall.config import get_settings

    path = manifest_path(source)
    if not path.exists():
        result.notes.append(f"no manifest {path.name}: the restored log is checked by its "
                            "hash chain only")
        checkpoint = None
    else:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        checkpoint = manifest.get("checkpoint")
        if checkpoint:
            signed, _bad = read_records(get_settings(), manifest.get("source_store", ""))
            if not any(r.get("sig") == checkpoint.get("sig") for r in signed):
                result.audit_problems.append(
                    "the backup's audit checkpoint is not among the signed checkpoints of "
                    "this data folder (another audit key, or the checkpoint file is missing)")
                return
            result.audit_problems += _covers(engine, checkpoint)
            if result.audit_problems:
                return
    write_checkpoint(engine, f"restored from {source.name}",
                     reanchor=f"restore of {source.name}"
                     + (f" (checkpoint of {checkpoint['count']} events)" if checkpoint else ""))


def _covers(engine: Engine, checkpoint: dict) -> list[str]:
    """Problems if the restored log does not hold the checkpointed events unchanged."""
    from utfall.store.models import AuditEvent

    with engine.connect() as conn:
        head = conn.execute(select(AuditEvent.hash).where(
            AuditEvent.id == checkpoint["head_id"])).scalar_one_or_none()
        held = conn.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.id <= checkpoint["head_id"])).scalar_one()
    problems = []
    if checkpoint["count"] > checkpoint["base_count"] and head != checkpoint["head_hash"]:
        problems.append(f"event {checkpoint['head_id']} does not have the hash signed at "
                        "backup time")
    if checkpoint["base_count"] + held != checkpoint["count"]:
        problems.append(f"the restored log holds {checkpoint['base_count'] + held} of the "
                        f"{checkpoint['count']} events signed at backup time")
    return problems


def _restore_sqlite(source: Path, target: Path) -> None:
    backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        check = backup_db.execute("PRAGMA integrity_check").fetchone()
        if not check or check[0] != "ok":
            raise BackupError(f"{source.name} is damaged: {check[0] if check else '?'}")
        target.parent.mkdir(parents=True, exist_ok=True)
        dest = sqlite3.connect(target, timeout=30)
        try:
            backup_db.backup(dest)  # replaces every page of the target, under its lock
        finally:
            dest.close()
    finally:
        backup_db.close()


def _restore_pg(source: Path, engine: Engine, url: str) -> None:
    engine.dispose()
    with engine.begin() as conn:  # start from an empty schema (only with force or empty)
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    dsn, env = _libpq(url)
    _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction",
          "--exit-on-error", f"--dbname={dsn}", str(source)], env)


def audit_problems(engine: Engine) -> list[str]:
    """Broken links of the restored audit chain (empty when it verifies)."""
    from utfall.access.audit import verify_chain
    from utfall.store.models import AuditEvent

    with engine.connect() as conn:
        problems = verify_chain(conn.execute(select(AuditEvent).order_by(AuditEvent.id)))
    return [f"event {p.event_id}: {p.reason}" for p in problems]
