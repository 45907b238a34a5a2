"""OpenID Connect login end to end against a REAL provider (npm ``oidc-provider`` in
``test-tools/``, script ``tests/access/oidc/provider.mjs``) started on 127.0.0.1, and
a live Utfall server; httpx follows the redirects like a browser would.

The provider's accounts carry the claims of a regional IdP (SITHS style:
``employeeHsaId``, care assignment claims) and an ``acr``; the test controls who logs
in with ``login_hint``. Also: ID-token checks with tokens signed here (bad signature,
wrong ``iss``/``aud``, expired, wrong ``nonce``, unsigned).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from tests.web.e2e_support import free_port, live_server
from utfall.access import oidc
from utfall.store.models_access import LoginAttempt, UserAccount

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "access" / "oidc" / "provider.mjs"
TOOLS = ROOT / "test-tools" / "node_modules" / "oidc-provider"
LOA2, LOA3 = oidc.LOA[1], oidc.LOA[2]
PROVIDER_HSA = "SE2321000016-0001"
ASSIGNMENT = {"healthCareProviderHsaId": PROVIDER_HSA,
              "commissionPurpose": "Vård och behandling", "commissionRight": "Läsa;Alla;SJF"}
ACCOUNTS = {
    # a clinician with an assignment at the unit mapped to reg-ber
    "anna": {"acr": LOA3, "claims": {"employeeHsaId": "SE2321000016-A001", "name": "Anna Läkare",
                                     "commissionHsaId": "SE2321000016-C001", **ASSIGNMENT}},
    # an assignment at a unit Utfall does not know
    "bertil": {"acr": LOA3, "claims": {"employeeHsaId": "SE2321000016-B002",
                                       "commissionHsaId": "SE2321000016-C999", **ASSIGNMENT}},
    # password-level assurance only
    "cecilia": {"acr": LOA2, "claims": {"employeeHsaId": "SE2321000016-C003",
                                        "commissionHsaId": "SE2321000016-C001", **ASSIGNMENT}},
    # a care assignment mapped to a municipal unit: a clinician role does not fit
    "david": {"acr": LOA3, "claims": {"employeeHsaId": "SE2321000016-D004",
                                      "commissionHsaId": "SE2321000016-C777", **ASSIGNMENT}},
    # the right unit, but under another care provider
    "erik": {"acr": LOA3, "claims": {"employeeHsaId": "SE2321000016-E005",
                                     "commissionHsaId": "SE2321000016-C001",
                                     **{**ASSIGNMENT, "healthCareProviderHsaId": "SE999-X"}}},
    # a list of assignments; the second maps to the LARO unit
    "frida": {"acr": oidc.LOA[3], "claims": {
        "employeeHsaId": "SE2321000016-F006", "commissions": [
            {"commissionHsaId": "SE2321000016-C999", **ASSIGNMENT},
            {"commissionHsaId": "SE2321000016-C002", **ASSIGNMENT}]}},
    # municipal provider: accounts kept in Utfall, matched on sub
    "sara": {"acr": LOA2, "claims": {"name": "Sara Socialsekreterare"}},
    "okand": {"acr": LOA2, "claims": {}},
}
MAPPING = """
units:
  - {hsa_id: SE2321000016-C001, unit: reg-ber, care_provider: SE2321000016-0001}
  - {hsa_id: SE2321000016-C002, unit: reg-laro, care_provider: SE2321000016-0001}
  - {hsa_id: SE2321000016-C777, unit: soc-malmo}
roles:
  - {purpose: Vård och behandling, right_contains: Chef, role: unit_manager}
  - {purpose: Vård och behandling, role: clinician}
