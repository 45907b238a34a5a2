"""Accounts (argon2, lock-out, rate limit), sessions (expiry, revocation) and CSRF."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from tests.web import conftest as web_fixtures
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
    touch_session,
)
from utfall.store.models_access import LoginAttempt, UserAccount, WebSession

app = web_fixtures.app  # the web tests' fixtures: app on the seeded world, anonymous client
anon = web_fixtures.anon
world_template = web_fixtures.world_template  # the seeded world, built once per session


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


@pytest.fixture
def slow_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-off waits of minutes, so the test never outlasts one on a busy machine."""
    monkeypatch.setattr(accounts, "BACKOFF_BASE_SECONDS", 600)
    monkeypatch.setattr(accounts, "BACKOFF_MAX_SECONDS", 600)


def test_backoff_not_lock_after_repeated_failures(world: World, slow_backoff) -> None:
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


def test_session_read_without_touch_writes_nothing(world: World) -> None:
    """The web layer reads sessions read-only and refreshes last_seen separately."""
    with world.engine.begin() as conn:
        uid = conn.execute(select(UserAccount.id).where(UserAccount.username == "clin")
                           ).scalar_one()
        token = create_session(conn, uid, "reg-ber")
        old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        conn.execute(update(WebSession).values(last_seen=old))
        session = load_session(conn, token, touch=False)
        assert session is not None and session.stale
        seen = conn.execute(select(WebSession.last_seen)).scalar_one()
        assert abs((seen.replace(tzinfo=dt.UTC) if seen.tzinfo is None else seen) - old
                   ) < dt.timedelta(seconds=1)
        touch_session(conn, session.id)
        again = load_session(conn, token, touch=False)
        assert again is not None and not again.stale


# ------------------------------------------------------------------ password policy (ASVS V2.1)

REFUSED = {  # password -> (username, the policy codes expected)
    "aaaaaaaaaa": (None, {"too_short", "pattern"}),
    "0123456789": (None, {"too_short", "common"}),
    "Password12": (None, {"too_short", "common"}),
    "aaaaaaaaaaaa": (None, {"pattern"}),
    "012345678901": (None, {"pattern"}),
    "Password1234": (None, {"common"}),
    "P@ssw0rd2026!": (None, {"common"}),
    "Sommar2026!!": (None, {"common"}),
    "lösenord12345": (None, {"common"}),
    "qwertyuiop123": (None, {"common"}),
    "abcabcabcabc": (None, {"pattern"}),
    "zyxwvutsrqpo": (None, {"pattern"}),
    "kalle.karlsson": ("kalle.karlsson", {"username"}),
    "xKalle.Karlsson-99": ("kalle.karlsson", {"username"}),
    "x" * 129: (None, {"too_long", "pattern"}),
}
ACCEPTED = ["correct horse battery", "kaffe med mjölk på morgonen", "Tre gröna äpplen 1987",
            "vG7#kq2Lm!p9", "demo-Ab3dEfGh12x", "en mening med mellanslag"]


@pytest.mark.parametrize("password", list(REFUSED))
def test_password_policy_refuses(password: str) -> None:
    from utfall.access.passwords import password_problems

    username, codes = REFUSED[password]
    assert {p.code for p in password_problems(password, username)} == codes


@pytest.mark.parametrize("password", ACCEPTED)
def test_password_policy_accepts(password: str) -> None:
    from utfall.access.passwords import password_problems

    assert password_problems(password, "kalle.karlsson") == []


def test_policy_applies_to_create_reset_and_blocklist_file(world: World, tmp_path,
                                                           monkeypatch) -> None:
    from utfall.access import passwords
    from utfall.access.accounts import set_password

    with world.engine.begin() as conn:
        for bad in ("aaaaaaaaaa", "0123456789", "Password12", "nyanvandare12"):
            with pytest.raises(AccountError):
                create_user(conn, "nyanvandare12", "clinician", ["reg-ber"], password=bad)
        with pytest.raises(AccountError):
            set_password(conn, "clin", "Password1234")
        extra = tmp_path / "breached.txt"
        extra.write_text("# local list\nblå-bil-på-vägen\n", encoding="utf-8")
        monkeypatch.setenv("UTFALL_PASSWORD_BLOCKLIST", str(extra))
        assert [p.code for p in passwords.password_problems("Blå-bil-på-vägen")] == ["common"]


def test_role_must_fit_unit_principal(world: World) -> None:
    with world.engine.begin() as conn:
        for role, unit in (("clinician", "soc-malmo"), ("social_worker", "reg-ber")):
            with pytest.raises(AccountError, match="huvudman"):
                create_user(conn, f"x-{role}", role, [unit], password=PASSWORD)
        create_user(conn, "chef2", "unit_manager", ["soc-malmo"], password=PASSWORD)


