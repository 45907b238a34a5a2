"""Accessibility: axe-core (npm, pinned in test-tools/package.json) injected by
Playwright into real Chromium on the pages a person opens by link — every self-report
step, a step with errors, the saved page, the thank-you page, the closed page and the
own view — and on the clinician's invitation page; no serious or critical violation.
Also the invitation UI at 390 px (screenshot in test-artifacts/invitations/), whose
QR code is decoded in the page (npm jsqr) back to the link."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.e2e_support import ARTIFACTS, CHROMIUM, LiveServer, chromium, live_server
from tests.web.factory import PASSWORD

AXE = Path(__file__).resolve().parents[2] / "test-tools" / "node_modules" / "axe-core" / \
    "axe.min.js"
JSQR = AXE.parents[1] / "jsqr" / "dist" / "jsQR.js"
PHONE = {"width": 390, "height": 844}
_DECODE = """img => {
  const size = img.naturalWidth * 4, canvas = document.createElement('canvas');
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, 0, 0, size, size);
  const found = jsQR(ctx.getImageData(0, 0, size, size).data, size, size);
  return found ? found.data : null;
}"""

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium"),
              pytest.mark.skipif(not AXE.exists(), reason="npm ci in test-tools (axe-core)")]

_RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return {passes: r.passes.length, version: r.testEngine.version,
          violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))};
}"""
CHECKED: list[str] = []


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("axe")) as live:
        yield live


def _api(server: LiveServer, method: str, path: str, body: dict[str, Any] | None = None,
         user: str = "clin") -> tuple[int, dict[str, Any]]:
    def call(m: str, p: str, b: dict[str, Any] | None, headers: dict[str, str]
             ) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(server.url + p, method=m,
                                     data=json.dumps(b).encode() if b is not None else None,
                                     headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    _s, session = call("POST", "/api/session", {"username": user, "password": PASSWORD}, {})
    return call(method, path, body, {"Authorization": f"Bearer {session['token']}"})


def _serious(page: Any, where: str, found: dict[str, list[Any]]) -> None:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(_RUN)
    assert result["passes"] > 10 and result["version"] == "4.14.1"  # axe really ran
    CHECKED.append(where)
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    if bad:
        found[where] = bad


def _link(server: LiveServer) -> tuple[str, str, int]:
    key = server.keys["region"]
    status, enrolment = _api(server, "POST", f"/api/persons/{key}/enrolments", {
        "programme": "vip-beroende", "start_date": dt.date.today().isoformat()})
    assert status == 201
    status, link = _api(server, "POST", f"/api/persons/{key}/self-report-links", {
        "enrolment_id": enrolment["enrolment_id"], "stage": "intake",
        "instruments": ["audit-c", "who-5"]})
    assert status == 201
    return key, link["token"], int(link["link_id"])


def _answer_step(page: Any) -> None:
    """Choose the first option of every question on the step."""
    names = page.eval_on_selector_all(
        "form.sr-form input[type=radio]", "els => [...new Set(els.map(e => e.name))]")
    for name in names:
        page.locator(f'input[type=radio][name="{name}"]').first.check()


def test_pages_opened_by_link_have_no_serious_violations(server: LiveServer) -> None:
    found: dict[str, list[Any]] = {}
    key, token, _link_id = _link(server)
    with chromium() as raw:
        browser: Any = raw
        context = browser.new_context(viewport=PHONE, bypass_csp=True)  # to inject axe
        page = context.new_page()
        page.goto(f"{server.url}/r/{token}")
        _serious(page, "step 1", found)
        page.locator("button[name=action][value=next]").click()
        page.wait_for_load_state()
        assert page.locator(".field-error").count() > 0  # the error state is checked too
        _serious(page, "step 1 with errors", found)
        steps = 1
        while page.locator("button[name=action][value=next]").count() and steps < 12:
            _answer_step(page)
            page.locator("button[name=action][value=next]").click()
            page.wait_for_load_state()
            steps += 1
            if page.locator("form.sr-form").count():
                _serious(page, f"step {steps}", found)
        assert "1177" in page.content()  # the thank-you page
        _serious(page, "thank-you", found)
        page.goto(f"{server.url}/r/{token}")
        _serious(page, "closed", found)

        _key, later, _ = _link(server)
        page.goto(f"{server.url}/r/{later}")
        _answer_step(page)
        page.locator("button[name=action][value=later]").click()
        page.wait_for_load_state()
        _serious(page, "saved for later", found)
        page.goto(f"{server.url}/r/{later}?lang=en")
        assert page.locator("html").get_attribute("lang") == "en"
        _serious(page, "step in English", found)

        status, own = _api(server, "POST", f"/api/persons/{key}/own-view-links", {})
        if status == 201:
            page.goto(server.url + own["path"])
            _serious(page, "own view", found)
        context.close()
    assert steps >= 3
    assert {"step 1", "step 1 with errors", "step 2", "thank-you", "closed",
            "saved for later", "step in English"} <= set(CHECKED)
    print("axe checked:", CHECKED)
    assert not found, json.dumps(found, ensure_ascii=False, indent=1)


def test_invitation_page_accessible_and_usable_at_390(server: LiveServer) -> None:
    found: dict[str, list[Any]] = {}
    key, _token, link_id = _link(server)
    with chromium() as raw:
        browser: Any = raw
        context = browser.new_context(viewport=PHONE, bypass_csp=True)
        page = context.new_page()
        page.goto(server.url + "/login")
        page.get_by_label("Användarnamn").fill("clin")
        page.get_by_label("Lösenord").fill(PASSWORD)
        page.get_by_role("button", name="Logga in").click()
        page.wait_for_load_state()
        folder = ARTIFACTS / "invitations"
        folder.mkdir(parents=True, exist_ok=True)
        # a link made on the person page shows its QR code and the send forms at once
        page.goto(f"{server.url}/persons/{key}")
        page.get_by_role("button", name="Skapa länk").click()
        page.wait_for_load_state()
        assert page.get_by_role("img", name="QR-kod som öppnar länken till formuläret"
                                ).evaluate("img => img.complete && img.naturalWidth > 100")
        page.locator("#invite").screenshot(path=str(folder / "person-invite-390.png"))
        page.goto(f"{server.url}/persons/{key}/self-report/{link_id}")
        qr = page.get_by_role("img", name="QR-kod som öppnar länken till formuläret")
        assert qr.evaluate("img => img.complete && img.naturalWidth > 100")
        if JSQR.exists():  # the QR code decodes to the link (npm jsqr, in the page)
            page.add_script_tag(path=str(JSQR))
            decoded = qr.evaluate(_DECODE)
            assert decoded == page.locator("#self-link").input_value()
            assert decoded.startswith(f"{server.url}/r/")
        page.get_by_label("Mobilnummer").fill("12345")
        page.get_by_role("button", name="Skicka via sms").click()
        page.wait_for_load_state()
        assert page.locator("#invite-phone-err").inner_text().startswith("Skriv mobilnumret")
        _serious(page, "invitation page with error", found)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= PHONE["width"], scroll
        page.screenshot(path=str(folder / "invite-error-390.png"), full_page=True)
        page.get_by_label("Mobilnummer").fill("070-123 45 67")
        page.get_by_role("button", name="Skicka via sms").click()
        page.wait_for_load_state()
        assert "Länken skickades till +46 70 … 67." in page.content()
        _serious(page, "invitation page sent", found)
        page.screenshot(path=str(folder / "invite-sent-390.png"), full_page=True)
        context.close()
    assert not found, json.dumps(found, ensure_ascii=False, indent=1)