"""

pytestmark = pytest.mark.skipif(not TOOLS.exists() or shutil.which("node") is None,
                                reason="needs node and test-tools (npm ci)")


@dataclass
class Setup:
    app: str
    issuer: str
    db_url: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("oidc")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    (folder / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    env = {"UTFALL_OIDC_PROVIDERS": "region,kommun",
           "UTFALL_OIDC_REGION_ISSUER": issuer, "UTFALL_OIDC_REGION_CLIENT_ID": "utfall",
           "UTFALL_OIDC_REGION_CLIENT_SECRET": "region-secret-for-tests",
           "UTFALL_OIDC_REGION_KIND": "siths", "UTFALL_OIDC_REGION_LABEL": "SITHS (Region Syd)",
           "UTFALL_OIDC_REGION_ACR_MIN": LOA3,
           "UTFALL_OIDC_KOMMUN_ISSUER": issuer, "UTFALL_OIDC_KOMMUN_CLIENT_ID": "kommun",
           "UTFALL_OIDC_KOMMUN_CLIENT_SECRET": "kommun-secret-for-tests",
           "UTFALL_OIDC_KOMMUN_LABEL": "Malmö stad",
           "UTFALL_OIDC_MAPPING": str(folder / "mapping.yaml")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    node = None
    try:
        with live_server(folder) as server:
            config = {"port": port, "acr_values": list(oidc.LOA), "accounts": ACCOUNTS,
                      "clients": [
                          {"client_id": "utfall", "client_secret": "region-secret-for-tests",
                           "redirect_uris": [f"{server.url}/login/oidc/region/callback"]},
                          {"client_id": "kommun", "client_secret": "kommun-secret-for-tests",
                           "redirect_uris": [f"{server.url}/login/oidc/kommun/callback"]}]}
            (folder / "provider.json").write_text(json.dumps(config), encoding="utf-8")
            node = subprocess.Popen(["node", str(SCRIPT), str(folder / "provider.json")],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            deadline = time.monotonic() + 30
            line = ""
            while not line.startswith("READY"):
                line = node.stdout.readline() if node.stdout else ""
                if node.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"provider did not start: {line}")
            # an account the municipal administrator created for the provider's subject
            subprocess.run([str(ROOT / ".venv/bin/utfall"), "users", "add", "sara.kommun",
                            "--role", "social_worker", "--unit", "soc-malmo", "--provider",
                            issuer, "--subject", "sara"], check=True, capture_output=True,
                           env={**os.environ, **server.env})
            yield Setup(server.url, issuer, server.env["UTFALL_DATABASE_URL"])
    finally:
        if node is not None:
            node.terminate()
            node.wait(timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _login(setup: Setup, provider: str, hint: str) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(follow_redirects=True, timeout=30)
    r = client.get(f"{setup.app}/login/oidc/{provider}", params={"login_hint": hint,
                                                                  "next": "/worklist"})
    return client, r


def _attempts(setup: Setup) -> list[tuple[str, str]]:
    engine = create_engine(setup.db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(LoginAttempt.username, LoginAttempt.outcome)
                            .order_by(LoginAttempt.id)).all()
    engine.dispose()
    return [(r.username, r.outcome) for r in rows]


def test_login_page_offers_the_providers(setup: Setup) -> None:
    r = httpx.get(setup.app + "/login")
    assert "Logga in med SITHS (Region Syd)" in r.text and "/login/oidc/kommun" in r.text


def test_regional_login_maps_assignment_to_unit_and_role(setup: Setup) -> None:
    client, r = _login(setup, "region", "anna")
    assert r.status_code == 200, r.text
    assert str(r.url).startswith(setup.app + "/login/oidc/region/callback")
    assert 'url=/worklist' in r.text  # continues to the target on the same site
    me = client.get(setup.app + "/api/me").json()
    assert me["user"] == "SE2321000016-A001" and me["role"] == "clinician"
    assert me["units"] == ["reg-ber"] and me["unit_id"] == "reg-ber"
    page = client.get(setup.app + "/worklist")
    assert page.status_code == 200 and "Anna Läkare" in page.text
    engine = create_engine(setup.db_url)
    with engine.connect() as conn:
        row = conn.execute(select(UserAccount).where(
            UserAccount.external_subject == "SE2321000016-A001")).one()
    engine.dispose()
    assert row.identity_provider == setup.issuer and row.password_hash is None
    assert ("SE2321000016-A001", "ok") in _attempts(setup)


def test_assignment_list_picks_the_mapped_one(setup: Setup) -> None:
    client, r = _login(setup, "region", "frida")
    assert r.status_code == 200
    me = client.get(setup.app + "/api/me").json()
    assert me["role"] == "clinician" and me["units"] == ["reg-laro"]


@pytest.mark.parametrize("hint", ["bertil", "david", "erik"])
def test_no_matching_care_assignment_is_refused(setup: Setup, hint: str) -> None:
    client, r = _login(setup, "region", hint)
    assert r.status_code == 403
    assert "inget medarbetaruppdrag" in r.text and 'data-code="no_assignment"' in r.text
    assert client.get(setup.app + "/api/me").status_code == 401
    assert client.cookies.get("utfall_session") is None
    engine = create_engine(setup.db_url)
    with engine.connect() as conn:
        created = conn.execute(select(UserAccount.id).where(
            UserAccount.external_subject == ACCOUNTS[hint]["claims"]["employeeHsaId"])).first()
    engine.dispose()
    assert created is None  # no account for a refused login
    assert ("(okänd)", "oidc_no_assignment") in _attempts(setup)


def test_too_low_assurance_is_refused(setup: Setup) -> None:
    client, r = _login(setup, "region", "cecilia")
    assert r.status_code == 403 and 'data-code="acr_too_low"' in r.text
    assert "tillitsnivå" in r.text
    assert client.get(setup.app + "/api/me").status_code == 401


def test_municipal_provider_maps_subject_to_existing_account(setup: Setup) -> None:
    client, r = _login(setup, "kommun", "sara")
    assert r.status_code == 200
    me = client.get(setup.app + "/api/me").json()
    assert me["user"] == "sara.kommun" and me["role"] == "social_worker"
    client, r = _login(setup, "kommun", "okand")
    assert r.status_code == 403 and 'data-code="no_account"' in r.text


def test_deactivated_account_is_refused(setup: Setup) -> None:
    env = {**os.environ, "UTFALL_DATABASE_URL": setup.db_url}
    _login(setup, "region", "anna")  # exists after a first login
    subprocess.run([str(ROOT / ".venv/bin/utfall"), "users", "deactivate",
                    "SE2321000016-A001"], check=True, capture_output=True, env=env)
    try:
        _client, r = _login(setup, "region", "anna")
        assert r.status_code == 403 and 'data-code="inactive"' in r.text
    finally:
        engine = create_engine(setup.db_url)
        with engine.begin() as conn:
            conn.execute(UserAccount.__table__.update().where(
                UserAccount.username == "SE2321000016-A001").values(active=True))
        engine.dispose()


def _callback_url(setup: Setup, client: httpx.Client, hint: str) -> str:
    """Walk the redirects by hand up to (not into) Utfall's callback."""
    url = f"{setup.app}/login/oidc/region?login_hint={hint}"
    for _ in range(10):
        r = client.get(url, follow_redirects=False)
        location = r.headers.get("location", "")
        url = location if location.startswith("http") else httpx.URL(url).join(location)
        url = str(url)
        if url.startswith(setup.app + "/login/oidc/region/callback"):
            return url
    raise AssertionError("no callback")


