"""Engine creation and schema migration (Alembic) for the operational store.

SQLite discipline (the embedded default), so concurrent writers wait instead of failing:

- WAL journal, ``busy_timeout`` and ``synchronous=NORMAL`` on every connection;
- pysqlite's own implicit ``BEGIN`` is switched off (``isolation_level = None``) and the
  transaction is begun by SQLAlchemy's ``begin`` event (the documented pysqlite recipe):
  ``engine.begin()`` — the unit of work of every request and command that writes — opens
  ``BEGIN IMMEDIATE``, so the write lock is taken *before* anything is read. A deferred
  transaction that reads and then writes cannot wait for the lock (SQLite answers
  ``database is locked`` at once, because its snapshot is stale); an immediate one waits
  up to ``busy_timeout`` and, once it holds the lock, can no longer fail for concurrency.
  Plain ``engine.connect()`` (reads) stays deferred, so readers never block writers;
- write transactions of one process queue on a first-come-first-served lock before asking
  SQLite (a fair, sleep-free hand-over instead of SQLite's polling busy handler; the tail
  latency under load drops), and a ``BEGIN
  IMMEDIATE`` that still finds the database locked is retried until a deadline: this is
  safe because nothing of the unit of work has run yet.

PostgreSQL: connect timeout, and for serving engines (``get_engine(serving=True)``, the
web app) statement, lock and idle-in-transaction timeouts; the pool size is configurable
(see ``docs/web.md``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy import exc as sa_exc

from utfall.config import get_settings

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger("utfall.store")
BEGIN_OPTION = "sqlite_begin"  # execution option: "IMMEDIATE" | "DEFERRED" | "EXCLUSIVE"


class _SQLiteEngine(Engine):
    """An SQLite engine whose ``begin()`` opens a write transaction (``BEGIN IMMEDIATE``)."""

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        with _writer_turn(self), self.connect() as conn:
            conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                yield conn


class FifoLock:
    """A lock handed to its waiters in arrival order (``threading.Lock`` is not fair: under
    load some writers wait many turns, which is what a p99 shows)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: collections.deque[threading.Event] = collections.deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the lock; whether it was acquired."""
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            try:
                self._waiters.remove(turn)
            except ValueError:  # handed over just as the wait timed out
                return True
            return False

    def release(self) -> None:
        """Hand the lock to the longest waiter (it stays held), or free it."""
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._held = False


_writer_locks: dict[int, FifoLock] = {}
_writer_locks_mutex = threading.Lock()
_writer_held = threading.local()


@contextlib.contextmanager
def _writer_turn(engine: Engine) -> Iterator[None]:
    """Queue the write transactions of this process (re-entrant per thread; a timed-out
    wait falls through to SQLite's own locking, which stays the guarantee)."""
    with _writer_locks_mutex:
        lock = _writer_locks.setdefault(id(engine), FifoLock())
    held: set[int] = getattr(_writer_held, "engines", set())
    _writer_held.engines = held
    if id(engine) in held:  # nested write transaction in the same thread: it waits for
        log.warning("nested write transaction on SQLite (it waits for the outer one)")
        yield
        return
    acquired = lock.acquire(timeout=get_settings().sqlite_busy_timeout_ms / 1000)
    if acquired:
        held.add(id(engine))
    try:
        yield
    finally:
        if acquired:
            held.discard(id(engine))
            lock.release()


def is_locked_error(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's ``database is locked`` / ``busy`` (safe to retry)."""
    orig = getattr(exc, "orig", exc)
    text = str(orig).lower()
    return isinstance(orig, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the store cannot be used right now (unreachable, connection
    lost, pool exhausted, still locked after waiting, a PostgreSQL statement or lock
    timeout) rather than a bug: such failures are answered 503 with ``Retry-After``."""
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError |
                  sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def _begin_sqlite(conn: Connection) -> None:
    """Emit our own ``BEGIN`` (pysqlite's is off); retry a locked ``BEGIN IMMEDIATE``."""
    mode = str(conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")).upper()
    if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
        raise ValueError(f"unknown SQLite transaction mode {mode!r}")
    raw = conn.connection.dbapi_connection
    settings = get_settings()
    deadline = time.monotonic() + settings.sqlite_write_retry_seconds
    statement = f"BEGIN {mode}"
    while True:
        try:
            raw.execute(statement)  # type: ignore[union-attr]
            return
        except sqlite3.OperationalError as exc:
            if not is_locked_error(exc) or time.monotonic() >= deadline:
                raise sa_exc.OperationalError(statement, None, exc) from exc
            time.sleep(random.uniform(0.01, 0.05))


def _private_sqlite(path: Path) -> None:
    """Database file 0600 before SQLite opens it (its -wal/-shm inherit the mode)."""
    from utfall.config import private_dir, private_file

    settings = get_settings()
    if path.resolve().parent == settings.data_dir.resolve():
        private_dir(settings.data_dir, tighten=True)
    private_file(path)
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if extra.exists() and extra.stat().st_mode & 0o077:
            extra.chmod(0o600)


def _sqlite_engine(url: str) -> Engine:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        _private_sqlite(Path(path))
    settings = get_settings()
    busy_ms = settings.sqlite_busy_timeout_ms
    engine = create_engine(url, connect_args={"timeout": busy_ms / 1000},
                           pool_size=settings.db_pool_size,
                           max_overflow=settings.db_max_overflow,
                           pool_timeout=settings.db_pool_timeout)
    engine.__class__ = _SQLiteEngine

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _begin_sqlite)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # 256 MB page cache: bulk imports touch several B-tree indexes at random
        cur.execute("PRAGMA cache_size=-262144")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    event.listen(engine, "begin", _begin_sqlite)
    return engine


def _pg_engine(url: str, serving: bool) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    settings = get_settings()
    connect_args: dict[str, Any] = {"connect_timeout": settings.db_connect_timeout}
    if serving:
        options = []
        for name, value in (("statement_timeout", settings.db_statement_timeout_ms),
                            ("lock_timeout", settings.db_lock_timeout_ms),
                            ("idle_in_transaction_session_timeout",
                             settings.db_idle_in_transaction_timeout_ms)):
            if value:
                options.append(f"-c {name}={int(value)}")
        if options:
            connect_args["options"] = " ".join(options)
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args,
                         pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow,
                         pool_timeout=settings.db_pool_timeout, pool_recycle=1800)


@cache
def _engine_for(url: str, serving: bool = False) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith("postgresql"):
        return _pg_engine(url, serving)
    return create_engine(url, pool_pre_ping=True)


def get_engine(url: str | None = None, *, serving: bool = False) -> Engine:
    """Engine for ``url`` or the configured database (one engine per URL per process).

    ``serving=True`` (the web app) adds PostgreSQL statement and lock timeouts, so a
    request never waits unbounded; batch jobs (import, export, backup) run without them.
    """
    url = url or get_settings().effective_database_url
    # one SQLite engine per file and process: its writer queue must see every writer
    return _engine_for(url, serving and url.startswith("postgresql"))


def alembic_config(engine: Engine):
    """Alembic configuration pointing at the packaged migrations and ``engine``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine | None = None, revision: str = "heads") -> None:
    """Migrate the database to ``revision`` (default: every head, so independent
    migration branches of separate modules all apply)."""
    from alembic import command

    command.upgrade(alembic_config(engine or get_engine()), revision)


@cache
def _script():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def current_revisions(engine: Engine) -> set[str]:
    """The revisions recorded in the store (``alembic_version``)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def pending_heads(current: set[str]) -> set[str]:
    """Head revisions of the packaged migrations not yet applied to a store at
    ``current`` (dependencies count as applied), or the unknown revisions of a store
    migrated by newer code. Empty when the store is current."""
    script = _script()
    try:
        applied = {r.revision for r in script.revision_map.iterate_revisions(
            tuple(current), "base")} if current else set()
    except Exception:  # a revision this code does not know (newer code migrated it)
        return {f"unknown:{r}" for r in current}
    return set(script.get_heads()) - applied


def ensure_schema(engine: Engine) -> None:
    """Upgrade when the store is not at the newest revision (cheap when it is)."""
    if pending_heads(current_revisions(engine)):
        upgrade(engine)


def table_names(engine: Engine) -> set[str]:
    """Names of the tables that exist in the database."""
    return set(inspect(engine).get_table_names())
