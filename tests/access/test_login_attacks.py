"""Re-run of the review's login attacks against ``utfall serve`` on 127.0.0.1 (real
HTTP, uvicorn as in production, no trusted proxies configured). Counts attempts and
failures per category into ``test-artifacts/login-attack-figures.json``; every
category must have zero failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, select

from tests.web.e2e_support import ARTIFACTS, free_port, seeded_env
from tests.web.factory import PASSWORD, build_world
from utfall.access import accounts
from utfall.store.models_access import LoginAttempt

WEAK = ["aaaaaaaaaa", "0123456789", "Password12", "aaaaaaaaaaaa", "012345678901",
        "Password1234", "P@ssw0rd2026", "Sommar2026!!", "qwertyuiop12", "lösenord1234",
        "abcabcabcabc", "nyanvandare", "nyanvandare1", "xnyanvandarex"]


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("utfall")), "serve",
                                 "--port", str(port)], env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("utfall serve did not start: "
                                   + log.read_text(errors="replace")[-2000:]) from None
            time.sleep(0.3)


def _form_login(url: str, user: str, password: str, client: httpx.Client | None = None,
                **headers: str) -> tuple[httpx.Client, httpx.Response]:
    client = client or httpx.Client(timeout=30)
    client.get(url + "/login")
    token = client.cookies.get("utfall_login_csrf")
    r = client.post(url + "/login", data={"username": user, "password": password,
                                          "csrf_token": token}, headers=headers)
    return client, r


def test_login_attack_rerun(tmp_path: Path) -> None:
    figures: dict[str, dict[str, int]] = {}

    def count(category: str, failed: bool) -> None:
        row = figures.setdefault(category, {"attempts": 0, "failures": 0})
        row["attempts"] += 1
        row["failures"] += int(failed)

    with seeded_env(tmp_path) as env:
        build_world(env["UTFALL_DATABASE_URL"])
    proc, url = _serve(env, tmp_path / "serve.log")
    try:
        # ---------------------------------------------------------------- password policy
        admin, _ = _form_login(url, "root", PASSWORD)
        csrf = admin.get(url + "/api/me").json()["csrf_token"]
        for weak in WEAK:
            r = admin.post(url + "/admin/users", data={
                "csrf_token": csrf, "username": "nyanvandare", "role": "clinician",
                "units": "reg-ber", "password": weak}, follow_redirects=False)
            count("password policy", r.status_code != 422)
        # ---------------------------------------------------------------- enumeration
        for i in range(accounts.FREE_FAILURES + 1):  # "boss" is now in its back-off
            httpx.post(url + "/api/session", json={"username": "boss", "password": f"g{i}"},
                       timeout=30)
        answers_by_user = {}
        for user in ("boss", "nobody-here", "soc"):  # back-off, unknown, wrong password
            r = httpx.post(url + "/api/session", json={"username": user, "password": "x" * 12},
                           timeout=30)
            answers_by_user[user] = (r.status_code, r.json()["detail"])
        distinct = set(answers_by_user.values())
        for _user in answers_by_user:
            count("same answer unknown/back-off/known", distinct != {(401, "invalid")})
        # ---------------------------------------------------------------- X-Forwarded-For
        # the colleague logged in at her own browser earlier (device cookie)
        colleague, r = _form_login(url, "clin", PASSWORD)
        assert r.status_code == 303 and colleague.cookies.get("utfall_device")
        colleague.post(url + "/logout", data={
            "csrf_token": colleague.get(url + "/api/me").json()["csrf_token"]})
        answers = []
        for i in range(40):
            r = httpx.post(url + "/api/session", json={"username": "clin",
                                                      "password": f"guess number {i}"},
                           headers={"X-Forwarded-For": f"198.51.100.{i}"}, timeout=30)
            answers.append(r.json()["detail"])
        earlier = accounts.FREE_FAILURES + 1 + 3  # the enumeration's failures, same client
        for i, answer in enumerate(answers):  # rotating XFF must not escape the limit
            count("rotating X-Forwarded-For", earlier + i >= accounts.CLIENT_MAX_FAILED
                  and answer != "rate_limited")
        assert answers.count("invalid") == accounts.CLIENT_MAX_FAILED - earlier
        # ---------------------------------------------------------------- colleague lock-out
        _, r = _form_login(url, "clin", PASSWORD, colleague)
        count("lock-out of a colleague", r.status_code != 303
              or colleague.get(url + "/api/me").status_code != 200)
        # (that a fresh browser with the right password waits is tested with a fixed clock
        # in tests/access/test_accounts.py; here the shared address is rate-limited anyway)
        # ---------------------------------------------------------------- login CSRF
        for planted in ("attacker-value", "a.b.c", "x." + str(int(time.time()) + 999) + "." +
                        "0" * 64):
            c = httpx.Client(timeout=30, cookies={"utfall_login_csrf": planted})
            r = c.post(url + "/login", data={"username": "soc", "password": PASSWORD,
                                             "csrf_token": planted}, follow_redirects=False)
            count("login CSRF planted cookie", r.status_code != 403)
        # ---------------------------------------------------------------- stored names
        secret_typed = "mitt-hemliga-lösenord-i-namnfältet"
        httpx.post(url + "/api/session", json={"username": secret_typed, "password": "x"},
                   timeout=30)
        engine = create_engine(env["UTFALL_DATABASE_URL"])
        with engine.connect() as conn:
            names = set(conn.execute(select(LoginAttempt.username)).scalars())
        engine.dispose()
        count("typed text stored as user name", secret_typed in names)
        count("typed text stored as user name", not names <= {"clin", "soc", "root", "boss",
                                                              accounts.UNKNOWN_USER})
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "login-attack-figures.json").write_text(json.dumps(figures, indent=2,
                                                                    ensure_ascii=False))
    print(json.dumps(figures, ensure_ascii=False))
    assert {k: v["failures"] for k, v in figures.items() if v["failures"]} == {}
