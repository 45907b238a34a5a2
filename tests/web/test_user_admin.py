"""User administration (admin pages and ``utfall users …``) and users changing their
own password; a walk of these pages in real Chromium (desktop, 390 px phone,
keyboard) with screenshots in ``test-artifacts/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tests.web.conftest import page_login
from tests.web.e2e_support import CHROMIUM, chromium, live_server, shot
from tests.web.factory import PASSWORD, World
from utfall.store.models import AuditEvent
from utfall.store.models_access import UserAccount

NEW_PASSWORD = "ett nytt långt lösenord"


@pytest.fixture
def browser(app) -> Iterator:
    clients = []

    def make(user: str, password: str = PASSWORD) -> tuple[TestClient, str]:
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client, page_login(client, user) if password == PASSWORD else ""

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _uid(world: World, name: str) -> int:
    with world.engine.connect() as conn:
        return conn.execute(select(UserAccount.id).where(UserAccount.username == name)
                            ).scalar_one()


def _bearer(app, user: str, password: str = PASSWORD) -> int:
    with TestClient(app, raise_server_exceptions=False) as c:
        return c.post("/api/session", json={"username": user, "password": password}).status_code


def test_admin_edits_role_and_units(browser, app, world: World) -> None:
    root, csrf = browser("root")
    clin2, _ = browser("clin2")
    uid = _uid(world, "clin2")
    page = root.get(f"/admin/users/{uid}")
    assert page.status_code == 200 and "Roll, enheter och namn" in page.text
    r = root.post(f"/admin/users/{uid}", data={"csrf_token": csrf, "action": "save",
                                               "role": "clinician", "units": "soc-malmo"})
    assert r.status_code == 422 and "huvudman" in r.text
    assert 'selected>Socialtjänsten Malmö' in r.text.replace('value="soc-malmo" ', "")
    r = root.post(f"/admin/users/{uid}", data={"csrf_token": csrf, "action": "save",
                                               "role": "clinician",
                                               "units": ["reg-laro", "reg-ber"]},
                  follow_redirects=False)
    assert r.status_code == 303
    assert clin2.get("/api/me").status_code == 401  # units changed: sessions ended
    with TestClient(app) as c:
        me = c.post("/api/session", json={"username": "clin2", "password": PASSWORD}).json()
    assert sorted(me["units"]) == ["reg-ber", "reg-laro"]
    with world.engine.connect() as conn:
        details = conn.execute(select(AuditEvent.detail).where(AuditEvent.actor == "root")
                               ).scalars().all()
    assert {"account": "clin2", "admin": "edit", "role": "clinician",
            "units": ["reg-laro", "reg-ber"]} in details


def test_admin_deactivates_unlocks_and_resets(browser, app, world: World,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from utfall.access import accounts

    monkeypatch.setattr(accounts, "BACKOFF_BASE_SECONDS", 600)  # never outlasted here
    monkeypatch.setattr(accounts, "BACKOFF_MAX_SECONDS", 600)
    root, csrf = browser("root")
    soc, _ = browser("soc")
    uid = _uid(world, "soc")

    def act(action: str, **extra: str) -> int:
        return root.post(f"/admin/users/{uid}", data={"csrf_token": csrf, "action": action,
                                                      **extra},
                         follow_redirects=False).status_code

    assert act("deactivate") == 303
    assert soc.get("/api/me").status_code == 401 and _bearer(app, "soc") == 401
    assert "avstängd" in root.get("/admin/users").text
    assert act("activate") == 303 and _bearer(app, "soc") == 200
    for _ in range(7):
        _bearer(app, "soc", "fel lösenord igen")
    assert _bearer(app, "soc") == 401  # waiting after failures
    assert "väntetid" in root.get(f"/admin/users/{uid}").text
    assert act("unlock") == 303 and _bearer(app, "soc") == 200
    assert act("reset_password", new_password="Password1234",
               new_password2="Password1234") == 422
    assert act("reset_password", new_password=NEW_PASSWORD, new_password2="annat") == 422
    assert act("reset_password", new_password=NEW_PASSWORD, new_password2=NEW_PASSWORD) == 303
    assert _bearer(app, "soc") == 401 and _bearer(app, "soc", NEW_PASSWORD) == 200
    # an admin cannot lock themselves out
    r = root.post(f"/admin/users/{_uid(world, 'root')}", data={"csrf_token": csrf,
                                                              "action": "deactivate"})
    assert r.status_code == 422


def test_only_admins_administer(browser, world: World) -> None:
    boss, csrf = browser("boss")
    uid = _uid(world, "clin")
    assert boss.get(f"/admin/users/{uid}").status_code == 403
    r = boss.post(f"/admin/users/{uid}", data={"csrf_token": csrf, "action": "deactivate"})
    assert r.status_code == 403
    root, _ = browser("root")
    assert root.post(f"/admin/users/{uid}", data={"action": "deactivate"}).status_code == 403
    assert root.get("/admin/users/99999").status_code == 404


def test_user_changes_own_password(browser, app) -> None:
    clin, csrf = browser("clin")
    other, _ = browser("clin")
    page = clin.get("/account/password")
    assert page.status_code == 200 and "Minst 12 tecken" in page.text

    def change(current: str, new: str, again: str | None = None) -> int:
        return clin.post("/account/password", data={
            "csrf_token": csrf, "current_password": current, "new_password": new,
            "new_password2": again if again is not None else new},
            follow_redirects=False).status_code

    assert change("fel nuvarande lösenord", NEW_PASSWORD) == 422
    assert change(PASSWORD, "aaaaaaaaaa") == 422
    assert change(PASSWORD, "0123456789") == 422
    assert change(PASSWORD, "Password12") == 422
    assert change(PASSWORD, "clin-clin-clin-clin") == 422  # contains the user name
    assert change(PASSWORD, NEW_PASSWORD, "ett annat långt lösenord") == 422
    assert change(PASSWORD, NEW_PASSWORD) == 303
    assert clin.get("/api/me").status_code == 200  # this session stays
    assert other.get("/api/me").status_code == 401  # the other one ended
    assert _bearer(app, "clin") == 401 and _bearer(app, "clin", NEW_PASSWORD) == 200
    assert "utan CSRF" not in clin.post("/account/password", data={}).text
    assert clin.post("/account/password", data={"current_password": NEW_PASSWORD,
                                                "new_password": "x" * 20,
                                                "new_password2": "x" * 20}).status_code == 403


def test_cli_users_commands(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from utfall.cli import app as cli

    url = str(world.engine.url)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["users", *args, "--database", url])
        assert result.exit_code == code, result.output
        return result.output

    monkeypatch.setenv("UTFALL_NEW_PASSWORD", "Password12")
    assert "12" in run("add", "kalle", "--role", "clinician", "--unit", "reg-ber", code=2)
    monkeypatch.setenv("UTFALL_NEW_PASSWORD", "hemlig fras nummer 42")
    run("add", "kalle", "--role", "clinician", "--unit", "reg-ber")
    assert "huvudman" in run("edit", "kalle", "--role", "social_worker", code=2)
    run("edit", "kalle", "--role", "unit_manager", "--unit", "reg-ber", "--unit", "reg-laro")
    listing = run("list")
    assert re.search(r"kalle\s+│\s+unit_manager\s+│\s+reg-ber, reg-laro", listing), listing
    run("deactivate", "kalle")
    assert "no" in run("list").split("kalle")[1].split("\n")[0]
    run("activate", "kalle")
    run("unlock", "kalle")
    monkeypatch.setenv("UTFALL_NEW_PASSWORD", "aaaaaaaaaaaa")
    assert "mönster" in run("reset-password", "kalle", code=2)
    monkeypatch.setenv("UTFALL_NEW_PASSWORD", "en helt ny fras för honom")
    run("reset-password", "kalle")
    run("edit", "nobody", "--role", "analyst", code=2)
    assert "sessioner" in run("prune", "--days", "30")
    from utfall.access.accounts import authenticate_local

    with world.engine.begin() as conn:
        account = authenticate_local(conn, "kalle", "en helt ny fras för honom")
    assert account.role == "unit_manager"
    with world.engine.connect() as conn:
        actions = [d.get("admin") for d in conn.execute(
            select(AuditEvent.detail).where(AuditEvent.role == "system")).scalars()
            if isinstance(d, dict) and d.get("account") == "kalle"]
    assert actions == ["edit", "deactivate", "activate", "unlock", "reset_password"]


# ------------------------------------------------------------------ real Chromium


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")
def test_walk_account_pages_in_chromium(tmp_path: Path) -> None:
    with live_server(tmp_path) as server, chromium() as browser:
        for label, size in (("desktop", {"width": 1280, "height": 800}),
                            ("phone", {"width": 390, "height": 844})):
            context = browser.new_context(viewport=size, locale="sv-SE")
            page = context.new_page()
            page.goto(server.url + "/login")
            shot(page, f"accounts-login-{label}")
            # keyboard only: the user name field has focus, Tab to the password, Enter
            page.wait_for_function(
                "document.activeElement && document.activeElement.name === 'username'")
            page.keyboard.type("root")
            page.keyboard.press("Tab")
            page.keyboard.type("fel lösenord här")
            with page.expect_navigation():
                page.keyboard.press("Enter")
            page.wait_for_selector("text=Fel användarnamn eller lösenord", timeout=15000)
            assert "Fel användarnamn eller lösenord" in page.inner_text("main")
            shot(page, f"accounts-login-error-{label}")
            page.get_by_label("Användarnamn").fill("root")
            page.get_by_label("Lösenord").fill(PASSWORD)
            page.get_by_label("Lösenord").press("Enter")
            page.wait_for_url("**/admin/users")
            main = page.inner_text("main")
            assert "Användare" in main and "Behandlare (region)" in main
            shot(page, f"accounts-users-{label}")
            page.get_by_role("link", name="clin2").focus()  # keyboard: focus + Enter
            page.keyboard.press("Enter")
            page.wait_for_url("**/admin/users/*")
            page.get_by_label("Enheter", exact=True).select_option(["soc-malmo"])
            page.get_by_role("button", name="Spara").focus()
            page.keyboard.press("Enter")
            page.wait_for_load_state()
            assert "huvudman" in page.inner_text("main")
            shot(page, f"accounts-user-edit-error-{label}")
            page.get_by_label("Enheter", exact=True).select_option(["reg-ber", "reg-laro"])
            page.get_by_role("button", name="Spara").click()
            page.wait_for_load_state()
            assert "Ändringarna är sparade" in page.inner_text("main")
            shot(page, f"accounts-user-edit-{label}")
            page.goto(server.url + "/account/password")
            page.get_by_label("Nuvarande lösenord").fill(PASSWORD)
            page.get_by_label("Nytt lösenord").fill("Password1234")
            page.get_by_label("Upprepa det nya lösenordet").fill("Password1234")
            page.get_by_role("button", name="Byt lösenord").click()
            page.wait_for_load_state()
            text = page.inner_text("main")
            assert "för vanligt" in text
            shot(page, f"accounts-password-error-{label}")
            for english in ("password", "Password", "Save", "user name"):
                assert english not in text.replace("Password1234", "")
            context.close()
