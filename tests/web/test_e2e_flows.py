"""End-to-end flows in real headless Chromium against a live server."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.e2e_support import CHROMIUM, LiveServer, chromium, live_server, shot
from tests.web.factory import P_REGION, PASSWORD

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("e2e")) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def _login(page, server: LiveServer, user: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("Användarnamn").fill(user)
    page.get_by_label("Lösenord").fill(PASSWORD)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_load_state()


def _api(server: LiveServer, method: str, path: str, body: dict | None = None,
         user: str = "clin") -> dict:
    def call(m: str, p: str, b: dict | None, headers: dict) -> dict:
        req = urllib.request.Request(server.url + p, method=m,
                                     data=json.dumps(b).encode() if b is not None else None,
                                     headers={"Content-Type": "application/json", **headers})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    token = call("POST", "/api/session", {"username": user, "password": PASSWORD}, {})["token"]
    return call(method, path, body, {"Authorization": f"Bearer {token}"})


def test_clinician_records_audit_and_sees_timeline(server: LiveServer, browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _login(page, server, "clin")
    assert "/worklist" in page.url
    page.get_by_role("link", name="Sök person").click()
    field = page.get_by_label("Personnummer eller samordningsnummer")
    field.fill("19850615-2382")  # wrong check digit: a clear field message
    page.get_by_role("button", name="Sök").click()
    assert page.locator("#pnr-err").is_visible()
    assert page.locator("#identity_number").get_attribute("aria-invalid") == "true"
    page.get_by_label("Personnummer eller samordningsnummer").fill("19850615-2381")
    page.get_by_role("button", name="Sök").click()
    page.wait_for_url(f"**/persons/{server.keys['region']}")
    before = page.locator("table.timeline tbody tr").count()
    page.get_by_label("Formulär", exact=True).select_option("audit")
    page.get_by_role("button", name="Registrera skattning").click()
    page.wait_for_url("**/assess?instrument=audit")
    for i, value in enumerate(["2", "1", "1", "1", "1", "0", "1", "1", "0", "2"], start=1):
        page.locator(f"input[name='item_{i}'][value='{value}']").check()
    page.keyboard.press("Tab")  # keyboard navigation works with visible focus
    shot(page, "e2e-assessment-form")
    page.get_by_role("button", name="Spara").click()
    page.wait_for_url("**/persons/*?saved=audit*")
    assert page.get_by_text("Sparat.").is_visible()
    rows = page.locator("table.timeline tbody tr")
    assert rows.count() == before + 1
    assert "AUDIT" in rows.first.inner_text() and "10" in rows.first.inner_text()
    charts = page.locator("figure.chart")  # one chart per instrument, on its own scale
    assert charts.locator("svg").count() >= 1
    assert any("AUDIT" in charts.nth(i).inner_text() for i in range(charts.count()))
    shot(page, "e2e-timeline")
    page.close()


def test_social_worker_needs_consent(server: LiveServer, browser) -> None:
    key = server.keys["region"]
    page = browser.new_page()
    _login(page, server, "soc")
    page.goto(f"{server.url}/persons/{key}")
    assert page.get_by_role("heading", name="Sidan finns inte").is_visible()
    assert page.get_by_text("ingen vårdrelation").first.is_visible()
    shot(page, "e2e-refused")
    consent = _api(server, "POST", f"/api/persons/{key}/consents", {
        "to_organisation_id": server.org["Malmö stad"], "categories": ["assessments"],
        "valid_from": dt.date.today().isoformat()})
    # a consent shares data; the municipal unit also needs a care relation (a SIP here)
    _api(server, "POST", f"/api/persons/{key}/relations", {"unit_id": "soc-malmo",
                                                           "basis": "sip"})
    page.goto(f"{server.url}/persons/{key}")
    assert page.get_by_role("heading", name="Tidslinje").is_visible()
    text = page.locator("table.timeline").inner_text()
    assert "AUDIT-C" in text and "Kontakt" not in text  # only the consented category
    assert page.locator("#hidden-note").is_visible()
    shot(page, "e2e-shared-with-consent")
    page.goto(f"{server.url}/persons/{key}/consents")
    page.get_by_role("button", name="Återkalla").first.click()
    page.wait_for_url("**/consents?revoked=1")
    page.goto(f"{server.url}/persons/{key}")
    assert page.locator("table.timeline").count() == 0  # the region's data is gone at once
    assert consent["consent_id"] > 0
    page.close()


def test_person_self_report_on_phone(server: LiveServer, browser) -> None:
    key = server.keys["region"]
    enrolment = _api(server, "POST", f"/api/persons/{key}/enrolments", {
        "programme": "vip-beroende", "start_date": dt.date.today().isoformat()})
    link = _api(server, "POST", f"/api/persons/{key}/self-report-links", {
        "enrolment_id": enrolment["enrolment_id"], "stage": "intake",
        "instruments": ["audit-c", "who-5"]})
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.goto(link["url"])
    assert page.get_by_role("heading", name=re.compile("AUDIT-C")).is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # no sideways scrolling on a phone
    page.get_by_role("button", name="Nästa").click()  # nothing answered
    assert page.locator(".notice.error").is_visible()
    # one short section per screen (tests/web/test_e2e_selfreport_phone.py walks it all)
    page.locator("input[name='audit-c:item_1'][value='2']").check()
    page.get_by_role("button", name="Nästa").click()
    for item, value in (("item_2", "1"), ("item_3", "0")):
        page.locator(f"input[name='audit-c:{item}'][value='{value}']").check()
    page.get_by_role("button", name="Nästa").click()
    for i in range(1, 6):
        page.locator(f"input[name='who-5:item_{i}'][value='3']").check()
    shot(page, "e2e-self-report-phone")
    page.get_by_role("button", name="Nästa").click()
    page.get_by_role("button", name="Skicka svaren").click()  # no goals: optional
    assert page.get_by_role("heading", name="Tack för dina svar!").is_visible()
    shot(page, "e2e-self-report-done")
    page.goto(link["url"])
    assert page.get_by_text("redan använts").is_visible()
    context.close()


def test_manager_dashboard_and_log_review(server: LiveServer, browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _login(page, server, "boss")
    assert "/dashboard" in page.url
    assert page.get_by_role("heading", name="Uppföljningsgrad").is_visible()
    shot(page, "e2e-dashboard")
    page.get_by_role("link", name="Logguppföljning").click()
    page.get_by_label("Var k:te händelse").fill("2")
    page.get_by_role("button", name="Ta urval").click()
    assert page.locator("#sample tbody tr").count() >= 1
    page.get_by_label("Iakttagelser").fill("Stickprov granskat; inga avvikelser.")
    page.get_by_role("button", name="Spara granskningen").click()
    assert page.get_by_text("Granskningen är dokumenterad.").is_visible()
    assert page.get_by_text("Stickprov granskat; inga avvikelser.").is_visible()
    shot(page, "e2e-log-review")
    page.goto(server.url + "/lang/en?next=/dashboard")
    assert page.get_by_role("heading", name="Follow-up coverage").is_visible()
    page.close()


def test_analyst_sees_aggregates_only(server: LiveServer, browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _login(page, server, "ana")
    assert "/analytics" in page.url
    assert page.get_by_role("heading", name="Regional indikatorrapport").is_visible()
    html = page.content()
    assert server.keys["region"] not in html and P_REGION not in html
    shot(page, "e2e-analytics")
    page.goto(f"{server.url}/persons/{server.keys['region']}")
    assert page.get_by_role("heading", name="Åtkomst nekad").is_visible()
    page.close()