# ------------------------------------------------------------------ back-off, clients, proxies


def _fail(conn, user: str, client: str | None = None, device=None) -> str:
    with pytest.raises(LoginFailed) as failed:
        authenticate_local(conn, user, "wrong password!", client, device)
    return failed.value.code


def test_backoff_grows_and_is_capped() -> None:
    waits = [accounts.backoff_seconds(n) for n in range(0, 14)]
    assert waits[: accounts.FREE_FAILURES] == [0] * accounts.FREE_FAILURES
    assert waits[accounts.FREE_FAILURES:accounts.FREE_FAILURES + 4] == [2, 4, 8, 16]
    assert max(waits) == accounts.BACKOFF_MAX_SECONDS


def test_attacker_cannot_lock_out_a_colleague(world: World, slow_backoff) -> None:
    """An attacker hammering a colleague's account from many addresses only slows
    unknown browsers; the colleague's own browser (device cookie) still gets in."""
    secret = b"k" * 32
    with world.engine.begin() as conn:
        uid = conn.execute(select(UserAccount.id).where(UserAccount.username == "clin")
                           ).scalar_one()
        colleague = accounts.device_of(secret, accounts.new_device_cookie(secret, uid))
        assert colleague is not None
        for i in range(40):
            assert _fail(conn, "clin", f"10.0.{i}.1") == "invalid"
        # a fresh browser waits (same answer as a wrong password) ...
        with pytest.raises(LoginFailed) as waiting:
            authenticate_local(conn, "clin", PASSWORD, "10.9.9.9")
        assert waiting.value.code == "invalid"
        # ... the colleague's browser does not
        assert authenticate_local(conn, "clin", PASSWORD, "192.168.1.5", colleague).id == uid
        # a device cookie of another account, or a forged one, does not help an attacker
        for _ in range(accounts.FREE_FAILURES + 1):
            _fail(conn, "soc", "10.1.1.1")
        assert accounts.device_of(secret, f"{uid}.nonce.forged") is None
        with pytest.raises(LoginFailed):
            authenticate_local(conn, "soc", PASSWORD, "10.1.1.1", colleague)


def test_device_cookie_stops_helping_after_failures(world: World, slow_backoff) -> None:
    secret = b"s" * 32
    with world.engine.begin() as conn:
        uid = conn.execute(select(UserAccount.id).where(UserAccount.username == "soc")
                           ).scalar_one()
        stolen = accounts.device_of(secret, accounts.new_device_cookie(secret, uid))
        for _ in range(accounts.DEVICE_MAX_FAILED + 2):
            _fail(conn, "soc", "10.2.2.2", stolen)
        with pytest.raises(LoginFailed):  # account in back-off, device no longer trusted
            authenticate_local(conn, "soc", PASSWORD, "10.2.2.2", stolen)


def test_unknown_locked_and_wrong_answer_the_same(world: World, slow_backoff) -> None:
    with world.engine.begin() as conn:
        for _ in range(accounts.FREE_FAILURES + 1):
            _fail(conn, "boss")
        create_user(conn, "ext", "clinician", ["reg-ber"], provider="https://idp", subject="s")
        conn.execute(update(UserAccount).where(UserAccount.username == "soc_lund")
                     .values(active=False))
        codes = {user: _fail(conn, user) for user in ("boss", "nobody", "ext", "soc_lund",
                                                      "clin")}
    assert set(codes.values()) == {"invalid"}


def test_typed_names_stored_only_for_accounts(world: World) -> None:
    with world.engine.begin() as conn:
        _fail(conn, "clin", "1.1.1.1")
        _fail(conn, "Hemligt-lösenord-i-fel-fält", "1.1.1.1")
        stored = conn.execute(select(LoginAttempt.username, LoginAttempt.outcome)
                              .order_by(LoginAttempt.id)).all()
    assert [tuple(r) for r in stored] == [("clin", "invalid"),
                                          (accounts.UNKNOWN_USER, "invalid")]


@pytest.mark.parametrize(("peer", "xff", "proxies", "expected"), [
    ("203.0.113.9", "1.2.3.4", "", "203.0.113.9"),  # no proxies configured: header ignored
    ("203.0.113.9", "1.2.3.4", "10.0.0.1", "203.0.113.9"),  # peer is not a proxy
    ("10.0.0.1", "1.2.3.4", "10.0.0.1", "1.2.3.4"),  # trusted proxy
    ("10.0.0.1", "6.6.6.6, 1.2.3.4", "10.0.0.0/8", "1.2.3.4"),  # client-claimed hop ignored
    ("10.0.0.1", "1.2.3.4, 10.0.0.7", "10.0.0.0/8", "1.2.3.4"),  # chain of proxies
    ("10.0.0.1", "garbage", "10.0.0.1", "10.0.0.1"),  # malformed: the proxy itself
    ("::1", "2001:db8::5", "::1", "2001:db8::5"),
])
def test_forwarded_for_only_from_trusted_proxies(peer, xff, proxies, expected) -> None:
    assert accounts.client_address(peer, xff, accounts.parse_proxies(proxies)) == expected


