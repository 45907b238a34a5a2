"""Chromium on a 390×844 phone viewport: a multi-instrument self-report with back/next
and an error in between, leave and return, submit, reuse the link (closed), and the
own view with the new results and goals. Every screen a link opens is checked for
programme names, diagnoses (ICD codes and labels) and identity numbers."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.e2e_support import CHROMIUM, LiveServer, chromium, live_server
from tests.web.factory import P_BOTH, P_REGION, P_SOC, PASSWORD

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "selfreport"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("e2e-selfreport")) as live:
        yield live


def forbidden_texts() -> list[str]:
    """Programme titles, ICD-10 codes and labels of the classified groups and states."""
    from utfall.domain.codes import code_systems
    from utfall.followup import get_programme

    texts = []
    for pid in ("laro", "rop", "vip-beroende"):
        title = get_programme(pid).title
        texts += [title.sv, title.en]
    codes = code_systems()
    for group in codes.substance_groups.values():
        texts += [f"{group['sv']} (F", group["en"] + " (F"]
    from importlib import resources

    import yaml

    icd = yaml.safe_load(resources.files("utfall.content").joinpath("codes/icd10.yaml")
                         .read_text("utf-8"))
    for state in (icd.get("clinical_states") or {}).values():
        texts += [state["sv"], state["en"]]
    texts.append("beroendevården")  # the app's own footer names the kind of care
    return [t for t in texts if len(t) > 3]


ICD_CODE = re.compile(r"\bF1\d(\.\d)?\b")
IDENTITY = re.compile(r"\b(19|20)?\d{6}[-+]?\d{4}\b")


def assert_discreet(html: str, keys: dict[str, str]) -> None:
    """No programme name, diagnosis, identity number or person key in ``html``."""
    text = re.sub(r"<[^>]+>", " ", html)
    lower = text.lower()
    for bad in forbidden_texts():
        assert bad.lower() not in lower, bad
    assert not ICD_CODE.search(text), ICD_CODE.search(text)
    assert not IDENTITY.search(text), IDENTITY.search(text)
    for number in (P_REGION, P_SOC, P_BOTH):
        assert number not in html and number[2:] not in html
    for key in keys.values():
        assert key not in html


def _setup(server: LiveServer) -> tuple[str, str]:
    """Enrol the person in LARO, issue a self-report link (AUDIT + PHQ-9) and an
    own-view link through the API as the clinician."""
    with httpx.Client(base_url=server.url) as client:
        r = client.post("/api/session", json={"username": "clin", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        key = server.keys["region"]
        r = client.post(f"/api/persons/{key}/enrolments", headers=headers, json={
            "programme": "laro", "start_date": dt.date.today().isoformat()})
        assert r.status_code == 201, r.text
        r = client.post(f"/api/persons/{key}/self-report-links", headers=headers, json={
            "enrolment_id": r.json()["enrolment_id"], "stage": "intake",
            "instruments": ["audit", "phq-9"], "locale": "sv"})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        r = client.post(f"/api/persons/{key}/own-view-links", headers=headers, json={})
        assert r.status_code == 201, r.text
        return token, r.json()["path"]


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"sideways scrolling: {width}px"


def test_self_report_on_a_phone(server: LiveServer) -> None:
    token, own_path = _setup(server)
    seen: list[str] = []
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 390, "height": 844},
                                      device_scale_factor=1, is_mobile=True, has_touch=True)
        page = context.new_page()
        page.goto(f"{server.url}/r/{token}")
        assert page.get_by_text("Steg 1 av").is_visible()
        assert page.get_by_text("Från Beroendemottagning Malmö").is_visible()
        _fits(page)
        seen.append(page.content())
        _shot(page, "01-step1-audit")
        page.get_by_label("2–4 gånger i månaden").check()
        page.get_by_role("button", name="Nästa").click()
        page.wait_for_url(re.compile(r"steg=2"))
        # an error in between: next without answering, plain words at the question
        page.get_by_role("button", name="Nästa").click()
        page.wait_for_load_state()
        assert page.locator(".field-error").first.is_visible()
        assert page.locator(".field-error").first.inner_text() == "Välj ett svar på frågan."
        assert "obligatorisk" not in page.content()
        _fits(page)
        seen.append(page.content())
        _shot(page, "02-error-next-to-question")
        page.locator('input[name="audit:item_2"][value="0"]').check()
        page.locator('input[name="audit:item_3"][value="0"]').check()
        # back keeps the answers of both screens
        page.get_by_role("button", name="Tillbaka").click()
        page.wait_for_url(re.compile(r"steg=1"))
        assert page.get_by_label("2–4 gånger i månaden").is_checked()
        page.get_by_role("button", name="Nästa").click()
        page.wait_for_url(re.compile(r"steg=2"))
        assert page.locator('input[name="audit:item_2"][value="0"]').is_checked()
        page.get_by_role("button", name="Nästa").click()
        page.wait_for_url(re.compile(r"steg=3"))
        # skip logic as you go: 1–2 drinks and never six → items 4–8 are not asked
        assert page.locator('input[name="audit:item_4"]').count() == 0
        assert page.locator('input[name="audit:item_9"]').count() == 3
        assert page.get_by_text("Steg 3 av 5").is_visible()
        _shot(page, "03-skip-logic")
        page.locator('input[name="audit:item_9"][value="0"]').check()
        # leave and return: save for later, close the page, open the link again
        page.get_by_role("button", name="Spara och fortsätt senare").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="Dina svar är sparade").is_visible()
        seen.append(page.content())
        _shot(page, "04-saved-for-later")
        page.close()
        page = context.new_page()
        page.goto(f"{server.url}/r/{token}")
        assert page.get_by_text("Steg 3 av 5").is_visible()
        assert page.locator('input[name="audit:item_9"][value="0"]').is_checked()
        page.locator('input[name="audit:item_10"][value="0"]').check()
        page.get_by_role("button", name="Nästa").click()
        page.wait_for_url(re.compile(r"steg=4"))
        assert page.get_by_role("heading", name=re.compile("PHQ-9")).is_visible()
        for n in range(1, 10):
            page.locator(f'input[name="phq-9:item_{n}"][value="{1 if n == 9 else 2}"]').check()
        _fits(page)
        seen.append(page.content())
        _shot(page, "05-phq9")
        page.get_by_role("button", name="Nästa").click()
        page.wait_for_url(re.compile(r"steg=5"))
        assert page.get_by_role("heading", name="Dina egna mål").is_visible()
        page.locator("#goal_text_0").fill("Ha en egen lägenhet till sommaren")
        page.locator("#goal_domain_0").select_option("housing")
        page.locator("#goal_text_1").fill("Träffa min dotter varje vecka")
        page.locator("#goal_domain_1").select_option("relationships")
        _fits(page)
        seen.append(page.content())
        _shot(page, "06-goals")
        page.get_by_role("button", name="Skicka svaren").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="Tack för dina svar!").is_visible()
        assert page.locator(".sr-flagged").is_visible()  # PHQ-9 item 9 raises a flag
        assert page.get_by_text("Ring 1177").is_visible()
        assert page.get_by_text("1177.se/skane").is_visible()  # the region's own contacts
        _fits(page)
        seen.append(page.content())
        _shot(page, "07-thank-you")
        # the link is used up
        page.goto(f"{server.url}/r/{token}")
        assert page.get_by_role("heading", name="Länken går inte att använda").is_visible()
        seen.append(page.content())
        _shot(page, "08-link-closed")
        # the own view: the new results and goals
        page.goto(server.url + own_path)
        assert page.get_by_role("heading", name="Min översikt").is_visible()
        assert page.get_by_role("heading", name="AUDIT – alkoholvanor").is_visible()
        assert page.get_by_role("heading", name=re.compile("PHQ-9")).is_visible()
        assert page.get_by_text("Ha en egen lägenhet till sommaren").is_visible()
        assert page.get_by_text("Inte följt upp ännu").first.is_visible()
        assert page.get_by_text("Lägre poäng betyder att du mår bättre.").first.is_visible()
        _fits(page)
        seen.append(page.content())
        _shot(page, "09-own-view")
        # the clinician follows up a goal on a phone; the person sees the status
        staff = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        staff.goto(server.url + "/login")
        staff.get_by_label("Användarnamn").fill("clin")
        staff.get_by_label("Lösenord").fill(PASSWORD)
        staff.get_by_role("button", name="Logga in").click()
        staff.wait_for_load_state()
        staff.goto(f"{server.url}/persons/{server.keys['region']}/goals")
        card = staff.locator("section.card").filter(has_text="Ha en egen lägenhet")
        assert card.get_by_text("av personen").is_visible()  # set by the person
        card.get_by_label("Delvis uppnått").check()
        card.get_by_role("button", name="Spara").click()
        staff.wait_for_load_state()
        assert staff.get_by_text("Sparat.").is_visible()
        _fits(staff)
        _shot(staff, "10-staff-goal-review")
        page.reload()
        goal = page.locator(".own-goal").filter(has_text="Ha en egen lägenhet")
        assert goal.get_by_text("Delvis uppnått").is_visible()
        page.goto(server.url + own_path + "?lang=en")
        assert page.get_by_role("heading", name="My overview").is_visible()
        seen.append(page.content())
        _shot(page, "11-own-view-en")
        context.close()
    for html in seen:
        assert_discreet(html, server.keys)
