"""Transactional bulk load of a validated extract into the store.

One database transaction per import: a rejected folder never reaches the store, and
a failure or a killed process leaves the store as it was (SQLite rolls back the
uncommitted WAL frames, PostgreSQL the open transaction). Importing the same folder
twice changes nothing. A re-import may correct a stored record of the same person
(reported as a change) but never move a record to another person: that rejects the
whole import, naming the earlier batch (:mod:`utfall.interop.extract_merge`).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine, inspect

from utfall.access.audit import Actor, log_event
from utfall.access.checkpoint import checkpoint_after_batch
from utfall.access.pseudonym import IdentityVault
from utfall.config import Settings, get_settings
from utfall.instruments import InstrumentRegistry
from utfall.interop import extract_merge as merge
from utfall.interop.extract_merge import Progress, TableChanges
from utfall.interop.extract_read import Problem
from utfall.interop.extract_validate import ExtractRejected, ValidatedExtract, validate_extract
from utfall.store.db import ensure_schema
from utfall.store.models import ImportBatch

IMPORT_LOCK = 0x55746649  # "UtfI": PostgreSQL advisory lock serialising imports
ORDER = ("units", "persons", "contacts", "procedures", "medications", "enrolments",
         "assessments")


@dataclass
class ImportResult:
    """What an import did (or, for a dry run, would do)."""

    batch_id: int | None
    row_counts: dict[str, int]
    warnings: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    changes: dict[str, TableChanges] = field(default_factory=dict)
    source: str | None = None
    dry_run: bool = False

    def summary(self) -> dict:
        """Counts for the import log and the audit event (no personal data)."""
        return {
            "new": {t: c.new for t, c in self.changes.items()},
            "changed": {t: c.changed for t, c in self.changes.items()},
            "unchanged": {t: c.unchanged for t, c in self.changes.items()},
            "changed_columns": {t: c.columns for t, c in self.changes.items() if c.columns},
        }


def _checkpoint(name: str) -> None:
    """Test hook: pause at a named point so a test can kill the process mid-import."""
    if os.environ.get("UTFALL_IMPORT_PAUSE_AT") == name:
        print(f"utfall-import-paused-at {name}", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get("UTFALL_IMPORT_PAUSE_SECONDS", "60")))


def import_extract(folder: Path, engine: Engine | None, *, settings: Settings | None = None,
                   actor: Actor | None = None, progress: Progress | None = None,
                   instruments: InstrumentRegistry | None = None, source: str | None = None,
                   dry_run: bool = False) -> ImportResult:
    """Validate ``folder`` and load it in one transaction (raises ExtractRejected).

    ``dry_run`` compares with the store and writes nothing (``engine`` may then be
    None for a store that does not exist yet: everything is new).
    """
    settings = settings or get_settings()
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    validated = validate_extract(Path(folder), settings.effective_secret_key,
                                 instruments=instruments, source=source)
    if dry_run:
        changes = _preview(engine, validated)
        return ImportResult(None, validated.row_counts, validated.warnings,
                            time.perf_counter() - t0, changes, validated.source, dry_run=True)
    if engine is None:
        raise ValueError("an import needs a database engine")
    ensure_schema(engine)
    vault = IdentityVault(settings.effective_encryption_key)
    actor = actor or Actor(os.environ.get("USER", "cli"), "system")
    with engine.connect() as conn, _bulk_mode(conn), conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({IMPORT_LOCK})")
        batch_id = _start_batch(conn, validated, started)
        changes = load_validated(conn, validated, vault, batch_id, progress)
        result = ImportResult(batch_id, validated.row_counts, validated.warnings,
                              0.0, changes, validated.source)
        _checkpoint("before-commit")
        conn.execute(ImportBatch.__table__.update().where(ImportBatch.id == batch_id)
                     .values(finished_at=dt.datetime.now(dt.UTC), changes=result.summary()))
        log_event(conn, actor, "import", None, {
            "folder": Path(folder).name, "batch_id": batch_id, "source": validated.source,
            "rows": validated.row_counts, "synthetic": validated.synthetic,
            **result.summary()})
    checkpoint_after_batch(engine, "import", settings)  # signed audit checkpoint per batch
    result.seconds = time.perf_counter() - t0
    return result


@contextmanager
def _bulk_mode(conn: Connection) -> Iterator[None]:
    """SQLite: no per-row foreign-key look-ups during the load.

    Safe because validation has already checked every reference of the extract
    against the extract itself (the spec requires references to resolve within
    it), and units/persons are only ever upserted, never deleted. The pragma must
    be set outside a transaction and is restored before the connection returns
    to the pool.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection  # pysqlite: a PRAGMA opens no transaction
    raw.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def _start_batch(conn: Connection, validated: ValidatedExtract, started: dt.datetime) -> int:
    result = conn.execute(ImportBatch.__table__.insert().values(
        folder_name=validated.folder.name, content_hash=validated.content_hash,
        synthetic=validated.synthetic, started_at=started, finished_at=started,
        row_counts=validated.row_counts, source=validated.source,
        warnings=[str(w) for w in validated.warnings[:1000]]))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _store_frames(validated: ValidatedExtract, vault: IdentityVault | None,
                  batch_id: int | None) -> dict[str, pl.DataFrame]:
    """The frames with the store's extra columns (encrypted identity, batch, source)."""
    frames = {}
    for name in ORDER:
        if name not in validated.frames:
            continue
        frame = validated.frames[name]
        if name == "persons":
            tokens = [vault.encrypt(c) for c in frame["canonical"]] if vault else \
                [b""] * frame.height  # a dry run never needs the encrypted number
            frame = frame.with_columns(pl.Series("pnr_encrypted", tokens, pl.Binary),
                                       pl.lit(validated.synthetic).alias("synthetic"))
        if name == "assessments":
            frame = frame.with_columns(pl.lit("import").alias("source"))
        if name == "contacts":
            frame = frame.with_columns(pl.lit(validated.source, pl.String).alias("source"))
        if name != "units":
            frame = frame.with_columns(pl.lit(batch_id, pl.Int64).alias("batch_id"))
        frames[name] = frame
    return frames


