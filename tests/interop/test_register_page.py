"""The unit's page of missing register data, in real Chromium (screenshots), with
the access rules of the work list (own unit, care roles; each person read audited)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from tests.web.e2e_support import ARTIFACTS, chromium, live_server, shot
from tests.web.factory import PASSWORD
from utfall.store.models import AuditEvent, Contact


def _seed(env: dict[str, str], key: str) -> None:
    from utfall.store.db import get_engine

    engine = get_engine(env["UTFALL_DATABASE_URL"])
    with engine.begin() as conn:
        for cid, day in (("g1", dt.date(2025, 3, 3)), ("g2", dt.date(2025, 3, 20))):
            conn.execute(insert(Contact).values(
                contact_id=cid, person_key=key, unit_id="reg-ber", date=day,
                contact_type="outpatient", main_dx="F11.2", dx_group="F11"))


def _login(page, url: str, user: str) -> None:
    """Log in straight to the gaps page (no landing page that computes aggregates)."""
    page.goto(url + "/login?next=/register/gaps")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]", no_wait_after=True)
    page.wait_for_url(lambda url: "/login" not in url, timeout=60000)


@pytest.mark.browser
def test_unit_sees_its_register_gaps(tmp_path: Path) -> None:
    with live_server(tmp_path) as srv:
        key = srv.keys["region"]
        saved = dict(os.environ)
        os.environ.update(srv.env)
        try:
            _seed(srv.env, key)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            _login(page, srv.url, "clin")
            page.goto(srv.url + "/register/gaps")
            body = page.inner_text("main")
            assert "Nyregistrering (öppenvård)" in body
            assert "audit_total" in body and "ingen audit inom -90..+30 dagar från 2025-03-20" \
                in body
            assert "19850615-****" in body  # masked identity, never the full number
            assert "2381" not in body.replace("19850615-****", "")
            shot(page, "register-gaps-sv")
            page.goto(srv.url + "/register/gaps?lang=en")
            assert "Quality register: missing data" in page.inner_text("main")
            assert "no audit within -90..+30 days of 2025-03-20" in page.inner_text("main")
            shot(page, "register-gaps-en")
            page2 = browser.new_page(viewport={"width": 1200, "height": 900})
            _login(page2, srv.url, "soc")  # another unit: its own (empty) list
            page2.goto(srv.url + "/register/gaps")
            assert "19850615" not in page2.inner_text("main")
            page3 = browser.new_page(viewport={"width": 1200, "height": 900})
            _login(page3, srv.url, "ana")
            response = page3.goto(srv.url + "/register/gaps")
            assert response is not None and response.status == 403
    assert (ARTIFACTS / "register-gaps-sv.png").exists()
    from utfall.store.db import get_engine

    engine = get_engine(srv.env["UTFALL_DATABASE_URL"])
    with engine.connect() as conn:
        details = [d for (d,) in conn.execute(select(AuditEvent.detail).where(
            AuditEvent.person_key == key))]
    assert any((d or {}).get("what") == "register_gaps" for d in details)
