"""User accounts, password login with back-off and per-client limits, and the
identity layer that lets an OIDC provider replace local passwords.

An :class:`Identity` is what any login method yields (provider + subject);
:func:`account_for_identity` maps it to a stored account. Local login is one such
method (:func:`authenticate_local`); the OIDC callback (``utfall.access.oidc``)
verifies the ID token and maps its claims to an account.

Lock-out cannot be used against a colleague: failures slow the account down
exponentially (at most :data:`BACKOFF_MAX_SECONDS` between guesses, never a hard
lock), a browser where the user logged in before (signed device cookie) is exempt
from the account's back-off, and each client address has its own limit. Unknown,
disabled, external and backed-off accounts get the same answer (``invalid``).
Administration (edit, deactivate, unlock, reset and change passwords) lives in
``utfall.access.admin``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, func, insert, select, update

from utfall.access.passwords import password_problems
from utfall.access.policy import ROLE_PRINCIPALS, ROLES
from utfall.store.models import Organisation, Unit
from utfall.store.models_access import LoginAttempt, UserAccount, UserUnit, WebSession

FREE_FAILURES = 5  # consecutive failures before the account's back-off starts
BACKOFF_BASE_SECONDS = 2  # then 2, 4, 8, ... seconds between guesses
BACKOFF_MAX_SECONDS = 60  # never longer: at most ~60 guesses an hour, never a lock-out
CLIENT_WINDOW_MINUTES = 10
CLIENT_MAX_FAILED = 30  # failures from one client address within the window
DEVICE_WINDOW_HOURS = 24
DEVICE_MAX_FAILED = 5  # failures through one device cookie before it is not trusted
DEVICE_DAYS = 180
UNKNOWN_USER = "(okänd)"  # stored instead of a typed name that matches no account
ATTEMPT_DAYS = 90  # login attempts kept (UTFALL_LOGIN_ATTEMPT_DAYS)
PRUNE_EVERY_SECONDS = 3600
HASH_WAIT_SECONDS = 5.0
MIN_PASSWORD = 12  # kept for callers; the policy is utfall.access.passwords
ASSIGNABLE_ROLES = ("clinician", "social_worker", "unit_manager", "analyst", "admin")
UNIT_ROLES = frozenset({"clinician", "social_worker", "unit_manager"})

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("utfall-dummy-password")
# at most this many argon2 checks at once, so a login flood cannot starve other requests
_HASH_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 2))
_last_prune = 0.0


class AccountError(ValueError):
    """A problem creating or changing an account (message safe to show)."""


class LoginFailed(Exception):
    """Login refused; ``code`` is ``invalid`` or ``rate_limited``."""

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


@dataclass(frozen=True)
class Device:
    """A browser that logged in as ``user_id`` before (from a verified cookie)."""

    user_id: int
    id_hash: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# ------------------------------------------------------------------ hashing


@contextmanager
def _hash_slot():
    if not _HASH_SLOTS.acquire(timeout=HASH_WAIT_SECONDS):
        raise LoginFailed("rate_limited")
    try:
        yield
    finally:
        _HASH_SLOTS.release()


def hash_password(password: str) -> str:
    """Argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if ``password`` matches (always spends the hashing time)."""
    with _hash_slot():
        try:
            return _hasher.verify(stored_hash or _DUMMY_HASH, password) and \
                stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False


# ------------------------------------------------------------------ accounts


def password_error(password: str, username: str | None) -> str | None:
    """The policy's reasons (Swedish / English) or None when acceptable."""
    problems = password_problems(password, username)
    if not problems:
        return None
    return " ".join(p.sv for p in problems) + " / " + " ".join(p.en for p in problems)


def check_role_units(conn: Connection, role: str, units: list[str]) -> None:
    """Refuse unknown roles or units, a care role without unit, and a role that does
    not fit a unit's principal (a clinician at a municipal unit)."""
    if role not in ASSIGNABLE_ROLES:
        raise AccountError(f"okänd roll / unknown role: {role}")
    rows = dict(conn.execute(select(Unit.unit_id, Organisation.principal_type)
                             .join(Organisation, Organisation.id == Unit.organisation_id)
                             .where(Unit.unit_id.in_(units))).all())
    missing = [u for u in units if u not in rows]
    if missing:
        raise AccountError(f"okänd enhet / unknown unit: {', '.join(missing)}")
    if role in UNIT_ROLES and not units:
        raise AccountError("rollen kräver en enhet / the role needs a unit")
    if role in ROLE_PRINCIPALS:
        wrong = [u for u in units if rows[u] not in ROLE_PRINCIPALS[role]]
        if wrong:
            raise AccountError(
                f"rollen passar inte huvudmannen för enheten {', '.join(wrong)} (behandlare "
                f"hör till region, socialsekreterare till kommun) / the role {role} does not "
                f"fit the principal of unit {', '.join(wrong)}")


