"""LARO end to end in real headless Chromium: enrol → each phase with its entry checks →
discharge with reason → the post-discharge follow-up on the municipality's work list.
Screenshots (desktop and 390 px) in ``test-artifacts/laro/``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.e2e_support import ARTIFACTS, CHROMIUM, LiveServer, chromium, live_server, shot
from tests.web.factory import PASSWORD

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]
RAW = ("assessment", "treatment-start", "stabilisation", "rehabilitation", "ending",
       "post-discharge", "involuntary_discharge", "reg-ber", "soc-malmo", "None")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("e2e-laro")) as live:
        yield live


def _day(days_ago: int) -> str:
    from utfall.followup import local_today

    return (local_today() - dt.timedelta(days=days_ago)).isoformat()


def _login(page, server: LiveServer, user: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("Användarnamn").fill(user)
    page.get_by_label("Lösenord").fill(PASSWORD)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_load_state()


def _shots(page, name: str) -> None:
    """Desktop and phone screenshots; the phone layout has no sideways scrolling."""
    (ARTIFACTS / "laro").mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    shot(page, f"laro/{name}-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
    shot(page, f"laro/{name}-390")
    page.set_viewport_size({"width": 1280, "height": 900})


def _no_raw(page, where: str = "main") -> None:
    """No raw phase, stage, reason or unit id in the Swedish text of ``where``."""
    text = page.locator(where).inner_text()
    for code in RAW:
        assert not re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text), code


def test_laro_walk(server: LiveServer) -> None:
    key = server.keys["region"]
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _login(page, server, "clin")
        # enrol in LARO (the form shows only LARO's fields)
        page.goto(f"{server.url}/persons/{key}/enrol?programme=laro")
        page.locator("#start_date").fill(_day(200))
        page.locator("#fact-opioid_dependence_months").fill("36")
        for name in ("dependence_assessed_by_physician", "responsible_physician_specialist",
                     "treatment_plan", "supervised_intake"):
            page.locator(f"#fact-{name}").select_option("1")
        page.locator("#fact-medication").select_option("buprenorphine")
        page.get_by_role("button", name="Skriv in", exact=True).click()
        page.wait_for_url(f"**/persons/{key}?saved=enrolment*")
        overview = page.locator("#overview")
        assert "Utredning och bedömning" in overview.inner_text()
        assert "19850615-2381" in page.locator("h1").inner_text()  # full number, with access
        buttons = overview.get_by_role("link", name=re.compile("^Byt fas till"))
        assert buttons.all_inner_texts() == ["Byt fas till Behandlingsstart"]  # only allowed
        _no_raw(page, "#overview")
        _shots(page, "01-enrolled")

        # a forbidden transition is refused with the reason and the allowed set
        enrolment = page.locator(".ov-prog").first.get_attribute("id").removeprefix("enrolment-")
        response = page.goto(f"{server.url}/enrolments/{enrolment}/phase?to=rehabilitation")
        assert response is not None and response.status == 409
        refused = page.locator("#refused").inner_text()
        assert "inte tillåtet" in refused and "Behandlingsstart" in refused
        _no_raw(page)
        _shots(page, "02-forbidden")

        # treatment start: entry check refused next to the field, input kept
        page.goto(f"{server.url}/persons/{key}")
        page.get_by_role("link", name="Byt fas till Behandlingsstart").click()
        page.locator("#date").fill(_day(190))
        assert page.locator("#fact-opioid_dependence_months").input_value() == "36"  # recorded
        page.locator("#fact-opioid_dependence_months").fill("6")
        page.get_by_role("button", name="Spara fasbyte").click()
        page.wait_for_load_state()
        assert page.locator("#e-opioid_dependence_months").is_visible()
        assert "minst ett år" in page.locator("#e-opioid_dependence_months").inner_text()
        assert page.locator("#fact-opioid_dependence_months").input_value() == "6"
        assert page.locator("#date").input_value() == _day(190)
        _no_raw(page)
        _shots(page, "03-entry-check")
        page.locator("#fact-opioid_dependence_months").fill("36")
        page.get_by_role("button", name="Spara fasbyte").click()
        page.wait_for_url(f"**/persons/{key}?saved=phase*")
        assert "Fasbytet är sparat." in page.locator("main").inner_text()
        assert "Behandlingsstart" in page.locator("#overview .phase").inner_text()

        # stabilisation: self-administration within three months is refused
        page.get_by_role("link", name="Byt fas till Stabilisering").click()
        page.locator("#date").fill(_day(170))
        page.locator("#fact-care_plan_goals").fill("Stabil dos, eget boende")
        page.locator("#fact-self_administration").select_option("1")
        page.get_by_role("button", name="Spara fasbyte").click()
        page.wait_for_load_state()
        assert "tre månader" in page.locator("#error-summary").inner_text()
        page.locator("#fact-self_administration").select_option("0")
        page.get_by_role("button", name="Spara fasbyte").click()
        page.wait_for_url(f"**/persons/{key}?saved=phase*")
        assert "Stabilisering" in page.locator("#overview .phase").inner_text()

        # rehabilitation (care-plan goals already recorded)
        page.get_by_role("link", name=re.compile("^Byt fas till Långsiktig")).click()
        assert "Stabil dos" in page.locator("#fact-care_plan_goals").input_value()
        page.locator("#date").fill(_day(100))
        page.get_by_role("button", name="Spara fasbyte").click()
        page.wait_for_url(f"**/persons/{key}?saved=phase*")
        assert "Långsiktig rehabilitering" in page.locator("#overview .phase").inner_text()
        _shots(page, "04-rehabilitation")

        # discharge: involuntary needs medical grounds; the municipality takes over
        page.get_by_role("link", name="Avsluta (skriv ut)").click()
        page.locator("#date").fill(_day(5))
        page.locator("#end_reason").select_option("involuntary_discharge")
        page.locator("#municipal_unit_id").select_option("soc-malmo")
        page.get_by_role("button", name="Spara avslut").click()
        page.wait_for_load_state()
        assert page.locator("#e-medical_ground").is_visible()
        assert page.locator("#end_reason").input_value() == "involuntary_discharge"  # kept
        _no_raw(page)
        _shots(page, "05-discharge-error")
        page.locator("#fact-medical_ground").fill("Upprepade överdoser vid sidomissbruk")
        page.get_by_role("button", name="Spara avslut").click()
        page.wait_for_url(f"**/persons/{key}?saved=discharge*")
        text = page.locator("#overview").inner_text()
        assert "Ofrivillig utskrivning" in text
        assert "Kommun: Socialtjänsten Malmö" in text  # responsible after discharge
        page.locator("details.ov-history summary").first.click()
        history = page.locator("details.ov-history").first.inner_text()
        assert "Uppföljning 6 månader efter avslut" in history
        for name in ("Utredning och bedömning", "Behandlingsstart", "Stabilisering",
                     "Långsiktig rehabilitering", "Avslut"):
            assert name in history
        _no_raw(page, "#overview")
        timeline = page.locator("table.timeline").inner_text()  # every change on the timeline
        assert timeline.count("Fasbyte") == 3 and "från Utredning och bedömning" in timeline
        assert "Avslut" in timeline and "Ofrivillig utskrivning" in timeline
        _shots(page, "06-discharged")

        # the municipality's work list shows the post-discharge follow-up
        other = browser.new_page(viewport={"width": 1280, "height": 900})
        _login(other, server, "soc")
        other.goto(f"{server.url}/worklist")
        rows = other.locator("main").inner_text()
        assert "Uppföljning 6 månader efter avslut" in rows
        _shots(other, "07-municipal-worklist")
