"""Transactional, idempotent bulk load of a validated extract into the store.

One database transaction per import: a rejected folder never reaches this module,
and a failure or a killed process leaves the store as it was (SQLite rolls back
the uncommitted WAL frames, PostgreSQL the open transaction). Rows are upserted on
their natural keys, so importing the same folder twice changes nothing.

SQLite: DBAPI ``executemany`` of plain tuples. PostgreSQL: ``COPY`` into a
temporary staging table, then one ``INSERT … ON CONFLICT``.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine, select

from utfall.access.audit import Actor, log_event
from utfall.access.checkpoint import checkpoint_after_batch
from utfall.access.pseudonym import IdentityVault
from utfall.config import Settings, get_settings
from utfall.instruments import InstrumentRegistry
from utfall.interop.extract_read import LINE, Problem, csv_bytes
from utfall.interop.extract_validate import ValidatedExtract, validate_extract
from utfall.store.db import ensure_schema
from utfall.store.models import ImportBatch, Organisation

Progress = Callable[[str, int, int], None]  # (table, rows done, rows total)
CHUNK = 50_000

# table → (store table, columns written, conflict key, columns never updated)
TARGETS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "persons": ("person", ("person_key", "pnr_encrypted", "coordination_number", "sex",
                           "birth_date", "municipality_code", "death_date", "synthetic"),
                ("person_key",), ("pnr_encrypted", "birth_date", "coordination_number")),
    "contacts": ("contact", ("contact_id", "person_key", "unit_id", "date", "end_date",
                             "contact_type", "main_dx", "dx_group", "other_dx", "psych_groups",
                             "batch_id"), ("contact_id",), ("batch_id",)),
    "procedures": ("procedure", ("row_key", "person_key", "unit_id", "date", "contact_id",
                                 "kva_code", "batch_id"), ("row_key",), ("batch_id",)),
    "medications": ("medication", ("row_key", "person_key", "unit_id", "atc", "start_date",
                                   "end_date", "batch_id"), ("row_key",), ("batch_id",)),
    "enrolments": ("enrolment", ("row_key", "person_key", "unit_id", "programme", "start_date",
                                 "end_date", "end_reason", "phase", "batch_id"), ("row_key",),
                   ("batch_id",)),
    "assessments": ("assessment", ("row_key", "person_key", "unit_id", "instrument", "stage",
                                   "date", "answers", "score", "subscores", "band", "source",
                                   "batch_id"), ("row_key",), ("batch_id",)),
}


@dataclass
class ImportResult:
    """What a committed import did."""

    batch_id: int
    row_counts: dict[str, int]
    warnings: list[Problem] = field(default_factory=list)
    seconds: float = 0.0


def _checkpoint(name: str) -> None:
    """Test hook: pause at a named point so a test can kill the process mid-import."""
    if os.environ.get("UTFALL_IMPORT_PAUSE_AT") == name:
        print(f"utfall-import-paused-at {name}", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get("UTFALL_IMPORT_PAUSE_SECONDS", "60")))


def import_extract(folder: Path, engine: Engine, *, settings: Settings | None = None,
                   actor: Actor | None = None, progress: Progress | None = None,
                   instruments: InstrumentRegistry | None = None) -> ImportResult:
    """Validate ``folder`` and load it in one transaction (raises ExtractRejected)."""
    settings = settings or get_settings()
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    validated = validate_extract(Path(folder), settings.effective_secret_key,
                                 instruments=instruments)
    ensure_schema(engine)
    vault = IdentityVault(settings.effective_encryption_key)
    actor = actor or Actor(os.environ.get("USER", "cli"), "system")
    with engine.connect() as conn, _bulk_mode(conn), conn.begin():
        batch_id = _start_batch(conn, validated, started)
        load_validated(conn, validated, vault, batch_id, progress)
        _checkpoint("before-commit")
        conn.execute(ImportBatch.__table__.update().where(ImportBatch.id == batch_id)
                     .values(finished_at=dt.datetime.now(dt.UTC)))
        log_event(conn, actor, "import", None, {
            "folder": Path(folder).name, "batch_id": batch_id,
            "rows": validated.row_counts, "synthetic": validated.synthetic})
    checkpoint_after_batch(engine, "import", settings)  # signed audit checkpoint per batch
    return ImportResult(batch_id, validated.row_counts, validated.warnings,
                        time.perf_counter() - t0)


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
        row_counts=validated.row_counts,
        warnings=[str(w) for w in validated.warnings[:1000]]))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def load_validated(conn: Connection, validated: ValidatedExtract, vault: IdentityVault,
                   batch_id: int, progress: Progress | None = None) -> None:
    """Write every frame of ``validated`` through ``conn`` (the caller owns the transaction)."""
    frames = validated.frames
    if "units" in frames:
        _load_units(conn, frames["units"])
    for name in ("persons", "contacts", "procedures", "medications", "enrolments",
                 "assessments"):
        if name not in frames:
            continue
        frame = frames[name]
        if name == "persons":
            frame = frame.with_columns(
                pl.Series("pnr_encrypted", [vault.encrypt(c) for c in frame["canonical"]],
                          pl.Binary),
                pl.lit(validated.synthetic).alias("synthetic"))
        if name == "assessments":
            frame = frame.with_columns(pl.lit("import").alias("source"))
        frame = frame.with_columns(pl.lit(batch_id).alias("batch_id"))
        _upsert(conn, name, frame, progress)
        _checkpoint(f"after-{name}")


def _load_units(conn: Connection, units: pl.DataFrame) -> None:
    orgs = units.select("organisation", "principal_type").unique("organisation", keep="first")
    insert = _dialect_insert(conn)
    for name, principal in orgs.iter_rows():
        stmt = insert(Organisation.__table__).values(name=name, principal_type=principal)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["name"], set_={"principal_type": principal}))
    ids = dict(conn.execute(select(Organisation.name, Organisation.id)).all())
    frame = units.with_columns(
        pl.col("organisation").replace_strict(ids, return_dtype=pl.Int64).alias(
            "organisation_id"))
    cols = ("unit_id", "name", "organisation_id", "care_level", "municipality_code")
    _write(conn, "unit", frame.select(cols), cols, ("unit_id",), (), None, "units")


def _dialect_insert(conn: Connection):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _upsert(conn: Connection, name: str, frame: pl.DataFrame, progress: Progress | None) -> None:
    table, cols, keys, keep = TARGETS[name]
    # key order keeps B-tree page splits local (clearly faster on SQLite)
    _write(conn, table, frame.select(cols).sort(list(keys)), cols, keys, keep, progress, name)


def _write(conn: Connection, table: str, frame: pl.DataFrame, cols: tuple[str, ...],
           keys: tuple[str, ...], keep: tuple[str, ...], progress: Progress | None,
           label: str) -> None:
    frame = frame.drop(LINE, strict=False)
    # dates as ISO text: what SQLAlchemy's Date stores on SQLite, and what COPY reads
    frame = frame.with_columns([pl.col(c).cast(pl.String) for c, t in frame.schema.items()
                                if t == pl.Date])
    updates = [c for c in cols if c not in keys and c not in keep]
    on_conflict = (f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in updates)}"
                   if updates else "DO NOTHING")
    col_list = ", ".join(cols)
    total = frame.height
    if conn.dialect.name == "postgresql":
        _write_postgres(conn, table, frame, col_list, keys, on_conflict)
        if progress:
            progress(label, total, total)
        return
    sql = (f"INSERT INTO {table} ({col_list}) VALUES ({', '.join('?' for _ in cols)}) "
           f"ON CONFLICT ({', '.join(keys)}) {on_conflict}")
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    rebuild = _drop_secondary_indexes(cursor, table, total)
    done = 0
    for chunk in frame.iter_slices(CHUNK):
        cursor.executemany(sql, chunk.iter_rows())
        done += chunk.height
        if progress:
            progress(label, done, total)
    for create in rebuild:
        cursor.execute(create)
    cursor.close()


def _drop_secondary_indexes(cursor, table: str, incoming: int) -> list[str]:
    """SQLite: drop the table's secondary indexes when the load is larger than the table.

    Building an index once after the load (a sort) is much cheaper than updating it
    row by row in random key order. DDL is transactional in SQLite, so a failed or
    killed import still leaves the old indexes in place. Returns the statements that
    re-create the indexes.
    """
    if incoming < 10_000:
        return []
    existing = cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if existing >= incoming:
        return []
    rows = cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                          "AND tbl_name = ? AND sql IS NOT NULL", (table,)).fetchall()
    for name, _sql in rows:
        cursor.execute(f'DROP INDEX "{name}"')
    return [create for _name, create in rows]


def _write_postgres(conn: Connection, table: str, frame: pl.DataFrame, col_list: str,
                    keys: tuple[str, ...], on_conflict: str) -> None:
    binary = [c for c, t in frame.schema.items() if t == pl.Binary]
    if binary:
        frame = frame.with_columns(
            [(pl.lit("\\x") + pl.col(c).bin.encode("hex")).alias(c) for c in binary])
    stage = f"_stage_{table}"
    raw = conn.connection.driver_connection  # psycopg connection, same transaction
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(f"CREATE TEMP TABLE {stage} (LIKE {table} INCLUDING DEFAULTS) "
                    "ON COMMIT DROP")
        with cur.copy(f"COPY {stage} ({col_list}) FROM STDIN (FORMAT csv)") as copy:
            for chunk in frame.iter_slices(CHUNK * 4):
                copy.write(csv_bytes(chunk))
        cur.execute(f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} "
                    f"ON CONFLICT ({', '.join(keys)}) {on_conflict}")
        cur.execute(f"DROP TABLE {stage}")