def _raise_flags(conn: Connection, frame: pl.DataFrame) -> None:
    """Clinical flags of the imported assessments (only instruments that define flags
    are parsed; flags already stored are kept)."""
    import json
    from functools import partial

    from utfall.care.flags import raise_flags_bulk
    from utfall.instruments import UnknownInstrumentError, get_instrument

    flagged = []
    for instrument in frame["instrument"].unique().to_list():
        try:
            if get_instrument(instrument).scoring.flags:
                flagged.append(instrument)
        except UnknownInstrumentError:
            continue
    if not flagged:
        return
    rows = frame.filter(pl.col("instrument").is_in(flagged)).select(
        "row_key", "person_key", "unit_id", "instrument", "answers", "band")
    raise_flags_bulk(conn, ({**row, "answers": partial(json.loads, row["answers"] or "{}")}
                            for row in rows.iter_rows(named=True)))


def load_validated(conn: Connection, validated: ValidatedExtract, vault: IdentityVault | None,
                   batch_id: int | None, progress: Progress | None = None, *,
                   write: bool = True) -> dict[str, TableChanges]:
    """Stage every frame, reject records that would move to another person, count the
    changes and (unless ``write`` is false) write them. The caller owns the
    transaction; a rejection raises :class:`ExtractRejected` inside it."""
    frames = _store_frames(validated, vault, batch_id)
    stages: dict[str, str] = {}
    changes: dict[str, TableChanges] = {}
    problems: list[Problem] = []
    sqlite = conn.dialect.name == "sqlite"
    for name, frame in frames.items():
        if merge.is_empty(conn, name):  # nothing to compare with: all rows are new
            changes[name] = merge.all_new(frame.height)
            if write and not (sqlite and name != "units"):
                stages[name] = merge.stage(conn, name, frame)  # PostgreSQL loads via COPY
            continue
        stages[name] = merge.stage(conn, name, frame)
        problems += merge.conflicts(conn, name, stages[name], validated.files.get(name, name),
                                    validated.source)
        changes[name] = merge.count_changes(conn, name, stages[name], frame.height)
    if problems:
        raise ExtractRejected(problems, validated.warnings)
    if write:
        for name, frame in frames.items():
            if name in stages:
                merge.upsert(conn, name, stages[name], frame, progress)
            else:
                merge.insert_direct(conn, name, frame, progress)
            _checkpoint(f"after-{name}")
        if "assessments" in frames:
            _raise_flags(conn, frames["assessments"])
    for stage_name in stages.values():
        merge.drop_stage(conn, stage_name)
    return changes


def _preview(engine: Engine | None, validated: ValidatedExtract) -> dict[str, TableChanges]:
    """Dry run: compare with the store inside a transaction that is rolled back."""
    if engine is None or "contact" not in inspect(engine).get_table_names():
        return {name: merge.all_new(frame.height) for name, frame in validated.frames.items()}
    if "source" not in {c["name"] for c in inspect(engine).get_columns("contact")}:
        raise ExtractRejected([Problem("(store)", 1, "(schema)",
                                       "the store predates this version; run `utfall db "
                                       "upgrade` before a dry run")], validated.warnings)
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            return load_validated(conn, validated, None, None, write=False)
        finally:
            trans.rollback()
