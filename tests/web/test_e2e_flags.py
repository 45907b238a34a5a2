"""Real Chromium: a PHQ-9 with item 9 > 0 raises a flag seen on the person page, the
timeline and the inbox; acknowledging it with a note clears it; the assessment is
corrected and its history shown (desktop and 390 px phone)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.e2e_support import ARTIFACTS, CHROMIUM, LiveServer, chromium, live_server, shot
from tests.web.factory import PASSWORD

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("e2e-flags")) as live:
        yield live


def _login(page, server: LiveServer, user: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("Användarnamn").fill(user)
    page.get_by_label("Lösenord").fill(PASSWORD)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_load_state()


def _no_sideways_scroll(page) -> bool:
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"))


def test_flag_inbox_acknowledge_and_correction(server: LiveServer) -> None:
    (ARTIFACTS / "flags").mkdir(parents=True, exist_ok=True)
    key = server.keys["region"]
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _login(page, server, "clin")
        assert page.locator("a.nav-inbox").inner_text() == "Inkorg (0)"
        # record a PHQ-9 with item 9 = "more than half the days"
        page.goto(f"{server.url}/persons/{key}/assess?instrument=phq-9")
        for i in range(1, 9):
            page.locator(f"input[name='item_{i}'][value='1']").check()
        page.locator("input[name='item_9'][value='2']").check()
        stage = page.locator("select[name='stage']")
        if stage.count():
            stage.select_option("unscheduled")
        page.get_by_role("button", name="Spara").click()
        page.wait_for_url(f"**/persons/{key}?saved=phq-9*")
        flags = page.locator("#flags")
        assert flags.is_visible()
        assert "Tankar på döden eller självskada" in flags.inner_text()
        assert "suicidal_thoughts" not in page.content()
        row = page.locator("table.timeline tbody tr", has_text="PHQ-9").first
        assert "Tankar på döden" in row.inner_text()
        assert page.locator("a.nav-inbox").inner_text() == "Inkorg (1)"
        shot(page, "flags/person-flag-desktop")

        # the inbox lists it with a link to the person
        page.locator("a.nav-inbox").click()
        page.wait_for_url("**/inbox")
        assert page.get_by_role("heading", name="Öppna flaggor (1)").is_visible()
        assert page.locator(f".inbox-list a[href='/persons/{key}#flags']").count() == 1
        shot(page, "flags/inbox-desktop")
        page.set_viewport_size({"width": 390, "height": 844})
        assert _no_sideways_scroll(page)
        shot(page, "flags/inbox-phone")
        page.set_viewport_size({"width": 1280, "height": 900})

        # a note is required; then acknowledging clears the flag everywhere
        page.get_by_role("button", name="Kvittera").click()
        page.wait_for_load_state()
        assert page.get_by_text("Skriv en anteckning om vad som gjorts.").first.is_visible()
        page.get_by_label("Anteckning (vad har gjorts?)").fill(
            "Suicidriskbedömning gjord, låg risk. Uppföljning om en vecka.")
        page.get_by_role("button", name="Kvittera").click()
        page.wait_for_url("**/inbox?done=flag")
        assert page.get_by_text("Flaggan är kvitterad.").is_visible()
        assert page.locator("a.nav-inbox").inner_text() == "Inkorg (0)"
        assert page.get_by_text("Inga öppna flaggor.").is_visible()
        page.goto(f"{server.url}/persons/{key}")
        assert page.locator("section#flags").count() == 0

        # correct the assessment from its timeline entry; the history keeps version 1
        row = page.locator("table.timeline tbody tr", has_text="PHQ-9").first
        row.get_by_role("link", name="Historik och rättelse").click()
        page.wait_for_url(f"**/persons/{key}/assessments/*")
        assert page.get_by_text("Kvitterad").first.is_visible()
        page.get_by_text("Rätta svaren", exact=True).click()  # opens the correction form
        page.locator("input[name='item_9'][value='0']").check()
        page.get_by_role("button", name="Spara rättelse").click()
        page.wait_for_load_state()
        assert page.locator("#e-reason").inner_text() == "Ange en orsak."
        assert page.locator("input[name='item_9'][value='0']").is_checked()  # kept
        page.get_by_label("Orsak till rättelsen").fill("Fel svar inmatat på fråga 9")
        page.get_by_role("button", name="Spara rättelse").click()
        page.wait_for_url("**?done=corrected")
        text = page.locator("main").inner_text()
        assert "Gällande version (version 2)" in text and "Version 1" in text
        assert "Fel svar inmatat på fråga 9" in text
        assert "Poäng: 10" in text and "Poäng: 8" in text
        assert "fråga 9" in text and "2 – Mer än hälften av dagarna → 0 – Inte alls" in text
        shot(page, "flags/history-desktop")
        page.set_viewport_size({"width": 390, "height": 844})
        assert _no_sideways_scroll(page)
        shot(page, "flags/history-phone")
        page.goto(f"{server.url}/persons/{key}")
        assert _no_sideways_scroll(page)
        shot(page, "flags/person-after-phone")
