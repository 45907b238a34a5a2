"""Safe outputs and secrets (issue 13, part 8): security headers on every error page,
HSTS over HTTPS, API docs only for users, tokens redacted from the server log,
private file modes, and the access-log download."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from tests.web.factory import World
from utfall.config import Settings, get_settings
from utfall.web.app import create_app
from utfall.web.security import redact

HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy",
           "x-frame-options", "cache-control")


def _boom() -> None:
    raise RuntimeError("forced failure for the test")


def _unavailable() -> None:
    raise HTTPException(503, "store unavailable")


@pytest.fixture
def client(app) -> TestClient:
    app.add_api_route("/test-boom", _boom)
    app.add_api_route("/api/test-boom", _boom)
    app.add_api_route("/test-503", _unavailable)
    return TestClient(app, raise_server_exceptions=False)


def _has_headers(r: httpx.Response) -> None:
    for name in HEADERS:
        assert name in r.headers, (r.status_code, r.request.url, name)
    assert "'self'" in r.headers["content-security-policy"]


def test_every_error_page_has_security_headers(client: TestClient, login, world: World) -> None:
    r = client.get("/test-boom")
    assert r.status_code == 500 and "forced failure" not in r.text
    _has_headers(r)
    r = client.get("/api/test-boom")
    assert r.status_code == 500 and r.json() == {"detail": "internal error"}
    _has_headers(r)
    r = client.get("/test-503")
    assert r.status_code == 503
    _has_headers(r)
    r = client.get("/no-such-page")
    assert r.status_code == 404
    _has_headers(r)
    r = client.get("/api/persons/" + "0" * 64 + "/timeline",
                   headers={"Authorization": "Bearer nothing"})
    assert r.status_code == 401
    _has_headers(r)
    r = client.post("/api/session", json={"username": 5})
    assert r.status_code == 422
    _has_headers(r)
    clin = login("clin")
    r = clin.post("/worklist", data={})  # a form without the CSRF token
    assert r.status_code in (403, 405)
    _has_headers(r)
    r = clin.get("/review")  # clinicians do not review the log
    assert r.status_code == 403
    _has_headers(r)


def test_hsts_only_over_https(app, monkeypatch) -> None:
    plain = TestClient(app).get("/login")
    assert "strict-transport-security" not in plain.headers
    tls = TestClient(app, base_url="https://testserver").get("/login")
    assert tls.headers["strict-transport-security"].startswith("max-age=31536000")
    monkeypatch.setenv("UTFALL_HSTS", "1")  # a TLS proxy uvicorn does not see as https
    assert "strict-transport-security" in TestClient(app).get("/login").headers


def test_api_docs_only_for_users(anon: TestClient, login) -> None:
    assert anon.get("/api/openapi.json").status_code == 401
    for path in ("/api/docs", "/api/redoc"):
        r = anon.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    clin = login("clin")
    spec = clin.get("/api/openapi.json")
    assert spec.status_code == 200 and "/api/persons/{person_key}/timeline" in spec.json()[
        "paths"]
    page = clin.get("/api/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert clin.get("/api/redoc").status_code == 200


def test_redact() -> None:
    token = "AbC123-_xyz.sig"
    assert token not in redact(f"GET /r/{token} HTTP/1.1")
    assert token not in redact(f"/r/{token}?lang=en")
    assert token not in redact(f"/api/self-report/{token}")
    assert token not in redact(f"/login?next=%2F&token={token}&x=1")
    assert redact("/persons/abc/timeline?year=2024") == "/persons/abc/timeline?year=2024"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_access_log_has_no_tokens(world: World, tmp_path: Path) -> None:
    """The real server (``utfall serve``, uvicorn access log on) never logs a token,
    and sends HSTS when the configured proxy says the client used HTTPS."""
    port = _free_port()
    token = "SeCrEtToKeN0123456789abcdefghij"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "UTFALL_TRUSTED_PROXIES": "127.0.0.1"}
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "utfall", "serve", "--port", str(port)],
                                env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    httpx.get(base + "/login", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                pytest.fail(log_path.read_text())
            httpx.get(f"{base}/r/{token}")
            httpx.get(f"{base}/r/{token}?lang=en")
            httpx.get(f"{base}/api/self-report/{token}")
            httpx.get(f"{base}/login?token={token}")
            # behind the configured TLS proxy: HSTS; a plain request: none
            proxied = httpx.get(f"{base}/login", headers={"X-Forwarded-Proto": "https"})
            assert proxied.headers["strict-transport-security"].startswith("max-age=")
            assert "strict-transport-security" not in httpx.get(f"{base}/login").headers
            time.sleep(0.5)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    text = log_path.read_text()
    assert "/r/[redacted]" in text, text  # the requests were logged ...
    assert "token=[redacted]" in text
    assert token not in text  # ... without the token
    # the scheduler checkpointed the seeded events at start, into the application log
    assert "audit checkpoint" in text and '"reason":"startup"' in text


def test_private_file_modes(tmp_path: Path, monkeypatch) -> None:
    """Data folder 0700, generated keys, SQLite database, -wal and -shm 0600."""
    data = tmp_path / "fresh"
    monkeypatch.setenv("UTFALL_DATA_DIR", str(data))
    for name in ("UTFALL_SECRET_KEY", "UTFALL_ENCRYPTION_KEY", "UTFALL_AUDIT_KEY",
                 "UTFALL_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    old = os.umask(0o022)  # a typical, permissive umask
    try:
        settings: Settings = get_settings()
        app = create_app(settings)
        with TestClient(app) as c:
            c.get("/login")
        settings.effective_audit_key  # noqa: B018 - generates the keys
    finally:
        os.umask(old)
        get_settings.cache_clear()

    def mode(p: Path) -> int:
        return stat.S_IMODE(os.stat(p).st_mode)

    assert mode(data) == 0o700
    secrets = data / "secrets.json"
    assert mode(secrets) == 0o600
    assert set(json.loads(secrets.read_text())) >= {"secret_key", "encryption_key", "audit_key"}
    db = data / "utfall.db"
    assert mode(db) == 0o600
    for extra in ("utfall.db-wal", "utfall.db-shm"):
        if (data / extra).exists():
            assert mode(data / extra) == 0o600, extra
    assert (data / "utfall.db-wal").exists()  # WAL mode: the -wal file was checked


def test_access_log_download(login, world: World) -> None:
    clin = login("clin")
    key = world.keys["region"]
    clin.get(f"/persons/{key}/timeline")  # at least one access by this organisation
    page = clin.get(f"/persons/{key}/access-log")
    assert page.status_code == 200
    assert f"/persons/{key}/access-log/download?format=csv" in page.text
    r = clin.get(f"/persons/{key}/access-log/download?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and rows[0].keys() >= {"at", "user", "role", "unit_id", "action", "emergency"}
    assert any(row["user"] == "clin" for row in rows)
    assert all(row["at"].endswith(("+01:00", "+02:00")) for row in rows)  # Stockholm time
    j = clin.get(f"/persons/{key}/access-log/download?format=json")
    assert j.status_code == 200 and isinstance(j.json(), list)
    assert clin.get(f"/persons/{key}/access-log/download?format=xlsx").status_code in (400, 422)
    other = login("soc")  # no care relation with the region's person
    assert other.get(f"/persons/{key}/access-log/download").status_code in (403, 404)
