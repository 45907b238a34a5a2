"""Clean failure when the store is unavailable, and recovery (issue 15, part 5).

PostgreSQL is made unreachable at run time (the app's database is renamed away, so
every new connection is refused), then brought back. A write that waits too long for
a lock (PostgreSQL ``lock_timeout``) re-renders the form with what the user typed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from tests.conftest import PG_ADMIN_URL
from tests.web.conftest import api_login, page_login
from tests.web.factory import World, build_world
from utfall.store.models import Assessment

pytestmark = pytest.mark.postgres
ANSWERS = {"item_1": 1, "item_2": 1, "item_3": 0}


@pytest.fixture
def pg_world(settings, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("UTFALL_DATABASE_URL", pg_url)
    monkeypatch.setenv("UTFALL_DB_LOCK_TIMEOUT_MS", "400")
    from utfall.config import get_settings

    get_settings.cache_clear()
    return build_world(pg_url)


@pytest.fixture
def pg_app(pg_world: World) -> Iterator:
    from utfall.config import get_settings
    from utfall.web.app import create_app

    app = create_app(get_settings())
    yield app
    app.state.engine.dispose()


def _admin(sql: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


def _db_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _take_away(name: str) -> None:
    """Refuse new connections, end the open ones and rename the database away."""
    _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    _admin(f'ALTER DATABASE "{name}" RENAME TO "{name}_away"')
    _admin(f'ALTER DATABASE "{name}_away" ALLOW_CONNECTIONS true')


def _bring_back(name: str) -> None:
    _admin(f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')


def test_unreachable_database_gives_503_then_recovers(pg_app, pg_world: World, pg_url: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    name = _db_name(pg_url)
    key = pg_world.keys["region"]
    with TestClient(pg_app, raise_server_exceptions=False) as api, \
            TestClient(pg_app, raise_server_exceptions=False) as browser:
        bearer = api_login(api, "clin")
        page_login(browser, "clin")
        assert api.get("/api/me", headers=bearer).status_code == 200
        assert browser.get(f"/persons/{key}").status_code == 200
        assert api.get("/readyz").status_code == 200

        caplog.clear()
        caplog.set_level(logging.INFO)
        _take_away(name)
        try:
            for _ in range(3):
                r = api.get("/api/me", headers=bearer)
                assert r.status_code == 503
                assert r.headers["retry-after"].isdigit()
                assert r.json()["code"] == "unavailable" and r.json()["sv"]
                r = api.post(f"/api/persons/{key}/assessments", headers=bearer,
                             json={"instrument": "audit-c", "answers": ANSWERS})
                assert r.status_code == 503 and r.headers["retry-after"]
                page = browser.get(f"/persons/{key}")
                assert page.status_code == 503 and page.headers["retry-after"]
                assert "text/html" in page.headers["content-type"]
                assert "Databasen kan inte nås just nu" in page.text
                assert "Traceback" not in page.text and "psycopg" not in page.text
                en = browser.get(f"/persons/{key}?lang=en")
                assert "The database cannot be reached right now" in en.text
            ready = api.get("/readyz")
            assert ready.status_code == 503 and ready.headers["retry-after"]
            assert ready.json()["database"] == "unreachable"
            assert api.get("/healthz").status_code == 200  # liveness needs no database
        finally:
            _bring_back(name)
        outage_lines = [r for r in caplog.records if "database unavailable" in r.getMessage()]
        assert len(outage_lines) == 1, [r.getMessage() for r in caplog.records]
        assert not [r for r in caplog.records if r.exc_info], "no tracebacks in the log"

        assert api.get("/readyz").json() == {"status": "ready", "database": "ok",
                                              "migrations": "current"}
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        assert api.get("/api/me", headers=bearer).status_code == 200
        assert browser.get(f"/persons/{key}").status_code == 200
        r = api.post(f"/api/persons/{key}/assessments", headers=bearer,
                     json={"instrument": "audit-c", "answers": ANSWERS})
        assert r.status_code == 201


def test_readyz_503_when_migrations_are_behind(pg_app, pg_world: World) -> None:
    with TestClient(pg_app) as client:
        first = client.get("/readyz")
        assert first.status_code == 200, first.text
        with pg_world.engine.begin() as conn:
            conn.execute(text("DELETE FROM alembic_version WHERE version_num = "
                              "(SELECT min(version_num) FROM alembic_version)"))
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["migrations"] == "not current"


def test_form_keeps_answers_when_the_write_times_out(pg_app, pg_world: World) -> None:
    key = pg_world.keys["region"]

    def stored() -> int:
        with pg_world.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(Assessment)).scalar_one()

    with TestClient(pg_app, raise_server_exceptions=False) as browser:
        csrf = page_login(browser, "clin")
        form = {"csrf_token": csrf, "item_1": "3", "item_2": "2", "item_3": "4",
                "on_date": "2026-03-01"}
        before = stored()
        # another session holds a lock that conflicts with inserting assessments
        holder = pg_world.engine.connect()
        holder.execute(text("LOCK TABLE assessment IN SHARE MODE"))
        try:
            r = browser.post(f"/persons/{key}/assess?instrument=audit-c", data=form,
                             follow_redirects=False)
            api = browser.post(f"/api/persons/{key}/assessments",
                               headers={"X-CSRF-Token": csrf},
                               json={"instrument": "audit-c", "answers": ANSWERS})
        finally:
            holder.rollback()
            holder.close()
        assert r.status_code == 503 and r.headers["retry-after"]
        assert "Det gick inte att spara just nu" in r.text
        for item, value in (("item_1", "3"), ("item_2", "2"), ("item_3", "4")):
            assert re.search(rf'name="{item}" value="{value}"\s+checked', r.text), item
        assert 'value="2026-03-01"' in r.text
        assert api.status_code == 503 and api.json()["code"] == "unavailable"
        assert stored() == before  # nothing half-written

        r = browser.post(f"/persons/{key}/assess?instrument=audit-c", data=form,
                         follow_redirects=False)
        assert r.status_code == 303
        assert stored() == before + 1