def test_state_tampering_replay_and_foreign_browser_are_refused(setup: Setup) -> None:
    client = httpx.Client(timeout=30)
    callback = _callback_url(setup, client, "anna")
    tampered = re.sub(r"state=[^&]+", "state=forged", callback)
    r = client.get(tampered)
    assert r.status_code == 403 and 'data-code="failed"' in r.text
    other = httpx.Client(timeout=30)  # a browser that did not start the login
    callback = _callback_url(setup, client, "anna")
    assert other.get(callback).status_code == 400
    r = client.get(callback)
    assert r.status_code == 200  # the browser that started it
    replay = httpx.Client(timeout=30, cookies={"utfall_oidc": "x"})
    assert replay.get(callback).status_code == 400
    assert client.get(callback).status_code == 400  # flow cookie used up


# ------------------------------------------------------------------ ID-token checks


def _signed(claims: dict, key=None, alg: str = "RS256") -> tuple[str, object]:
    from authlib.jose import JsonWebKey, jwt

    key = key or JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
    token = jwt.encode({"alg": alg, "kid": "k1"}, claims, key).decode()
    return token, key


def test_id_token_checks() -> None:
    from authlib.jose import JsonWebKey, KeySet

    provider = oidc.Provider("region", "https://idp.example", "utfall", "s", kind="siths")
    now = int(time.time())
    good = {"iss": "https://idp.example", "aud": "utfall", "sub": "x", "nonce": "n1",
            "iat": now, "exp": now + 300}
    token, key = _signed(good)
    public = KeySet([JsonWebKey.import_key({**key.as_dict(is_private=False), "kid": "k1"})])
    assert oidc.verify_id_token(token, public, provider, "n1")["sub"] == "x"
    cases = {
        "signature": _signed(good)[0],  # another key
        "iss": _signed({**good, "iss": "https://evil.example"}, key)[0],
        "aud": _signed({**good, "aud": "someone-else"}, key)[0],
        "exp": _signed({**good, "iat": now - 4000, "exp": now - 3600}, key)[0],
        "nonce": _signed({**good, "nonce": "other"}, key)[0],
        "no-exp": _signed({k: v for k, v in good.items() if k != "exp"}, key)[0],
    }
    header = {"alg": "none", "typ": "JWT"}
    import base64

    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    cases["unsigned"] = f"{b64(header)}.{b64(good)}."
    for name, bad in cases.items():
        with pytest.raises(oidc.OidcRefused) as refused:
            oidc.verify_id_token(bad, public, provider, "n1")
        assert refused.value.code == "failed", name


