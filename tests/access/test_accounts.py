"""Accounts (argon2, lock-out, rate limit), sessions (expiry, revocation) and CSRF."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from tests.web.factory import PASSWORD, World
from utfall.access import accounts
from utfall.access.accounts import (
    AccountError,
    Identity,
    LoginFailed,
    account_for_identity,
    authenticate_local,
    create_user,
)
from utfall.access.sessions import (
    check_csrf,
    create_session,
    load_session,
    revoke_session,
    revoke_user_sessions,
)
from utfall.store.models_access import LoginAttempt, UserAccount, WebSession


def test_password_stored_as_argon2(world: World) -> None:
    with world.engine.connect() as conn:
        stored = conn.execute(select(UserAccount.password_hash)
                              .where(UserAccount.username == "clin")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_login_ok_and_wrong_password(world: World) -> None:
    with world.engine.begin() as conn:
        account = authenticate_local(conn, "clin", PASSWORD, "1.2.3.4")
        assert account.role == "clinician" and account.units == ("reg-ber",)
        for user, password in (("clin", "wrong password"), ("nobody", PASSWORD)):
            with pytest.raises(LoginFailed) as failed:
                authenticate_local(conn, user, password, "1.2.3.4")
            assert failed.value.code == "invalid"
        attempts = conn.execute(select(LoginAttempt.success)).scalars().all()
    assert attempts == [True, False, False]


def test_backoff_not_lock_after_repeated_failures(world: World) -> None:
    with world.engine.begin() as conn:
        codes = []
        for _ in range(accounts.FREE_FAILURES):
            with pytest.raises(LoginFailed) as failed:
                authenticate_local(conn, "soc", "wrong", None)
            codes.append(failed.value.code)
        assert codes == ["invalid"] * accounts.FREE_FAILURES  # never "locked"
        with pytest.raises(LoginFailed) as waiting:  # right password, but in the back-off
            authenticate_local(conn, "soc", PASSWORD, None)
        assert waiting.value.code == "invalid"
        conn.execute(update(UserAccount).where(UserAccount.username == "soc").values(
            locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        assert authenticate_local(conn, "soc", PASSWORD, None).username == "soc"


def test_client_rate_limit(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "CLIENT_MAX_FAILED", 3)
    with world.engine.begin() as conn:
        for i in range(3):
            with pytest.raises(LoginFailed):
                authenticate_local(conn, f"guess{i}", "x", "9.9.9.9")
        with pytest.raises(LoginFailed) as limited:
            authenticate_local(conn, "clin", PASSWORD, "9.9.9.9")
        assert limited.value.code == "rate_limited"
        assert authenticate_local(conn, "clin", PASSWORD, "8.8.8.8").username == "clin"


def test_account_validation(world: World) -> None:
    with world.engine.begin() as conn:
        with pytest.raises(AccountError):
            create_user(conn, "x", "clinician", ["reg-ber"], password="short")
        with pytest.raises(AccountError):
            create_user(conn, "x", "wizard", ["reg-ber"], password=PASSWORD)
        with pytest.raises(AccountError):
            create_user(conn, "x", "clinician", ["nowhere"], password=PASSWORD)
        with pytest.raises(AccountError):
            create_user(conn, "x", "clinician", [], password=PASSWORD)
        with pytest.raises(AccountError):
            create_user(conn, "clin", "clinician", ["reg-ber"], password=PASSWORD)


def test_external_identity_maps_to_account(world: World) -> None:
    with world.engine.begin() as conn:
        create_user(conn, "oidc.user", "clinician", ["reg-ber"], provider="https://idp.example",
                    subject="sub-123")
        account = account_for_identity(conn, Identity("https://idp.example", "sub-123"))
        assert account is not None and account.username == "oidc.user"
        assert account_for_identity(conn, Identity("https://other", "sub-123")) is None
        with pytest.raises(LoginFailed):  # no local password for external accounts
            authenticate_local(conn, "oidc.user", "", None)


def test_sessions_expire_and_revoke(world: World) -> None:
    with world.engine.begin() as conn:
        uid = conn.execute(select(UserAccount.id).where(UserAccount.username == "clin")
                           ).scalar_one()
        token = create_session(conn, uid, "reg-ber")
        session = load_session(conn, token)
        assert session is not None and session.unit_id == "reg-ber"
        stored = conn.execute(select(WebSession.id)).scalars().all()
        assert token not in stored  # only the hash is kept
        assert check_csrf(session, session.csrf_token)
        assert not check_csrf(session, "forged") and not check_csrf(session, None)
        conn.execute(update(WebSession).values(
            last_seen=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
        assert load_session(conn, token) is None  # idle too long
        token2 = create_session(conn, uid, "reg-ber", hours=-1)
        assert load_session(conn, token2) is None  # absolute expiry
        token3 = create_session(conn, uid, "reg-ber")
        revoke_session(conn, token3)
        assert load_session(conn, token3) is None
        token4 = create_session(conn, uid, "reg-ber")
        revoke_user_sessions(conn, uid)
        assert load_session(conn, token4) is None
        assert load_session(conn, "nonsense") is None
