"""Fixtures of the web tests: a seeded world on SQLite and a logged-in client factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.web.factory import PASSWORD, World, build_world
from utfall.config import Settings
from utfall.web.app import create_app


@pytest.fixture
def world(settings: Settings, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("UTFALL_DATABASE_URL", sqlite_url)
    from utfall.config import get_settings

    get_settings.cache_clear()
    return build_world(sqlite_url)


@pytest.fixture
def app(world: World):
    from utfall.config import get_settings

    return create_app(get_settings())


@pytest.fixture
def anon(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def api_login(client: TestClient, user: str) -> dict[str, str]:
    """Bearer headers for ``user``."""
    r = client.post("/api/session", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def page_login(client: TestClient, user: str) -> str:
    """Log in through the form; returns the page CSRF token."""
    r = client.get("/login")
    token = client.cookies.get("utfall_login_csrf")
    r = client.post("/login", data={"username": user, "password": PASSWORD,
                                    "csrf_token": token, "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    me = client.get("/api/me").json()
    return me["csrf_token"]


@pytest.fixture
def login(app) -> Iterator[Callable[[str], TestClient]]:
    clients: list[TestClient] = []

    def make(user: str) -> TestClient:
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        client.headers.update(api_login(client, user))
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)
