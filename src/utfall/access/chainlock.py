"""Serialise appends to the audit chain on PostgreSQL.

``log_event`` reads the newest hash and inserts a row pointing at it; two concurrent
transactions that read the same predecessor collide on the unique ``prev_hash`` and
retry, and under load (tens of concurrent writers) five retries are not enough. Here a
transaction-scoped advisory lock is taken right before the predecessor is read, so
appends queue instead of colliding; PostgreSQL releases the lock at commit or rollback.
The chain format and ``audit.py`` are unchanged. SQLite serialises writers itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

LOCK_KEY = 0x55746661  # "Utfa"
_PREDECESSOR_READ = "SELECT audit_event.hash"
_installed: set[int] = set()


def install_audit_lock(engine: Engine) -> bool:
    """Install the lock on ``engine`` (PostgreSQL only, once); True if installed."""
    if engine.dialect.name != "postgresql" or id(engine) in _installed:
        return False

    @event.listens_for(engine, "before_cursor_execute")
    def _lock(_conn: Any, cursor: Any, statement: str, _params: Any, _context: Any,
              _many: bool) -> None:
        if statement.startswith(_PREDECESSOR_READ):
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))

    _installed.add(id(engine))
    return True