def test_acr_check_orders_levels() -> None:
    provider = oidc.Provider("region", "https://idp.example", "utfall", "s", acr_min=LOA3)
    oidc.check_acr(provider, {"acr": LOA3})
    oidc.check_acr(provider, {"acr": oidc.LOA[3]})
    for acr in (LOA2, None, "urn:unknown"):
        with pytest.raises(oidc.OidcRefused) as refused:
            oidc.check_acr(provider, {"acr": acr})
        assert refused.value.code == "acr_too_low"


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian chromium")
def test_oidc_login_in_chromium(setup: Setup) -> None:
    """The redirect back from the provider is a cross-site navigation: the session
    cookie (SameSite=Strict) must still reach the next page. Screenshots of the login
    page with the providers and of a refusal, desktop and phone."""
    from tests.web.e2e_support import chromium, shot

    with chromium() as browser:
        for label, size in (("desktop", {"width": 1280, "height": 800}),
                            ("phone", {"width": 390, "height": 844})):
            context = browser.new_context(viewport=size, locale="sv-SE")
            page = context.new_page()
            page.goto(setup.app + "/login")
            assert page.get_by_role("link", name="Logga in med SITHS (Region Syd)").count() == 1
            shot(page, f"oidc-login-{label}")
            page.goto(f"{setup.app}/login/oidc/region?login_hint=bertil")
            assert "inget medarbetaruppdrag" in page.inner_text("main")
            shot(page, f"oidc-refused-assignment-{label}")
            context.clear_cookies()  # the provider remembers its last login (single sign-on)
            page.goto(f"{setup.app}/login/oidc/region?login_hint=cecilia")
            assert "tillitsnivå" in page.inner_text("main")
            shot(page, f"oidc-refused-acr-{label}")
            context.clear_cookies()
            page.goto(f"{setup.app}/login/oidc/region?login_hint=anna&next=/worklist")
            page.wait_for_url("**/worklist")
            assert "Anna Läkare" in page.inner_text("header")
            shot(page, f"oidc-worklist-{label}")
            context.close()
