"""Self-report by link: page and API, single use, field errors, language of the link."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from tests.web.factory import World


def _enrol_and_link(client: TestClient, world: World, locale: str = "sv") -> str:
    key = world.keys["region"]
    r = client.post(f"/api/persons/{key}/enrolments", json={
        "programme": "vip-beroende", "start_date": dt.date.today().isoformat()})
    assert r.status_code == 201, r.text
    r = client.post(f"/api/persons/{key}/self-report-links", json={
        "enrolment_id": r.json()["enrolment_id"], "stage": "intake",
        "instruments": ["audit-c", "who-5"], "locale": locale})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_self_report_page_flow(login, anon: TestClient, world: World) -> None:
    token = _enrol_and_link(login("clin"), world)
    page = anon.get(f"/r/{token}")
    assert page.status_code == 200 and "AUDIT-C" in page.text and "Steg 1 av" in page.text
    assert 'name="audit-c:item_1"' in page.text
    assert world.keys["region"] not in page.text  # no identity on the person's page
    step = {"step_key": "audit-c#0", "action": "next"}
    r = anon.post(f"/r/{token}", data=step | {"audit-c:item_1": "x"})
    assert r.status_code == 422 and "Välj ett av svarsalternativen" in r.text
    r = anon.post(f"/r/{token}", data=step | {"audit-c:item_1": "9"})
    assert r.status_code == 422  # engine error shown per field, token still usable
    r = anon.post(f"/r/{token}", data=step | {"audit-c:item_1": "2"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?steg=2")
    r = anon.post(f"/r/{token}", data={"step_key": "audit-c#1", "action": "next",
                                       "audit-c:item_2": "1", "audit-c:item_3": "1"})
    r = anon.post(f"/r/{token}", data={"step_key": "who-5#0", "action": "next"}
                  | {f"who-5:item_{i}": "3" for i in range(1, 6)})
    assert r.status_code == 200 and "Dina egna mål" in r.text
    r = anon.post(f"/r/{token}", data={"step_key": "_goals", "action": "next"})
    assert r.status_code == 200 and "Tack för dina svar!" in r.text and "1177" in r.text
    again = anon.get(f"/r/{token}")
    assert again.status_code == 404 and "redan använts" in again.text
    tl = login("clin").get(f"/api/persons/{world.keys['region']}/timeline").json()
    assert {a["source"] for a in tl["assessments"]} >= {"self_report"}


def test_self_report_api_and_language(login, anon: TestClient, world: World) -> None:
    token = _enrol_and_link(login("clin"), world, locale="en")
    page = anon.get(f"/r/{token}")
    assert 'lang="en"' in page.text and "Next" in page.text and "Step 1 of" in page.text
    form = anon.get(f"/api/self-report/{token}").json()
    assert [i["id"] for i in form["instruments"]] == ["audit-c", "who-5"]
    r = anon.post(f"/api/self-report/{token}", json={"answers": {
        "audit-c": {"item_1": 0}, "who-5": {f"item_{i}": 5 for i in range(1, 6)}}})
    assert r.status_code == 200, r.text
    assert anon.post(f"/api/self-report/{token}", json={"answers": {}}).status_code == 404
    assert anon.get("/api/self-report/forged-token").status_code == 404
    assert anon.get("/r/forged-token").status_code == 404