def test_rotating_forwarded_for_does_not_escape_the_client_limit(
        app, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    monkeypatch.setattr(accounts, "CLIENT_MAX_FAILED", 5)
    codes = []
    with TestClient(app, raise_server_exceptions=False) as client:
        for i in range(8):
            r = client.post("/api/session", json={"username": f"u{i}", "password": "x" * 12},
                            headers={"X-Forwarded-For": f"198.51.100.{i}"})
            codes.append(r.json()["detail"])
    assert codes[:5] == ["invalid"] * 5 and codes[5:] == ["rate_limited"] * 3


def test_trusted_proxy_forwarded_client_is_limited_per_client(
        app, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    monkeypatch.setattr(accounts, "CLIENT_MAX_FAILED", 3)
    monkeypatch.setenv("UTFALL_TRUSTED_PROXIES", "testclient")  # invalid: refused loudly
    with pytest.raises(ValueError):
        accounts.parse_proxies("testclient")
    monkeypatch.setenv("UTFALL_TRUSTED_PROXIES", "127.0.0.1")
    # TestClient's peer is "testclient" (not an IP): never a trusted proxy
    with TestClient(app, raise_server_exceptions=False) as client:
        details = [client.post("/api/session", json={"username": "x", "password": "y" * 12},
                               headers={"X-Forwarded-For": f"198.51.100.{i}"}).json()["detail"]
                   for i in range(4)]
    assert details[-1] == "rate_limited"


# ------------------------------------------------------------------ login CSRF, pruning


def test_login_csrf_refuses_planted_and_cross_site(anon) -> None:
    anon.get("/login")
    good = anon.cookies.get("utfall_login_csrf")
    assert good and good.count(".") == 2  # nonce.expiry.signature
    form = {"username": "clin", "password": PASSWORD}
    planted = "attacker-chosen-value"
    anon.cookies.set("utfall_login_csrf", planted)
    r = anon.post("/login", data={**form, "csrf_token": planted}, follow_redirects=False)
    assert r.status_code == 403
    nonce, expiry, _sig = good.split(".")
    forged = f"{nonce}.{int(expiry) + 99999}.{'0' * 64}"
    anon.cookies.set("utfall_login_csrf", forged)
    assert anon.post("/login", data={**form, "csrf_token": forged}).status_code == 403
    anon.cookies.set("utfall_login_csrf", good)
    r = anon.post("/login", data={**form, "csrf_token": good},
                  headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403
    r = anon.post("/login", data={**form, "csrf_token": good},
                  headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert r.status_code == 403
    r = anon.post("/login", data={**form, "csrf_token": good}, follow_redirects=False)
    assert r.status_code == 303 and anon.cookies.get("utfall_device")


def test_expired_login_csrf_refused() -> None:
    from utfall.access.sessions import check_login_csrf, new_login_csrf

    old = new_login_csrf(b"k" * 32, minutes=-1)
    assert not check_login_csrf(b"k" * 32, old, old)
    fresh = new_login_csrf(b"k" * 32)
    assert check_login_csrf(b"k" * 32, fresh, fresh)
    assert not check_login_csrf(b"other-key" * 4, fresh, fresh)


def test_prune_sessions_and_attempts(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from utfall.access import accounts
    from utfall.access.accounts import prune

    # the failed logins below must not prune on their own (at most hourly per process)
    monkeypatch.setattr(accounts, "_last_prune", time.monotonic())

    with world.engine.begin() as conn:
        uid = conn.execute(select(UserAccount.id).where(UserAccount.username == "clin")
                           ).scalar_one()
        live = create_session(conn, uid, "reg-ber")
        create_session(conn, uid, "reg-ber", hours=-1)  # expired
        revoke_session(conn, create_session(conn, uid, "reg-ber"))
        _fail(conn, "clin", "1.1.1.1")
        conn.execute(update(LoginAttempt).values(
            at=dt.datetime.now(dt.UTC) - dt.timedelta(days=100)))
        _fail(conn, "clin", "1.1.1.1")
        sessions, attempts = prune(conn)
        assert (sessions, attempts) == (2, 1)
        assert load_session(conn, live) is not None
        assert conn.execute(select(LoginAttempt.id)).scalars().all() != []
