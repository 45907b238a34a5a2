"""Server-side login sessions and CSRF tokens.

The cookie holds a random token; the table stores only its SHA-256, so a leaked
database does not leak sessions. Sessions end at an absolute limit and after an
idle limit; logout revokes at once. Each session has its own CSRF secret; forms
carry ``HMAC(secret, "csrf")`` and every state-changing request must present it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from utfall.store.models_access import WebSession

ABSOLUTE_HOURS = 10
IDLE_MINUTES = 30
_TOUCH_SECONDS = 60


@dataclass(frozen=True)
class SessionInfo:
    """A valid session."""

    id: str
    user_id: int
    unit_id: str | None
    csrf_token: str
    expires_at: dt.datetime
    stale: bool = False  # last_seen older than the touch interval



def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def csrf_for(secret: str) -> str:
    """The CSRF token of a session secret."""
    return hmac.new(secret.encode(), b"csrf", hashlib.sha256).hexdigest()


def create_session(conn: Connection, user_id: int, unit_id: str | None, *,
                   hours: float = ABSOLUTE_HOURS) -> str:
    """Start a session; returns the cookie token (only shown once)."""
    token = secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC)
    conn.execute(insert(WebSession).values(
        id=_hash(token), user_id=user_id, unit_id=unit_id, csrf_secret=secrets.token_hex(32),
        created_at=now, last_seen=now, expires_at=now + dt.timedelta(hours=hours),
        revoked=False))
    return token


def load_session(conn: Connection, token: str | None, *,
                 idle_minutes: float = IDLE_MINUTES, touch: bool = True) -> SessionInfo | None:
    """The valid session of a cookie token, or None (expired, idle, revoked, unknown).

    With ``touch=False`` nothing is written (a read-only transaction); the caller
    refreshes ``last_seen`` with :func:`touch_session` when the result is ``stale``.
    """
    if not token or len(token) > 200:
        return None
    row = conn.execute(select(WebSession).where(WebSession.id == _hash(token))
                       ).first()
    if row is None or row.revoked:
        return None
    now = dt.datetime.now(dt.UTC)
    last_seen = _aware(row.last_seen)
    if _aware(row.expires_at) <= now or now - last_seen > dt.timedelta(minutes=idle_minutes):
        return None
    stale = (now - last_seen).total_seconds() > _TOUCH_SECONDS
    if stale and touch:
        touch_session(conn, row.id)
        stale = False
    return SessionInfo(row.id, row.user_id, row.unit_id, csrf_for(row.csrf_secret),
                       _aware(row.expires_at), stale)


def touch_session(conn: Connection, session_id: str) -> None:
    """Record that the session was used now (idle time-out starts again)."""
    conn.execute(update(WebSession).where(WebSession.id == session_id)
                 .values(last_seen=dt.datetime.now(dt.UTC)))


def check_csrf(session: SessionInfo, presented: str | None) -> bool:
    """True if ``presented`` is the session's CSRF token."""
    return bool(presented) and hmac.compare_digest(session.csrf_token, presented or "")


def switch_unit(conn: Connection, session_id: str, unit_id: str) -> None:
    """Change the unit a session acts from (membership is checked by the caller)."""
    conn.execute(update(WebSession).where(WebSession.id == session_id).values(unit_id=unit_id))


def revoke_session(conn: Connection, token: str | None) -> None:
    """End a session (logout)."""
    if token:
        conn.execute(update(WebSession).where(WebSession.id == _hash(token)).values(revoked=True))


def revoke_user_sessions(conn: Connection, user_id: int, *,
                         except_id: str | None = None) -> None:
    """End every session of a user (account disabled, role or password changed);
    ``except_id`` keeps one (the user's own session after changing the password)."""
    query = update(WebSession).where(WebSession.user_id == user_id)
    if except_id is not None:
        query = query.where(WebSession.id != except_id)
    conn.execute(query.values(revoked=True))


def prune_sessions(conn: Connection, *, idle_minutes: float = IDLE_MINUTES) -> int:
    """Delete expired, idle-expired or revoked sessions; returns how many."""
    now = dt.datetime.now(dt.UTC)
    idle_cutoff = now - dt.timedelta(minutes=idle_minutes)
    result = conn.execute(delete(WebSession).where(
        (WebSession.expires_at < now) | (WebSession.last_seen < idle_cutoff)
        | WebSession.revoked.is_(True)))
    return result.rowcount or 0


# ------------------------------------------------------------------ login CSRF

LOGIN_CSRF_MINUTES = 60


def _login_sig(secret: bytes, nonce: str, expires: int) -> str:
    return hmac.new(secret, f"login-csrf|{nonce}|{expires}".encode(),
                    hashlib.sha256).hexdigest()


def new_login_csrf(secret: bytes, minutes: int = LOGIN_CSRF_MINUTES) -> str:
    """A signed pre-session value for the login form: ``nonce.expiry.signature``.
    The same value goes into the pre-session cookie and the form's hidden field."""
    nonce = secrets.token_urlsafe(18)
    expires = int(dt.datetime.now(dt.UTC).timestamp()) + minutes * 60
    return f"{nonce}.{expires}.{_login_sig(secret, nonce, expires)}"


def valid_login_csrf(secret: bytes, value: str | None) -> bool:
    """True for an unexpired pre-session value this server signed."""
    try:
        nonce, expires_text, sig = (value or "").split(".")
        expires = int(expires_text)
    except ValueError:
        return False
    if expires < dt.datetime.now(dt.UTC).timestamp():
        return False
    return hmac.compare_digest(sig, _login_sig(secret, nonce, expires))


def check_login_csrf(secret: bytes, cookie: str | None, presented: str | None) -> bool:
    """Double submit bound to a signed pre-session value: the cookie and the form field
    must be equal *and* carry this server's signature, so a planted cookie value (any
    string an attacker chose) is refused."""
    return bool(cookie and presented) and hmac.compare_digest(cookie or "", presented or "") \
        and valid_login_csrf(secret, cookie)
