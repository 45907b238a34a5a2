"""Merging validated extract frames into the store: stage, compare, then upsert.

Every table is first copied into a temporary staging table (SQLite: ``executemany``
of plain tuples; PostgreSQL: ``COPY``). Against the stored rows with the same key the
stage then tells, in SQL that is the same on both stores:

- **conflicts**: a stored record (same key) that belongs to another person, or a
  stored contact of another source system — the whole import is rejected;
- **changes**: new rows, changed rows (and which columns changed), unchanged rows.

Only then are new and changed rows written, with ``INSERT … SELECT … ON CONFLICT DO
UPDATE … WHERE`` that never touches ``person_key`` (nor ``source`` or ``batch_id``)
and skips unchanged rows. A dry run stops after the comparison.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Connection, text

from utfall.interop.extract_read import LINE, Problem, csv_bytes
from utfall.interop.extract_scan import shown
from utfall.store.models import Organisation

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

Progress = Callable[[str, int, int], None]  # (table, rows done, rows total)
CHUNK = 50_000
STOCKHOLM = ZoneInfo("Europe/Stockholm")


@dataclass(frozen=True)
class Target:
    """How one extract table maps onto its store table."""

    table: str
    columns: tuple[str, ...]  # written (and staged) columns
    keys: tuple[str, ...]
    keep: tuple[str, ...] = ("person_key", "batch_id")  # never updated
    json: tuple[str, ...] = ()  # compared as text (PostgreSQL json has no equality)


TARGETS: dict[str, Target] = {
    "persons": Target("person", ("person_key", "pnr_encrypted", "coordination_number", "sex",
                                 "birth_date", "municipality_code", "death_date", "synthetic"),
                      ("person_key",), ("pnr_encrypted", "birth_date", "coordination_number")),
    "contacts": Target("contact", ("contact_id", "person_key", "unit_id", "date", "end_date",
                                   "contact_type", "main_dx", "dx_group", "other_dx",
                                   "psych_groups", "source", "batch_id"), ("contact_id",),
                       ("person_key", "source", "batch_id")),
    "procedures": Target("procedure", ("row_key", "person_key", "unit_id", "date", "contact_id",
                                       "kva_code", "batch_id"), ("row_key",)),
    "medications": Target("medication", ("row_key", "person_key", "unit_id", "atc",
                                         "start_date", "end_date", "batch_id"), ("row_key",)),
    "enrolments": Target("enrolment", ("row_key", "person_key", "unit_id", "programme",
                                       "start_date", "end_date", "end_reason", "phase",
                                       "batch_id"), ("row_key",)),
    "assessments": Target("assessment", ("row_key", "person_key", "unit_id", "instrument",
                                         "stage", "date", "answers", "score", "subscores",
                                         "band", "source", "batch_id"), ("row_key",),
                          json=("answers", "subscores")),
}
# units are compared with their organisation's name and type (a join in the store)
UNIT_COLUMNS = ("unit_id", "name", "organisation", "principal_type", "care_level",
                "municipality_code")
UNIT_VIEW = ("(SELECT u.unit_id, u.name, o.name AS organisation, o.principal_type, "
             "u.care_level, u.municipality_code FROM unit u "
             "JOIN organisation o ON o.id = u.organisation_id)")


@dataclass
class TableChanges:
    """What an import does to one table."""

    rows: int
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    columns: dict[str, int] = field(default_factory=dict)  # changed rows per column

    def as_dict(self) -> dict:
        return {"rows": self.rows, "new": self.new, "changed": self.changed,
                "unchanged": self.unchanged, "columns": self.columns}


def compared(name: str) -> tuple[str, ...]:
    """Columns whose difference counts as a change of a stored row."""
    if name == "units":
        return UNIT_COLUMNS[1:]
    target = TARGETS[name]
    return tuple(c for c in target.columns if c not in target.keys and c not in target.keep
                 and c != "source")


def stage(conn: Connection, name: str, frame: pl.DataFrame) -> str:
    """Copy ``frame`` (its target columns and ``_line``) into a temporary table."""
    columns = (*UNIT_COLUMNS, LINE) if name == "units" else (*TARGETS[name].columns, LINE)
    keys = ["unit_id"] if name == "units" else list(TARGETS[name].keys)
    # key order keeps B-tree page splits local when the stage is inserted (SQLite)
    frame = frame.select(columns).sort(keys)
    frame = frame.with_columns([pl.col(c).cast(pl.String) for c, t in frame.schema.items()
                                if t == pl.Date])  # ISO text: what SQLite stores, COPY reads
    stage_name = f"_stage_{name}"
    col_list = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        source = UNIT_VIEW if name == "units" else TARGETS[name].table
        names = ", ".join(c for c in columns if c != LINE)
        binary = [c for c, t in frame.schema.items() if t == pl.Binary]
        if binary:
            frame = frame.with_columns(
                [(pl.lit("\\x") + pl.col(c).bin.encode("hex")).alias(c) for c in binary])
        raw = conn.connection.driver_connection  # psycopg connection, same transaction
        with raw.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(f"CREATE TEMP TABLE {stage_name} ON COMMIT DROP AS "
                        f"SELECT {names} FROM {source} t WITH NO DATA")
            cur.execute(f"ALTER TABLE {stage_name} ADD COLUMN {LINE} integer")
            with cur.copy(f"COPY {stage_name} ({col_list}) FROM STDIN (FORMAT csv)") as copy:
                for chunk in frame.iter_slices(CHUNK * 4):
                    copy.write(csv_bytes(chunk))
        return stage_name
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"CREATE TEMP TABLE {stage_name} ({col_list})")
    sql = f"INSERT INTO {stage_name} VALUES ({', '.join('?' for _ in columns)})"
    for chunk in frame.iter_slices(CHUNK):
        cursor.executemany(sql, chunk.iter_rows())
    cursor.close()
    return stage_name


def drop_stage(conn: Connection, stage_name: str) -> None:
    """Drop a staging table (PostgreSQL also drops it at commit or rollback)."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {stage_name}")


