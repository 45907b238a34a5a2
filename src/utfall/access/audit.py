"""Append-only, hash-chained audit log of every access to personal data.

Each event stores the hash of its predecessor; ``verify_chain`` recomputes every
hash, so an edited, inserted or deleted row is detected. ``prev_hash`` is unique,
so two concurrent writers cannot both extend the same predecessor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from utfall.store.models import AuditEvent

GENESIS = "0" * 64
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
              detail: dict[str, Any] | None = None, *, at: dt.datetime | None = None) -> str:
    """Append one event inside the caller's transaction; returns its hash.

    ``detail`` must never contain identity numbers (callers pass ``person_key``).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    detail = detail or {}
    at = at or dt.datetime.now(dt.UTC)
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
            return digest
        except IntegrityError:  # a concurrent writer extended the same predecessor
            continue
    raise RuntimeError("could not append to the audit log")


@dataclass(frozen=True)
class ChainProblem:
    """A broken link in the audit chain."""

    event_id: int
    reason: str


def verify_chain(rows: Iterable[AuditEvent]) -> list[ChainProblem]:
    """Recompute the chain over events ordered by id; returns the problems found."""
    problems: list[ChainProblem] = []
    prev = GENESIS
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