def create_user(conn: Connection, username: str, role: str, units: Iterable[str], *,
                password: str | None = None, display_name: str | None = None,
                provider: str = "local", subject: str | None = None) -> int:
    """Create an account (local with ``password``, or external with ``subject``)."""
    username = username.strip()
    if not username or len(username) > 100:
        raise AccountError("användarnamn saknas eller är för långt / username missing or too long")
    if role not in ROLES - {"person", "system"}:
        raise AccountError(f"okänd roll / unknown role: {role}")
    units = list(dict.fromkeys(units))
    check_role_units(conn, role, units)
    if provider == "local":
        problem = password_error(password or "", username)
        if problem:
            raise AccountError(problem)
    elif not subject:
        raise AccountError("extern identitet saknas / external subject missing")
    if conn.execute(select(UserAccount.id).where(UserAccount.username == username)).first():
        raise AccountError(f"användaren finns redan / user exists: {username}")
    now = _now()
    user_id = conn.execute(insert(UserAccount).values(
        username=username, display_name=display_name or username, role=role,
        password_hash=hash_password(password) if provider == "local" and password else None,
        identity_provider=provider, external_subject=subject, active=True, failed_logins=0,
        created_at=now, password_changed_at=now if provider == "local" else None)
        .returning(UserAccount.id)).scalar_one()
    for unit in units:
        conn.execute(insert(UserUnit).values(user_id=user_id, unit_id=unit))
    return int(user_id)


def set_password(conn: Connection, username: str, password: str) -> None:
    """Replace a local account's password (policy checked), clear its back-off and end
    its sessions."""
    row = conn.execute(select(UserAccount.id, UserAccount.identity_provider)
                       .where(UserAccount.username == username)).first()
    if row is None:
        raise AccountError(f"okänd användare / unknown user: {username}")
    if row.identity_provider != "local":
        raise AccountError("kontot loggar in externt / the account logs in externally")
    problem = password_error(password, username)
    if problem:
        raise AccountError(problem)
    conn.execute(update(UserAccount).where(UserAccount.id == row.id).values(
        password_hash=hash_password(password), failed_logins=0, locked_until=None,
        password_changed_at=_now()))
    conn.execute(update(WebSession).where(WebSession.user_id == row.id).values(revoked=True))


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


# ------------------------------------------------------------------ clients and devices


def parse_proxies(value: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network,
                                              ...]:
    """``UTFALL_TRUSTED_PROXIES``: comma-separated addresses or networks (CIDR)."""
    out = []
    for part in (value or "").replace(";", ",").split(","):
        part = part.strip()
        if part:
            out.append(ipaddress.ip_network(part, strict=False))
    return tuple(out)


def _trusted(address: str, proxies: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in proxies)


def client_address(peer: str | None, forwarded_for: str | None,
                   proxies: tuple = ()) -> str | None:
    """The client address for rate limits: the TCP peer, unless the peer is a trusted
    proxy; then the right-most ``X-Forwarded-For`` entry that is not a trusted proxy
    (entries further left are whatever the client claimed)."""
    if not peer or not forwarded_for or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed hop from the trusted proxy: use the proxy itself
    return hops[0] if hops else peer


def _device_sig(secret: bytes, user_id: int, nonce: str) -> str:
    return hmac.new(secret, f"device|{user_id}|{nonce}".encode(), hashlib.sha256).hexdigest()


def new_device_cookie(secret: bytes, user_id: int) -> str:
    """A signed device cookie for a browser where ``user_id`` just logged in."""
    nonce = secrets.token_urlsafe(16)
    return f"{user_id}.{nonce}.{_device_sig(secret, user_id, nonce)}"


def device_of(secret: bytes, cookie: str | None) -> Device | None:
    """The verified device of a cookie value, or None (unsigned, forged, malformed)."""
    try:
        user, nonce, sig = (cookie or "").split(".")
        user_id = int(user)
    except ValueError:
        return None
    if not hmac.compare_digest(sig, _device_sig(secret, user_id, nonce)):
        return None
    return Device(user_id, hashlib.sha256(nonce.encode()).hexdigest())


# ------------------------------------------------------------------ login


def _record(conn: Connection, username: str, client: str | None, outcome: str,
            device: Device | None = None) -> None:
    conn.execute(insert(LoginAttempt).values(
        username=username[:100], client=(client or None) and client[:100], at=_now(),
        success=outcome == "ok", outcome=outcome, device=device.id_hash if device else None))


def backoff_seconds(failures: int) -> int:
    """Seconds an account waits after ``failures`` consecutive failures."""
    if failures < FREE_FAILURES:
        return 0
    return min(BACKOFF_BASE_SECONDS * 2 ** (failures - FREE_FAILURES), BACKOFF_MAX_SECONDS)