def _distinct(name: str, column: str, left: str = "t", right: str = "s") -> str:
    json = name != "units" and column in TARGETS[name].json
    a, b = f"{left}.{column}", f"{right}.{column}"
    if json:
        a, b = f"CAST({a} AS TEXT)", f"CAST({b} AS TEXT)"
    return f"{a} IS DISTINCT FROM {b}"


def conflicts(conn: Connection, name: str, stage_name: str, file: str,
              source: str | None) -> list[Problem]:
    """Rows of the stage whose stored record belongs to another person (or, for
    contacts, to another source system): each is a rejection naming the earlier batch."""
    if name == "units" or name == "persons":
        return []
    target = TARGETS[name]
    key = target.keys[0]
    clash = "t.person_key <> s.person_key"
    if name == "contacts":
        clash += " OR t.source IS DISTINCT FROM s.source"
    sql = (f"SELECT s.{LINE}, s.{key}, t.person_key <> s.person_key, t.source, "
           f"t.batch_id, b.folder_name, b.started_at "
           if name == "contacts" else
           f"SELECT s.{LINE}, s.{key}, TRUE, NULL, t.batch_id, b.folder_name, b.started_at ")
    sql += (f"FROM {stage_name} s JOIN {target.table} t ON t.{key} = s.{key} "
            f"LEFT JOIN import_batch b ON b.id = t.batch_id WHERE {clash} ORDER BY s.{LINE}")
    problems = []
    found: Sequence[tuple[Any, ...]] = conn.exec_driver_sql(sql).all()  # untyped driver rows
    for line, ident, other_person, stored_source, batch, folder, started in found:
        earlier = _batch_text(batch, folder, started)
        if name != "contacts":
            problems.append(Problem(file, int(line), "person_id",
                                    f"this record belongs to another person since {earlier}; a "
                                    "re-import may not move a record to another person"))
        elif other_person:
            raw = ident[len(source) + 1:] if source else ident
            problems.append(Problem(file, int(line), "person_id",
                                    f"contact '{shown(raw)}' belongs to another person since "
                                    f"{earlier}; a re-import may not move a record to another "
                                    "person"))
        else:
            this = f"source '{source}'" if source else "no source"
            problems.append(Problem(file, int(line), "contact_id",
                                    f"contact '{shown(ident)}' was imported from "
                                    f"{_source_text(stored_source)} in {earlier}; this extract "
                                    f"has {this}"))
    return problems


def _source_text(source: str | None) -> str:
    return f"source '{source}'" if source else "an extract without a source"


def _batch_text(batch: int | None, folder: str | None, started: object) -> str:
    if batch is None:
        return "an earlier record (not from an import)"
    when = started
    if isinstance(started, str):
        when = dt.datetime.fromisoformat(started)
    if isinstance(when, dt.datetime):
        when = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(STOCKHOLM)
        return f"import batch {batch} of {when:%Y-%m-%d} (folder '{shown(folder, 60)}')"
    return f"import batch {batch} (folder '{shown(folder, 60)}')"


def count_changes(conn: Connection, name: str, stage_name: str, rows: int) -> TableChanges:
    """New, changed (per column) and unchanged rows of the stage against the store."""
    columns = compared(name)
    key = "unit_id" if name == "units" else TARGETS[name].keys[0]
    relation = UNIT_VIEW if name == "units" else TARGETS[name].table
    any_change = " OR ".join(_distinct(name, c) for c in columns)
    parts = [f"SUM(CASE WHEN {_distinct(name, c)} THEN 1 ELSE 0 END)" for c in columns]
    sql = (f"SELECT COUNT(*), SUM(CASE WHEN {any_change} THEN 1 ELSE 0 END), "
           f"{', '.join(parts)} FROM {stage_name} s JOIN {relation} t ON t.{key} = s.{key}")
    counts: tuple[Any, ...] = conn.exec_driver_sql(sql).one()  # untyped driver row
    matched, changed, *per_column = counts
    matched, changed = int(matched or 0), int(changed or 0)
    return TableChanges(rows, rows - matched, changed, matched - changed,
                        {c: int(n) for c, n in zip(columns, per_column, strict=True) if n})


