"""User accounts, password login with rate limiting and lock-out, and the identity
layer that lets an OIDC provider replace local passwords.

An :class:`Identity` is what any login method yields (provider + subject);
:func:`account_for_identity` maps it to a stored account. Local login is one such
method (:func:`authenticate_local`); an OIDC callback would verify the ID token and
call :func:`account_for_identity` with ``provider=<issuer>``, ``subject=<sub>``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, func, insert, select, update

from utfall.access.policy import ROLES
from utfall.store.models import Unit
from utfall.store.models_access import LoginAttempt, UserAccount, UserUnit

MAX_FAILED = 5  # consecutive failures before the account locks
LOCK_MINUTES = 15
CLIENT_WINDOW_MINUTES = 10
CLIENT_MAX_FAILED = 30  # failures from one client within the window
MIN_PASSWORD = 10

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("utfall-dummy-password")


class AccountError(ValueError):
    """A problem creating or changing an account (message safe to show)."""


class LoginFailed(Exception):
    """Login refused; ``code`` is ``invalid``, ``locked`` or ``rate_limited``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Identity:
    """An authenticated identity from some provider."""

    provider: str
    subject: str


@dataclass(frozen=True)
class Account:
    """A loaded account with its units."""

    id: int
    username: str
    display_name: str
    role: str
    units: tuple[str, ...]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def hash_password(password: str) -> str:
    """Argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if ``password`` matches (always spends the hashing time)."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def create_user(conn: Connection, username: str, role: str, units: Iterable[str], *,
                password: str | None = None, display_name: str | None = None,
                provider: str = "local", subject: str | None = None) -> int:
    """Create an account (local with ``password``, or external with ``subject``)."""
    username = username.strip()
    if not username or len(username) > 100:
        raise AccountError("användarnamn saknas eller är för långt / username missing or too long")
    if role not in ROLES - {"person", "system"}:
        raise AccountError(f"okänd roll / unknown role: {role}")
    if provider == "local" and (not password or len(password) < MIN_PASSWORD):
        raise AccountError(f"lösenordet måste ha minst {MIN_PASSWORD} tecken / "
                           f"the password needs at least {MIN_PASSWORD} characters")
    units = list(dict.fromkeys(units))
    known = set(conn.execute(select(Unit.unit_id).where(Unit.unit_id.in_(units))).scalars())
    missing = [u for u in units if u not in known]
    if missing:
        raise AccountError(f"okänd enhet / unknown unit: {', '.join(missing)}")
    if role in {"clinician", "social_worker", "unit_manager"} and not units:
        raise AccountError("rollen kräver en enhet / the role needs a unit")
    if conn.execute(select(UserAccount.id).where(UserAccount.username == username)).first():
        raise AccountError(f"användaren finns redan / user exists: {username}")
    user_id = conn.execute(insert(UserAccount).values(
        username=username, display_name=display_name or username, role=role,
        password_hash=hash_password(password) if provider == "local" and password else None,
        identity_provider=provider, external_subject=subject, active=True, failed_logins=0,
        created_at=_now()).returning(UserAccount.id)).scalar_one()
    for unit in units:
        conn.execute(insert(UserUnit).values(user_id=user_id, unit_id=unit))
    return int(user_id)


def set_password(conn: Connection, username: str, password: str) -> None:
    """Replace a local account's password and unlock it."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"minst {MIN_PASSWORD} tecken / at least {MIN_PASSWORD} characters")
    conn.execute(update(UserAccount).where(UserAccount.username == username).values(
        password_hash=hash_password(password), failed_logins=0, locked_until=None))


def load_account(conn: Connection, user_id: int) -> Account | None:
    """The active account with this id and its units."""
    row = conn.execute(select(UserAccount).where(UserAccount.id == user_id,
                                                 UserAccount.active.is_(True))).first()
    if row is None:
        return None
    units = tuple(sorted(conn.execute(
        select(UserUnit.unit_id).where(UserUnit.user_id == row.id)).scalars()))
    return Account(row.id, row.username, row.display_name, row.role, units)


def account_for_identity(conn: Connection, identity: Identity) -> Account | None:
    """The active account bound to an external identity (OIDC ``iss`` + ``sub``)."""
    user_id = conn.execute(select(UserAccount.id).where(
        UserAccount.identity_provider == identity.provider,
        UserAccount.external_subject == identity.subject)).scalar_one_or_none()
    return load_account(conn, int(user_id)) if user_id is not None else None


def _record(conn: Connection, username: str, client: str | None, success: bool) -> None:
    conn.execute(insert(LoginAttempt).values(username=username[:100], client=client,
                                             at=_now(), success=success))


def authenticate_local(conn: Connection, username: str, password: str,
                       client: str | None = None) -> Account:
    """Check a local password; raises :class:`LoginFailed`. Records every attempt.

    Lock-out: :data:`MAX_FAILED` consecutive failures lock the account for
    :data:`LOCK_MINUTES`; more than :data:`CLIENT_MAX_FAILED` failures from one client
    within :data:`CLIENT_WINDOW_MINUTES` refuse further attempts from it.
    """
    now = _now()
    username = (username or "").strip()[:100]
    if client:
        since = now - dt.timedelta(minutes=CLIENT_WINDOW_MINUTES)
        failures = conn.execute(select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.client == client, LoginAttempt.success.is_(False),
            LoginAttempt.at >= since)).scalar_one()
        if failures >= CLIENT_MAX_FAILED:
            _record(conn, username, client, False)
            raise LoginFailed("rate_limited")
    row = conn.execute(select(UserAccount).where(UserAccount.username == username)
                       ).first()
    if row is None or not row.active or row.identity_provider != "local":
        verify_password(None, password)  # same time as a real check
        _record(conn, username, client, False)
        raise LoginFailed("invalid")
    locked = _aware(row.locked_until)
    if locked and locked > now:
        _record(conn, username, client, False)
        raise LoginFailed("locked")
    if not verify_password(row.password_hash, password):
        failed = row.failed_logins + 1
        values: dict[str, object] = {"failed_logins": failed}
        if failed >= MAX_FAILED:
            values = {"failed_logins": 0, "locked_until": now + dt.timedelta(minutes=LOCK_MINUTES)}
        conn.execute(update(UserAccount).where(UserAccount.id == row.id).values(**values))
        _record(conn, username, client, False)
        raise LoginFailed("locked" if failed >= MAX_FAILED else "invalid")
    conn.execute(update(UserAccount).where(UserAccount.id == row.id).values(
        failed_logins=0, locked_until=None))
    _record(conn, username, client, True)
    account = load_account(conn, row.id)
    assert account is not None
    return account


def prune_login_attempts(conn: Connection, older_than_days: int = 90) -> int:
    """Delete old login attempts; returns how many."""
    cutoff = _now() - dt.timedelta(days=older_than_days)
    return conn.execute(delete(LoginAttempt).where(LoginAttempt.at < cutoff)).rowcount or 0
