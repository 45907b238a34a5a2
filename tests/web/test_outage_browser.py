"""Outage pages in real Chromium against a live server on PostgreSQL: a form kept with
the typed answers when the write times out, the 503 page while the database is away,
and the 413 page for an oversized form. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from tests.web.e2e_support import CHROMIUM, chromium, free_port, shot
from tests.web.factory import PASSWORD, build_world
from tests.web.test_outage import _bring_back, _db_name, _take_away
from utfall.store.models import Assessment

pytestmark = [pytest.mark.browser, pytest.mark.postgres,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "utfall.web.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("server did not start") from None
            time.sleep(0.2)


def test_outage_pages_in_chromium(settings, pg_url: str, monkeypatch) -> None:
    monkeypatch.setenv("UTFALL_DATABASE_URL", pg_url)
    from utfall.config import get_settings

    get_settings.cache_clear()
    world = build_world(pg_url)
    key = world.keys["region"]
    env = {**os.environ, "UTFALL_DB_LOCK_TIMEOUT_MS": "400"}
    proc, url = _serve(env)
    try:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/login")
            page.get_by_label("Användarnamn").fill("clin")
            page.get_by_label("Lösenord").fill(PASSWORD)
            page.get_by_role("button", name="Logga in").click()
            page.wait_for_load_state()
            page.goto(f"{url}/persons/{key}/assess?instrument=audit-c")
            for item, value in (("item_1", "3"), ("item_2", "2"), ("item_3", "4")):
                page.locator(f"input[name='{item}'][value='{value}']").check()

            holder = world.engine.connect()  # a lock that stops inserting assessments
            holder.execute(text("LOCK TABLE assessment IN SHARE MODE"))
            try:
                page.get_by_role("button", name="Spara").click()
                page.wait_for_load_state()
            finally:
                holder.rollback()
                holder.close()
            alert = page.locator("#form-summary")
            assert "Det gick inte att spara just nu" in alert.inner_text()
            for item, value in (("item_1", "3"), ("item_2", "2"), ("item_3", "4")):
                assert page.locator(f"input[name='{item}'][value='{value}']").is_checked()
            shot(page, "outage-form-kept")
            page.get_by_role("button", name="Spara").click()  # the same answers, saved now
            page.wait_for_url("**/persons/*?saved=audit-c*")
            with world.engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(Assessment).where(
                    Assessment.person_key == key, Assessment.score == 9)).scalar_one() >= 1

            name = _db_name(pg_url)
            _take_away(name)
            try:
                response = page.goto(f"{url}/persons/{key}")
                assert response is not None and response.status == 503
                assert response.headers["retry-after"]
                main = page.inner_text("main")
                assert "Databasen kan inte nås just nu" in main
                assert "Traceback" not in main
                shot(page, "outage-503")
                page.goto(f"{url}/persons/{key}?lang=en")
                assert "The database cannot be reached" in page.inner_text("main")
                shot(page, "outage-503-en")
            finally:
                _bring_back(name)
            response = page.goto(f"{url}/persons/{key}")
            assert response is not None and response.status == 200

            page.goto(url + "/login")  # an oversized form: 413 before it is parsed
            page.evaluate("""() => {
                const f = document.querySelector('form');
                const i = document.createElement('input');
                i.type = 'hidden'; i.name = 'filler'; i.value = 'x'.repeat(300000);
                f.appendChild(i); f.submit(); }""")
            page.wait_for_load_state()
            assert "togs inte emot" in page.inner_text("main")
            shot(page, "limits-413")
            page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        from utfall.store.db import _engine_for

        _engine_for(pg_url).dispose()