def _device_trusted(conn: Connection, device: Device | None, user_id: int,
                    now: dt.datetime) -> bool:
    if device is None or device.user_id != user_id:
        return False
    failures = conn.execute(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.device == device.id_hash, LoginAttempt.success.is_(False),
        LoginAttempt.at >= now - dt.timedelta(hours=DEVICE_WINDOW_HOURS))).scalar_one()
    return failures < DEVICE_MAX_FAILED


def authenticate_local(conn: Connection, username: str, password: str,
                       client: str | None = None, device: Device | None = None) -> Account:
    """Check a local password; raises :class:`LoginFailed`. Records every attempt.

    Order: the client's limit (:data:`CLIENT_MAX_FAILED` failures within
    :data:`CLIENT_WINDOW_MINUTES`, answered ``rate_limited`` without hashing); then the
    account's back-off (:func:`backoff_seconds`); then the password. A trusted
    ``device`` of the account (signed cookie, fewer than :data:`DEVICE_MAX_FAILED`
    failures) skips both the client limit and the back-off. Everything else answers
    ``invalid`` after the same hashing work. The typed user name is stored only when
    it names an account.
    """
    maybe_prune(conn)
    now = _now()
    username = (username or "").strip()[:100]
    row = conn.execute(select(UserAccount).where(UserAccount.username == username)).first()
    stored_name = row.username if row is not None else UNKNOWN_USER
    # the user's own browser is neither slowed by the account's back-off nor by the limit
    # of a client address it may share with an attacker (NAT, a hospital's proxy)
    trusted = row is not None and _device_trusted(conn, device, row.id, now)
    if client and not trusted:
        since = now - dt.timedelta(minutes=CLIENT_WINDOW_MINUTES)
        failures = conn.execute(select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.client == client[:100], LoginAttempt.success.is_(False),
            LoginAttempt.at >= since)).scalar_one()
        if failures >= CLIENT_MAX_FAILED:
            _record(conn, stored_name, client, "rate_limited", device)
            raise LoginFailed("rate_limited")
    if row is None or not row.active or row.identity_provider != "local":
        verify_password(None, password)  # same time as a real check
        _record(conn, stored_name, client, "invalid", device)
        raise LoginFailed("invalid")
    waiting_until = _aware(row.locked_until)
    if waiting_until and waiting_until > now and not trusted:
        verify_password(None, password)  # the same answer and time as a wrong password
        _record(conn, stored_name, client, "backoff", device)
        raise LoginFailed("invalid")
    if not verify_password(row.password_hash, password):
        failed = row.failed_logins + 1
        wait = backoff_seconds(failed)
        conn.execute(update(UserAccount).where(UserAccount.id == row.id).values(
            failed_logins=failed,
            locked_until=now + dt.timedelta(seconds=wait) if wait else None))
        _record(conn, stored_name, client, "invalid", device)
        raise LoginFailed("invalid")
    conn.execute(update(UserAccount).where(UserAccount.id == row.id).values(
        failed_logins=0, locked_until=None, last_login_at=now))
    _record(conn, stored_name, client, "ok", device)
    account = load_account(conn, row.id)
    assert account is not None
    return account


def record_external_login(conn: Connection, username: str | None, client: str | None,
                          outcome: str) -> None:
    """Store an external (OIDC) login attempt; ``username`` only if it names an account."""
    known = username and conn.execute(select(UserAccount.id).where(
        UserAccount.username == username)).first()
    _record(conn, username if known and username else UNKNOWN_USER, client, outcome)
    if outcome == "ok" and known:
        conn.execute(update(UserAccount).where(UserAccount.username == username).values(
            last_login_at=_now()))


# ------------------------------------------------------------------ pruning


def attempt_days() -> int:
    """Days login attempts are kept (``UTFALL_LOGIN_ATTEMPT_DAYS``, default 90)."""
    try:
        return max(1, int(os.environ.get("UTFALL_LOGIN_ATTEMPT_DAYS", ATTEMPT_DAYS)))
    except ValueError:
        return ATTEMPT_DAYS


def prune_login_attempts(conn: Connection, older_than_days: int | None = None) -> int:
    """Delete old login attempts; returns how many."""
    days = older_than_days if older_than_days is not None else attempt_days()
    cutoff = _now() - dt.timedelta(days=days)
    return conn.execute(delete(LoginAttempt).where(LoginAttempt.at < cutoff)).rowcount or 0


def prune(conn: Connection, older_than_days: int | None = None) -> tuple[int, int]:
    """Delete ended sessions and old login attempts: ``(sessions, attempts)``."""
    from utfall.access.sessions import prune_sessions

    return prune_sessions(conn), prune_login_attempts(conn, older_than_days)


def maybe_prune(conn: Connection) -> None:
    """:func:`prune` at most once per :data:`PRUNE_EVERY_SECONDS` per process (called
    at login, so an installation that is used prunes itself)."""
    global _last_prune
    if time.monotonic() - _last_prune < PRUNE_EVERY_SECONDS and _last_prune:
        return
    _last_prune = time.monotonic()
    prune(conn)
