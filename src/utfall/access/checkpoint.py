"""Signed audit checkpoints: proof that the audit log is complete.

The hash chain (``utfall.access.audit``) shows edits inside the log, but a chain
kept only in the database it protects cannot show that its last rows were deleted
or that it was rebuilt from a rewritten row on. A *checkpoint* records the number
of events since the genesis, the id and hash of the newest one and the time,
signed with HMAC-SHA256 under the audit key (``UTFALL_AUDIT_KEY`` or the secrets
file; never in the database). Checkpoints are appended to a JSON-lines file in the
data folder (``audit-checkpoints.jsonl``) and written to the application log
(logger ``utfall.audit``), so a copy outside the host can be shipped with the logs.

``verify_store`` checks the whole chain against every checkpoint of the store:
fewer events than a checkpoint counted (rows deleted at the end, or all rows), or a
different hash at a checkpointed position (a rewritten row with later hashes
recomputed, a deleted row with re-chaining) is reported.

Checkpoints are written by the web app's scheduler after every N events or T
minutes (``UTFALL_AUDIT_CHECKPOINT_EVERY``/``_MINUTES``), after every import and
export batch, and by ``utfall audit checkpoint``. A checkpoint only extends the
previous one: the events it covers must still be there and chain onto it,
otherwise it is refused (a tampered log is never blessed).

Pruning (``prune_before``) deletes a prefix of old events, beyond the retention
period, only when a fresh checkpoint covers it; a signed *prune* record names the
hash and count of the last deleted event, so the remaining chain still verifies
from there.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select

from utfall.access.audit import EVENT_HOOKS, GENESIS, verify_chain
from utfall.config import Settings, get_settings, private_dir
from utfall.store.models import AuditEvent

log = logging.getLogger("utfall.audit")

KINDS = ("checkpoint", "prune", "reanchor")
GRACE_SECONDS = 1.0
UNKNOWN_START = "the first event does not link to the genesis or to a signed prune point"


class CheckpointRefused(Exception):
    """The log does not extend the last checkpoint (or pruning is not allowed)."""


@dataclass
class VerifyResult:
    """Outcome of ``verify_store``."""

    events: int = 0  # rows in the table
    total: int = 0  # events since the genesis (pruned ones included)
    checkpoint: dict[str, Any] | None = None  # the newest checkpoint of the store
    problems: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ records


def store_id(engine: Engine) -> str:
    """A name of the database that survives driver changes (no password)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return f"sqlite:{Path(url.database or ':memory:').resolve()}"
    return f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"utfall-audit-key-id" + key).hexdigest()[:12]


