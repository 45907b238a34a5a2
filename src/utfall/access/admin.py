"""User administration (admin role and CLI): edit role and units, deactivate,
unlock, reset a password; users change their own password.

Every change ends the account's other sessions where it matters (role, units,
deactivation, password) and is written to the audit log (no person data: the
event's ``detail`` names the account and what changed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from utfall.access.accounts import (
    AccountError,
    check_role_units,
    hash_password,
    password_error,
    set_password,
    verify_password,
)
from utfall.access.audit import Actor, log_event
from utfall.access.sessions import revoke_user_sessions
from utfall.store.models_access import UserAccount, UserUnit


@dataclass(frozen=True)
class UserRow:
    """An account as the administration pages and ``utfall users list`` show it."""

    id: int
    username: str
    display_name: str
    role: str
    units: tuple[str, ...]
    provider: str
    active: bool
    waiting: bool  # in back-off after failed logins
    failed_logins: int
    last_login_at: Any


def _user(conn: Connection, username: str) -> Any:
    row = conn.execute(select(UserAccount).where(UserAccount.username == username)).first()
    if row is None:
        raise AccountError(f"okänd användare / unknown user: {username}")
    return row


def _audit(conn: Connection, actor: Actor, what: str, username: str, **detail: Any) -> None:
    log_event(conn, actor, "change", None, {"account": username, "admin": what, **detail})


def list_users(conn: Connection) -> list[UserRow]:
    """Every account with its units, by user name."""
    import datetime as dt

    units: dict[int, list[str]] = {}
    for uid, unit in conn.execute(select(UserUnit.user_id, UserUnit.unit_id)
                                  .order_by(UserUnit.unit_id)):
        units.setdefault(uid, []).append(unit)
    now = dt.datetime.now(dt.UTC)
    out = []
    for u in conn.execute(select(UserAccount).order_by(UserAccount.username)):
        until = u.locked_until
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=dt.UTC)
        out.append(UserRow(u.id, u.username, u.display_name, u.role,
                           tuple(units.get(u.id, [])), u.identity_provider, bool(u.active),
                           bool(until and until > now), u.failed_logins, u.last_login_at))
    return out


def get_user(conn: Connection, username: str) -> UserRow:
    """One account (raises :class:`AccountError` when unknown)."""
    for row in list_users(conn):
        if row.username == username:
            return row
    raise AccountError(f"okänd användare / unknown user: {username}")


def edit_user(conn: Connection, actor: Actor, username: str, *, role: str | None = None,
              units: Iterable[str] | None = None, display_name: str | None = None) -> None:
    """Change role and/or units (the role must fit every unit's principal)."""
    row = _user(conn, username)
    new_role = role or row.role
    current = list(conn.execute(select(UserUnit.unit_id).where(UserUnit.user_id == row.id)
                                .order_by(UserUnit.unit_id)).scalars())
    new_units = list(dict.fromkeys(units)) if units is not None else current
    check_role_units(conn, new_role, new_units)
    changed = new_role != row.role or sorted(new_units) != sorted(current)
    values: dict[str, Any] = {"role": new_role}
    if display_name is not None and display_name.strip():
        values["display_name"] = display_name.strip()[:200]
    conn.execute(update(UserAccount).where(UserAccount.id == row.id).values(**values))
    if sorted(new_units) != sorted(current):
        conn.execute(delete(UserUnit).where(UserUnit.user_id == row.id))
        for unit in new_units:
            conn.execute(insert(UserUnit).values(user_id=row.id, unit_id=unit))
    if changed:
        revoke_user_sessions(conn, row.id)
    _audit(conn, actor, "edit", username, role=new_role, units=new_units)


def set_active(conn: Connection, actor: Actor, username: str, active: bool) -> None:
    """Deactivate (ends every session at once) or reactivate an account."""
    row = _user(conn, username)
    if not active and actor.user == username:
        raise AccountError("du kan inte stänga av ditt eget konto / "
                           "you cannot deactivate your own account")
    conn.execute(update(UserAccount).where(UserAccount.id == row.id).values(active=active))
    if not active:
        revoke_user_sessions(conn, row.id)
    _audit(conn, actor, "activate" if active else "deactivate", username)


def unlock(conn: Connection, actor: Actor, username: str) -> None:
    """Clear the account's failed-login back-off."""
    row = _user(conn, username)
    conn.execute(update(UserAccount).where(UserAccount.id == row.id).values(
        failed_logins=0, locked_until=None))
    _audit(conn, actor, "unlock", username)


def reset_password(conn: Connection, actor: Actor, username: str, password: str) -> None:
    """Set a new password for a local account (policy checked; sessions end)."""
    set_password(conn, username, password)
    _audit(conn, actor, "reset_password", username)


def change_own_password(conn: Connection, user_id: int, current: str, new: str, *,
                        keep_session: str | None = None) -> None:
    """The user changes their own password: the current one must match, the new one
    must pass the policy and differ; other sessions of the user end."""
    row = conn.execute(select(UserAccount).where(UserAccount.id == user_id)).first()
    if row is None or row.identity_provider != "local" or not row.active:
        raise AccountError("kontot har inget lösenord här / the account has no password here")
    if not verify_password(row.password_hash, current):
        raise AccountError("nuvarande lösenord stämmer inte / the current password is wrong")
    if current == new:
        raise AccountError("det nya lösenordet måste skilja sig från det nuvarande / "
                           "the new password must differ from the current one")
    problem = password_error(new, row.username)
    if problem:
        raise AccountError(problem)
    import datetime as dt

    conn.execute(update(UserAccount).where(UserAccount.id == row.id).values(
        password_hash=hash_password(new), password_changed_at=dt.datetime.now(dt.UTC),
        failed_logins=0, locked_until=None))
    revoke_user_sessions(conn, row.id, except_id=keep_session)
    log_event(conn, Actor(row.username, row.role), "change", None,
              {"account": row.username, "admin": "change_password"})
