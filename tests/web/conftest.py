"""Fixtures of the web tests: a seeded world on SQLite and a logged-in client factory."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import set_test_environment
from tests.web.factory import PASSWORD, World, build_world
from utfall.config import Settings, get_settings
from utfall.store.db import get_engine
from utfall.web.app import create_app


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory
                   ) -> tuple[Path, dict[str, str], dict[str, int]]:
    """The seeded world built once per session: a checkpointed SQLite file to copy."""
    folder = tmp_path_factory.mktemp("world-template")
    built = folder / "built.db"
    with pytest.MonkeyPatch.context() as mp:
        set_test_environment(mp, folder / "data")
        mp.setenv("UTFALL_DATABASE_URL", f"sqlite:///{built}")
        get_settings.cache_clear()
        world = build_world(f"sqlite:///{built}")
        world.engine.dispose()
    get_settings.cache_clear()
    template = folder / "template.db"
    with sqlite3.connect(built) as source, sqlite3.connect(template) as target:
        source.backup(target)  # includes what is still in the WAL
    return template, world.keys, world.org


@pytest.fixture
def world(settings: Settings, sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
          world_template: tuple[Path, dict[str, str], dict[str, int]]) -> World:
    """A private copy of the seeded world for one test."""
    monkeypatch.setenv("UTFALL_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    template, keys, org = world_template
    target = Path(sqlite_url.removeprefix("sqlite:///"))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    os.chmod(target, 0o600)
    return World(get_engine(sqlite_url), dict(keys), dict(org))


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
