"""Real-Chromium walk of a unit's work list with more than a thousand follow-ups:
page, sort, filter, export (desktop and 390 px phone), and the enrolment form that
shows only the chosen programme's fields and keeps the input after an error.
Screenshots: ``test-artifacts/worklist/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.e2e_support import ARTIFACTS, CHROMIUM, LiveServer, chromium, live_server
from tests.web.factory import PASSWORD
from tests.web.worklist_seed import seed_laro

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]
SHOTS = ARTIFACTS / "worklist"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[LiveServer, list[str]]]:
    import os

    from utfall.config import get_settings
    from utfall.store.db import get_engine

    with live_server(tmp_path_factory.mktemp("e2e-worklist")) as live:
        saved = {k: os.environ.get(k) for k in live.env}
        os.environ.update(live.env)  # the server's keys: identity numbers must decrypt there
        get_settings.cache_clear()
        try:
            engine = get_engine(live.env["UTFALL_DATABASE_URL"])
            keys = seed_laro(engine, 420)
            engine.dispose()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            get_settings.cache_clear()
        yield live, keys


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _login(page, url: str, user: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("Användarnamn").fill(user)
    page.get_by_label("Lösenord").fill(PASSWORD)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_load_state()


def _number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def _visible_text(page) -> str:
    return page.locator("main").inner_text()


def test_worklist_walk_page_sort_filter_export(server) -> None:
    live, _keys = server
    with chromium() as browser:
        desk = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        _login(desk, live.url, "clin2")
        desk.goto(live.url + "/worklist")
        total = _number(desk.locator(".wl-summary .total").inner_text())
        assert total >= 1000
        assert "Visar 1–50 av" in _visible_text(desk)
        assert desk.locator("table.worklist tbody tr").count() == 50
        _shot(desk, "worklist-desktop")
        text = _visible_text(desk)
        for raw in ("overdue", "missed", "laro", "reg-laro", "review-", "audit-c", "None"):
            assert raw not in text, raw
        # page: the next link keeps the filters
        desk.get_by_role("link", name="Nästa").first.click()
        desk.wait_for_load_state()
        assert "page=2" in desk.url and "Visar 51–100 av" in _visible_text(desk)
        # sort: latest date first (the select submits itself)
        desk.select_option("#wl-sort", "-due")
        desk.wait_for_url(re.compile(r"sort=-due"))
        dates = desk.locator("table.worklist td.due").all_inner_texts()[:10]
        assert dates and all(d.strip() for d in dates)
        # filter: overdue only
        desk.select_option("#wl-status", "overdue")
        desk.wait_for_url(re.compile(r"status=overdue"))
        tags = desk.locator("table.worklist tbody .tag").all_inner_texts()
        assert tags and set(tags) == {"försenad"}
        overdue = _number(desk.locator(".wl-summary .total").inner_text())
        assert 0 < overdue < total
        _shot(desk, "worklist-desktop-overdue")
        # export the filtered list
        with desk.expect_download() as info:
            desk.get_by_role("link", name="Ladda ner som CSV (Excel)").click()
        path = info.value.path()
        data = Path(path).read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        lines = data.decode("utf-8-sig").splitlines()
        assert len(lines) == overdue + 1 and lines[0].startswith("Status;Person")
        assert all(";försenad;" in f";{line}" for line in lines[1:6])
        # keyboard: the filter form is reachable and operable without a mouse
        desk.goto(live.url + "/worklist")
        desk.focus("#wl-status")
        desk.keyboard.press("Tab")
        assert desk.evaluate("document.activeElement.id") == "wl-programme"

        phone = browser.new_page(viewport={"width": 390, "height": 844})
        _login(phone, live.url, "clin2")
        phone.goto(live.url + "/worklist?size=25")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        _shot(phone, "worklist-phone")
        phone.get_by_role("link", name="Nästa").first.click()
        phone.wait_for_load_state()
        assert "Visar 26–50 av" in _visible_text(phone)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_enrolment_form_shows_chosen_programme_and_keeps_input(server) -> None:
    live, keys = server
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _login(page, live.url, "clin2")
        page.goto(f"{live.url}/persons/{keys[0]}/enrol")
        assert page.locator("fieldset.facts").count() == 0
        page.select_option("#programme", "laro")
        page.wait_for_url(re.compile(r"programme=laro"))
        assert page.get_by_label("Ålder vid behandlingsstart").is_visible()
        assert page.get_by_text("Samtycke till SIP").count() == 0  # ROP's fields are not shown
        page.get_by_label("Ålder vid behandlingsstart").fill("200")
        page.get_by_label("Särskilda skäl (om yngre än 20 år)").fill("Beslut i team")
        page.get_by_role("button", name="Skriv in").click()
        page.wait_for_load_state()
        alert = page.locator(".notice.error").inner_text()
        assert "Ålder vid behandlingsstart" in alert and "age:" not in alert
        assert "0–130" in alert
        assert page.get_by_label("Ålder vid behandlingsstart").input_value() == "200"
        assert page.get_by_label("Särskilda skäl (om yngre än 20 år)").input_value() == \
            "Beslut i team"
        assert page.get_by_text("Samtycke till SIP").count() == 0
        _shot(page, "enrol-error-desktop")
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        _login(phone, live.url, "clin2")
        phone.goto(f"{live.url}/persons/{keys[0]}/assess?instrument=audit-c")
        options = phone.locator("#f-stage option").all_inner_texts()
        assert any("Halvårsuppföljning" in o for o in options)
        assert options[-1].startswith("Utanför plan")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        _shot(phone, "assess-stage-phone")