def is_empty(conn: Connection, name: str) -> bool:
    """True when the store table of ``name`` has no rows yet."""
    table = "unit" if name == "units" else TARGETS[name].table
    return conn.exec_driver_sql(f"SELECT 1 FROM {table} LIMIT 1").first() is None


def insert_direct(conn: Connection, name: str, frame: pl.DataFrame,
                  progress: Progress | None) -> None:
    """SQLite, into an empty table: ``executemany`` of plain tuples, no stage (the
    first import of a region is the largest; nothing to compare with)."""
    target = TARGETS[name]
    frame = frame.select(target.columns).sort(list(target.keys))
    frame = frame.with_columns([pl.col(c).cast(pl.String) for c, t in frame.schema.items()
                                if t == pl.Date])
    sql = (f"INSERT INTO {target.table} ({', '.join(target.columns)}) "
           f"VALUES ({', '.join('?' for _ in target.columns)})")
    rebuild = _drop_secondary_indexes(conn, target.table, frame.height)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    done = 0
    for chunk in frame.iter_slices(CHUNK):
        cursor.executemany(sql, chunk.iter_rows())
        done += chunk.height
        if progress:
            progress(name, done, frame.height)
    cursor.close()
    for create in rebuild:
        conn.exec_driver_sql(create)


def all_new(rows: int) -> TableChanges:
    """The changes of a table loaded into an empty store."""
    return TableChanges(rows, rows, 0, 0, {})


def upsert(conn: Connection, name: str, stage_name: str, frame: pl.DataFrame,
           progress: Progress | None) -> None:
    """Write new and changed rows of the stage into the store table."""
    if name == "units":
        _upsert_units(conn, stage_name, frame)
        return
    target = TARGETS[name]
    cols = ", ".join(target.columns)
    updates = compared(name)
    sets = ", ".join(f"{c} = excluded.{c}" for c in updates)
    guard = " OR ".join(_distinct(name, c, target.table, "excluded") for c in updates)
    sql = (f"INSERT INTO {target.table} ({cols}) SELECT {cols} FROM {stage_name} WHERE true "
           f"ON CONFLICT ({', '.join(target.keys)}) DO UPDATE SET {sets} "
           f"WHERE {target.table}.person_key = excluded.person_key AND ({guard})")
    rebuild = _drop_secondary_indexes(conn, target.table, frame.height)
    conn.exec_driver_sql(sql)
    for create in rebuild:
        conn.exec_driver_sql(create)
    if progress:
        progress(name, frame.height, frame.height)


def _upsert_units(conn: Connection, stage_name: str, units: pl.DataFrame) -> None:
    orgs = units.select("organisation", "principal_type").unique("organisation", keep="first")
    insert: Callable[[Any], PostgresInsert | SqliteInsert]  # the dialect's INSERT … ON CONFLICT
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    for org, principal in orgs.iter_rows():
        stmt = insert(Organisation.__table__).values(name=org, principal_type=principal)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["name"], set_={"principal_type": principal},
            where=Organisation.__table__.c.principal_type != principal))
    sets = ("name = excluded.name, organisation_id = excluded.organisation_id, "
            "care_level = excluded.care_level, municipality_code = excluded.municipality_code")
    guard = " OR ".join(f"unit.{c} IS DISTINCT FROM excluded.{c}"
                        for c in ("name", "organisation_id", "care_level", "municipality_code"))
    conn.exec_driver_sql(
        "INSERT INTO unit (unit_id, name, organisation_id, care_level, municipality_code) "
        f"SELECT s.unit_id, s.name, o.id, s.care_level, s.municipality_code FROM {stage_name} s "
        "JOIN organisation o ON o.name = s.organisation WHERE true "
        f"ON CONFLICT (unit_id) DO UPDATE SET {sets} WHERE {guard}")


def _drop_secondary_indexes(conn: Connection, table: str, incoming: int) -> list[str]:
    """SQLite: drop the table's secondary indexes when the load is larger than the table.

    Building an index once after the load (a sort) is much cheaper than updating it
    row by row. DDL is transactional in SQLite, so a failed or killed import still
    leaves the old indexes in place. Returns the statements that re-create them.
    """
    if conn.dialect.name != "sqlite" or incoming < 10_000:
        return []
    existing: int = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
    if existing >= incoming:
        return []
    rows: Sequence[tuple[Any, ...]] = conn.execute(text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name = :t AND sql IS NOT NULL"), {"t": table}).all()
    for index_name, _sql in rows:
        conn.exec_driver_sql(f'DROP INDEX "{index_name}"')
    return [create for _name, create in rows]
