"""Append-only, hash-chained audit log of every access to personal data.

Each event stores the hash of its predecessor; ``verify_chain`` recomputes every
hash, so an edited, inserted or deleted row is detected. ``prev_hash`` is unique,
so two concurrent writers cannot both extend the same predecessor.

On PostgreSQL, events logged inside a transaction are buffered on the connection and
appended when that transaction commits, under a transaction-scoped advisory lock:
concurrent requests then serialise only for the append itself (about a millisecond),
not for the whole request. A rolled-back transaction leaves no events, exactly as an
immediate insert would. SQLite appends immediately (it has one writer at a time, and
a read transaction that starts writing late could fail with SQLITE_BUSY).

The chain alone cannot prove that no rows were removed from its end (or that it was
not rebuilt): signed checkpoints held outside the database do that
(``utfall.access.checkpoint``). ``log_event`` tells the checkpoint scheduler of the
engine, if one runs, how many events were logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, event, select
from sqlalchemy.exc import IntegrityError

from utfall.store.models import AuditEvent

GENESIS = "0" * 64
LOCK_KEY = 0x55746661  # "Utfa": advisory lock serialising appends on PostgreSQL
_PENDING = "utfall.audit.pending"
_hooked: set[int] = set()
EVENT_HOOKS: dict[int, Callable[[int], None]] = {}  # id(engine) -> counter of logged events
ACTIONS = frozenset({"read", "change", "disclose", "copy", "create", "print", "import", "export"})


@dataclass(frozen=True)
class Actor:
    """Who acts: user name, role and the unit acted from (None for system jobs).

    ``person_key`` is set only for role ``person`` (self-report by token): the one
    person the actor is.
    """

    user: str
    role: str
    unit_id: str | None = None
    person_key: str | None = None


def _digest(prev_hash: str, fields: dict[str, Any]) -> str:
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


def _fields(at: dt.datetime, actor: str, role: str, unit_id: str | None, action: str,
            person_key: str | None, detail: dict[str, Any]) -> dict[str, Any]:
    stamp = at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return {"at": stamp, "actor": actor, "role": role, "unit_id": unit_id, "action": action,
            "person_key": person_key, "detail": detail}


def log_event(conn: Connection, actor: Actor, action: str, person_key: str | None = None,
              detail: dict[str, Any] | None = None, *, at: dt.datetime | None = None) -> None:
    """Record one event as part of the caller's transaction.

    ``detail`` must never contain identity numbers (callers pass ``person_key``).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    detail = detail or {}
    at = at or dt.datetime.now(dt.UTC)
    hook = EVENT_HOOKS.get(id(conn.engine))
    if hook is not None:
        hook(1)
    if conn.dialect.name == "postgresql" and conn.in_transaction():
        _install_hooks(conn.engine)
        conn.info.setdefault(_PENDING, []).append(
            (at, actor.user, actor.role, actor.unit_id, action, person_key, detail))
        return
    _append_now(conn, at, actor, action, person_key, detail)


def _append_now(conn: Connection, at: dt.datetime, actor: Actor, action: str,
                person_key: str | None, detail: dict[str, Any]) -> None:
    for _attempt in range(5):
        prev = conn.execute(
            select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
        ).scalar_one_or_none() or GENESIS
        fields = _fields(at, actor.user, actor.role, actor.unit_id, action, person_key, detail)
        digest = _digest(prev, fields)
        try:
            with conn.begin_nested():
                conn.execute(AuditEvent.__table__.insert().values(
                    at=at, actor=actor.user, role=actor.role, unit_id=actor.unit_id,
                    action=action, person_key=person_key, detail=detail,
                    prev_hash=prev, hash=digest))
            return
        except IntegrityError:  # a concurrent writer extended the same predecessor
            continue
    raise RuntimeError("could not append to the audit log")


def _install_hooks(engine: Engine) -> None:
    """Append buffered events at commit; drop them on rollback or pool reset."""
    if id(engine) in _hooked:
        return
    _hooked.add(id(engine))

    @event.listens_for(engine, "commit")
    def _flush(conn: Connection) -> None:
        pending = conn.info.pop(_PENDING, None)
        if pending:
            _append_pending(conn, pending)

    @event.listens_for(engine, "rollback")
    def _discard(conn: Connection) -> None:
        conn.info.pop(_PENDING, None)

    @event.listens_for(engine, "reset")
    def _reset(_dbapi_conn: Any, record: Any, _reset_state: Any) -> None:
        record.info.pop(_PENDING, None)


def _append_pending(conn: Connection, pending: list[tuple]) -> None:
    """Chain and insert buffered events just before COMMIT (PostgreSQL, raw DBAPI)."""
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        cur.execute("SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1")
        row = cur.fetchone()
        prev = row[0] if row else GENESIS
        for at, user, role, unit_id, action, person_key, detail in pending:
            digest = _digest(prev, _fields(at, user, role, unit_id, action, person_key, detail))
            cur.execute(
                "INSERT INTO audit_event (at, actor, role, unit_id, action, person_key, "
                "detail, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s::json, %s, %s)",
                (at, user, role, unit_id, action, person_key,
                 json.dumps(detail, default=str), prev, digest))
            prev = digest


@dataclass(frozen=True)
class ChainProblem:
    """A broken link in the audit chain."""

    event_id: int
    reason: str


def verify_chain(rows: Iterable[Any], start: str = GENESIS) -> list[ChainProblem]:
    """Recompute the chain over events ordered by id; returns the problems found.

    ``rows`` are :class:`AuditEvent` objects or Core rows with its columns (what
    ``select(AuditEvent)`` gives on a ``Connection``).

    ``start`` is the hash the first row must link to (the genesis, or the last
    pruned event's hash after a signed prune).
    """
    problems: list[ChainProblem] = []
    prev = start
    for row in rows:
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)
        fields = _fields(at, row.actor, row.role, row.unit_id, row.action, row.person_key,
                         row.detail)
        if row.prev_hash != prev:
            problems.append(ChainProblem(row.id, "link to the previous event is broken"))
        if _digest(row.prev_hash, fields) != row.hash:
            problems.append(ChainProblem(row.id, "content does not match its hash"))
        prev = row.hash
    return problems
