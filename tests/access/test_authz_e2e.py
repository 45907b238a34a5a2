"""Refusal page, emergency access and care-relation creation walked in real Chromium
(screenshots in ``test-artifacts/authz-*.png``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.web.e2e_support import LiveServer, chromium, live_server, shot
from tests.web.factory import PASSWORD


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("authz-e2e")) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def _login(browser, server: LiveServer, user: str, target: str = "/persons"):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{server.url}/login?next={target}")  # not the dashboard (slow aggregates)
    page.get_by_label("Användarnamn").fill(user)
    page.get_by_label("Lösenord").fill(PASSWORD)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_load_state()
    return page


def test_refusal_emergency_and_relation_in_chromium(server: LiveServer, browser) -> None:
    region, soc_key = server.keys["region"], server.keys["soc"]
    # a social worker: the uniform refusal, no emergency access offered
    soc = _login(browser, server, "soc")
    soc.goto(f"{server.url}/persons/{region}")
    assert soc.get_by_text("ingen vårdrelation").first.is_visible()
    assert soc.get_by_role("heading", name="Nödåtkomst").count() == 0
    assert soc.get_by_text("Skriv in personen").count() == 0
    shot(soc, "authz-refusal-social-worker")
    # a clinician of another region unit: refusal with the emergency form
    clin2 = _login(browser, server, "clin2")
    clin2.goto(f"{server.url}/persons/{soc_key}")  # Malmö's person: never via emergency
    clin2.get_by_label("Skäl (minst 10 tecken)").fill("Akut förgiftning, medvetslös")
    clin2.get_by_role("button", name="Öppna med nödåtkomst").click()
    assert clin2.get_by_role("heading", name="Sidan finns inte").is_visible()
    clin2.goto(f"{server.url}/persons/{region}")
    assert clin2.get_by_role("heading", name="Nödåtkomst").is_visible()
    shot(clin2, "authz-refusal-emergency-form")
    clin2.get_by_label("Skäl (minst 10 tecken)").fill("Akut förgiftning, medvetslös")
    clin2.get_by_role("button", name="Öppna med nödåtkomst").click()
    clin2.wait_for_load_state()
    assert clin2.get_by_text("Nödåtkomst (tidsbegränsad, 4 timmar)").is_visible()
    assert "Socialtjänsten" not in clin2.locator("table.timeline").inner_text()
    shot(clin2, "authz-emergency-active")
    # the clinician with the relation refers the person to Malmö's unit (SIP)
    clin = _login(browser, server, "clin")
    clin.goto(f"{server.url}/persons/{region}")
    clin.get_by_label("Remittera eller tilldela till enhet").select_option("soc-malmo")
    clin.get_by_label("Grund").select_option("sip")
    clin.locator("#rel-note").fill("SIP-möte 2 dec")
    clin.get_by_role("button", name="Skapa vårdrelation").click()
    clin.wait_for_url("**saved=relation**")
    assert "Socialtjänsten Malmö" in clin.locator("#relations table").inner_text()
    shot(clin, "authz-relation-created")
    soc.goto(f"{server.url}/persons/{region}")
    assert soc.get_by_role("heading", name="Tidslinje").is_visible()
    assert "Socialtjänsten Malmö" in soc.locator("#relations").inner_text()
    shot(soc, "authz-social-worker-with-relation")
    # the unit manager accepts a referral and sees the emergency access for review
    boss = _login(browser, server, "boss", "/relations")
    boss.goto(f"{server.url}/relations")
    boss.get_by_label("Personnummer eller samordningsnummer").fill("19640327-3813")
    boss.get_by_label("Remiss från (enhet, datum, diarienummer)").fill("Vårdcentral, 2 dec")
    shot(boss, "authz-accept-referral")
    boss.get_by_role("button", name="Ta emot remissen").click()
    boss.wait_for_url("**saved=relation**")
    assert "Remiss" in boss.locator("#relations").inner_text()
    clin2.goto(f"{server.url}/logout")
    for page in (soc, clin2, clin, boss):
        page.close()