def _sign(record: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in record.items() if k != "sig"}
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def read_records(settings: Settings, store: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Valid records of ``store`` since its latest re-anchoring, and problems found.

    A line whose signature does not verify is a problem (forged, edited, or signed
    with another key), as is a line that is not JSON.
    """
    path = settings.effective_checkpoint_file
    if not path.exists():
        return [], []
    key = settings.effective_audit_key
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            sig = record["sig"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"{path.name}:{number}: not a checkpoint record")
            continue
        if not hmac.compare_digest(str(sig), _sign(record, key)):
            other = record.get("key_id") != _key_id(key)
            problems.append(f"{path.name}:{number}: signature does not verify"
                            + (" (signed with another audit key)" if other else
                               " (the record was altered or forged)"))
            continue
        if record.get("store") == store and record.get("kind") in KINDS:
            if record["kind"] == "reanchor":
                records = []
            records.append(record)
    return records, problems


def _latest(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    best = None
    for r in records:
        if best is None or r["count"] >= best["count"]:
            best = r
    return best


def _append(settings: Settings, record: dict[str, Any]) -> dict[str, Any]:
    """Sign and append one record to the file (locked, fsynced) and the log."""
    key = settings.effective_audit_key
    record = {**record, "key_id": _key_id(key)}
    record["sig"] = _sign(record, key)
    line = json.dumps(record, sort_keys=True, separators=(",", ":"))
    path = settings.effective_checkpoint_file
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    log.info("audit %s %s", record["kind"], line)
    return record


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------ writing


def _rows(conn: Connection, after_id: int | None = None) -> Iterator[Any]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if after_id is not None:
        query = query.where(AuditEvent.id > after_id)
    return iter(conn.execute(query))


def _bases(records: list[dict[str, Any]]) -> dict[str, int]:
    bases = {GENESIS: 0}
    for r in records:
        bases[r["base_hash"]] = r["base_count"]
    return bases


def write_checkpoint(engine: Engine, reason: str, settings: Settings | None = None, *,
                     reanchor: str | None = None, force: bool = True) -> dict[str, Any] | None:
    """Sign and store a checkpoint of the committed log; returns the record.

    Returns None when ``force`` is false and no event was added since the last
    checkpoint. Raises :class:`CheckpointRefused` when the log no longer extends
    the last checkpoint; ``reanchor`` (a reason, e.g. after restoring a backup)
    starts over from the log as it stands, which only a holder of the key can do.
    """
    settings = settings or get_settings()
    store = store_id(engine)
    records, _bad = read_records(settings, store)
    last = None if reanchor else _latest(records)
    with engine.connect() as conn:
        if last is None:  # the first checkpoint of the store, or a re-anchoring
            rows = list(_rows(conn))
            if not rows and not force and not reanchor:
                return None
            base_hash = rows[0].prev_hash if rows else GENESIS
            problems: list[Any] = verify_chain(rows, start=base_hash)
            bases = _bases(records)
            if base_hash not in bases and not reanchor:
                problems.insert(0, UNKNOWN_START)
            base_count = bases.get(base_hash, 0)
            head = rows[-1] if rows else None
            count = base_count + len(rows)
        else:
            problems = _still_there(conn, last)
            new = list(_rows(conn, last["head_id"]))
            problems += verify_chain(new, start=last["head_hash"])
            if not new and not force:
                return None
            head = new[-1] if new else None
            count = last["count"] + len(new)
            base_count, base_hash = last["base_count"], last["base_hash"]
    if problems:
        raise CheckpointRefused(
            "the audit log does not extend the last checkpoint; run `utfall audit verify`: "
            + "; ".join(_describe(p) for p in problems[:5]))
    record: dict[str, Any] = {
        "v": 1, "kind": "reanchor" if reanchor else "checkpoint", "store": store,
        "at": _now(), "count": count,
        "head_id": head.id if head is not None else (last["head_id"] if last else 0),
        "head_hash": head.hash if head is not None else (last["head_hash"] if last
                                                         else base_hash),
        "base_count": base_count, "base_hash": base_hash, "reason": reason[:200],
        "host": socket.gethostname()}
    return _append(settings, record)


def _describe(problem: Any) -> str:
    return problem if isinstance(problem, str) else f"event {problem.event_id}: {problem.reason}"


def _still_there(conn: Connection, last: dict[str, Any]) -> list[Any]:
    """Problems if the events covered by ``last`` are no longer as it recorded."""
    head_hash = conn.execute(select(AuditEvent.hash).where(
        AuditEvent.id == last["head_id"])).scalar_one_or_none()
    held = conn.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.id <= last["head_id"])).scalar_one()
    if last["count"] == last["base_count"]:
        return [] if held == 0 else ["events appeared before the last checkpoint's head"]
    out: list[Any] = []
    if head_hash != last["head_hash"]:
        out.append(f"event {last['head_id']} no longer has the checkpointed hash")
    if last["base_count"] + held != last["count"]:
        out.append(f"{last['count'] - last['base_count'] - held} events missing "
                   f"before event {last['head_id']}")
    return out


# ------------------------------------------------------------------ verifying


def verify_store(engine: Engine, settings: Settings | None = None) -> VerifyResult:
    """Check the chain and every checkpoint of the store; problems as sentences."""
    settings = settings or get_settings()
    records, problems = read_records(settings, store_id(engine))
    result = VerifyResult(problems=problems, checkpoint=_latest(records))
    bases = _bases(records)
    wanted = {r["count"] for r in records}
    at_position: dict[int, tuple[int, str]] = {}
    with engine.connect() as conn:
        rows = _rows(conn)
        first = next(rows, None)
        if first is None:
            base_count = max([r["base_count"] for r in records], default=0)
            start = GENESIS
        else:
            start = first.prev_hash
            if start not in bases:
                result.problems.append(
                    f"event {first.id}: {UNKNOWN_START} (earlier events were deleted)")
            base_count = bases.get(start, 0)

        def counted() -> Iterator[Any]:
            position = base_count
            for row in ([first] if first is not None else []):
                position += 1
                if position in wanted:
                    at_position[position] = (row.id, row.hash)
                yield row
            for row in rows:
                position += 1
                if position in wanted:
                    at_position[position] = (row.id, row.hash)
                yield row
            result.events = position - base_count

        result.problems += [_describe(p) for p in verify_chain(counted(), start=start)]
    result.total = base_count + result.events
    for r in records:
        where = f"checkpoint of {r['at']} ({r['count']} events)"
        if r["count"] < base_count:
            continue  # its events were pruned under a signed prune record
        if r["count"] == base_count:
            if r["count"] and r["head_hash"] != start and first is not None:
                result.problems.append(f"{where}: the log does not start after its head")
            continue
        if r["count"] > result.total:
            result.problems.append(
                f"{where}: the log holds only {result.total} events, "
                f"{r['count'] - result.total} are missing (deleted)")
        elif at_position[r["count"]][1] != r["head_hash"]:
            event_id = at_position[r["count"]][0]
            result.problems.append(
                f"{where}: event {event_id} (number {r['count']}) does not have the "
                "checkpointed hash (rewritten, or rows deleted and the chain rebuilt)")
    if not records and result.events:
        result.problems.append(
            "no signed checkpoint for this database: completeness cannot be proven "
            "(run `utfall audit checkpoint` once; it trusts the log as it stands)")
    return result


# ------------------------------------------------------------------ pruning


def prune_before(engine: Engine, before: dt.date, settings: Settings | None = None
                 ) -> int:
    """Delete events older than ``before`` under a signed prune record; returns how many.

    Refused when ``before`` is inside the retention period, when the log does not
    verify, or when no checkpoint covers the events to delete.
    """
    settings = settings or get_settings()
    today = dt.datetime.now(dt.UTC).date()
    try:
        limit = today.replace(year=today.year - settings.audit_retention_years)
    except ValueError:  # 29 February
        limit = today.replace(year=today.year - settings.audit_retention_years, day=28)
    if before > limit:
        raise CheckpointRefused(
            f"events are kept {settings.audit_retention_years} years "
            f"(UTFALL_AUDIT_RETENTION_YEARS); --before must be {limit.isoformat()} or earlier")
    result = verify_store(engine, settings)
    if result.problems:
        raise CheckpointRefused("the audit log does not verify; nothing pruned: "
                                + "; ".join(result.problems[:3]))
    bridge = write_checkpoint(engine, "prune", settings)
    assert bridge is not None
    cutoff = dt.datetime.combine(before, dt.time(), tzinfo=dt.UTC)
    with engine.begin() as conn:
        through = conn.execute(select(func.max(AuditEvent.id)).where(
            AuditEvent.at < cutoff, AuditEvent.id <= bridge["head_id"])).scalar_one_or_none()
        if through is None:
            return 0
        removed = conn.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.id <= through)).scalar_one()
        anchor = conn.execute(select(AuditEvent.hash).where(
            AuditEvent.id == through)).scalar_one()
        base_count = bridge["base_count"] + removed
        _append(settings, {
            "v": 1, "kind": "prune", "store": bridge["store"], "at": _now(),
            "count": bridge["count"], "head_id": bridge["head_id"],
            "head_hash": bridge["head_hash"], "base_count": base_count,
            "base_hash": anchor, "through_id": through, "before": before.isoformat(),
            "reason": f"prune before {before.isoformat()}", "host": socket.gethostname()})
        conn.execute(delete(AuditEvent).where(AuditEvent.id <= through))
    return int(removed)


# ------------------------------------------------------------------ scheduling


class _Scheduler(threading.Thread):
    """Writes a checkpoint after every N logged events and at least every T minutes."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        super().__init__(name="utfall-audit-checkpoints", daemon=True)
        self.engine, self.settings = engine, settings
        self.every = settings.audit_checkpoint_every
        self.minutes = settings.audit_checkpoint_minutes
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.pending = 0

    def note(self, n: int) -> None:
        with self.lock:
            self.pending += n
            due = self.every and self.pending >= self.every
            if due:
                self.pending = 0
        if due:
            self.wake.set()

    def run(self) -> None:  # pragma: no cover - timing dependent
        timeout = self.minutes * 60 if self.minutes else None
        reason = "startup"  # at start: new events since the last checkpoint, and a check
        while True:
            try:
                write_checkpoint(self.engine, reason, self.settings, force=False)
            except CheckpointRefused as exc:
                log.error("audit checkpoint refused: %s", exc)
            except Exception:
                log.exception("audit checkpoint failed")
            reason = "periodic"
            if self.wake.wait(timeout):
                self.wake.clear()
                time.sleep(GRACE_SECONDS)  # let the transaction that logged the N-th commit


_schedulers: dict[int, _Scheduler] = {}
_schedulers_lock = threading.Lock()


def _log_somewhere() -> None:
    """Checkpoints go to the application log: give ``utfall.audit`` a stderr handler
    when nothing else would print its INFO records (e.g. under plain uvicorn)."""
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    if not log.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)


def start_periodic(engine: Engine, settings: Settings) -> None:
    """Start the checkpoint scheduler of ``engine`` (once per process and engine): a
    checkpoint at start (if events were added), then every N events / T minutes."""
    _log_somewhere()
    if not settings.audit_checkpoint_every and not settings.audit_checkpoint_minutes:
        return
    with _schedulers_lock:
        if id(engine) in _schedulers:
            return
        scheduler = _Scheduler(engine, settings)
        _schedulers[id(engine)] = scheduler
        EVENT_HOOKS[id(engine)] = scheduler.note
        scheduler.start()


def checkpoint_after_batch(engine: Engine, reason: str, settings: Settings | None = None
                           ) -> None:
    """Checkpoint after an import/export batch; a refusal is logged, never raised
    (the batch itself has committed)."""
    try:
        write_checkpoint(engine, reason, settings)
    except CheckpointRefused as exc:
        log.error("audit checkpoint after %s refused: %s", reason, exc)
    except OSError:
        log.exception("audit checkpoint after %s could not be written", reason)
