"""The person's own side through the web: stepped self-report in English with
save-and-return and skip logic, goals API and staff pages, own-view links (issue, open,
revoke), and nothing on a link's screen that names a programme, diagnosis or identity."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from tests.web.conftest import page_login
from tests.web.factory import World
from tests.web.test_e2e_selfreport_phone import assert_discreet


def _link(client: TestClient, world: World, instruments: list[str], locale: str = "sv",
          programme: str = "laro") -> str:
    key = world.keys["region"]
    r = client.post(f"/api/persons/{key}/enrolments", json={
        "programme": programme, "start_date": dt.date.today().isoformat()})
    assert r.status_code == 201, r.text
    r = client.post(f"/api/persons/{key}/self-report-links", json={
        "enrolment_id": r.json()["enrolment_id"], "stage": "intake",
        "instruments": instruments, "locale": locale})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_stepped_self_report_in_english(login, anon: TestClient, world: World) -> None:
    token = _link(login("clin"), world, ["audit", "who-5"], locale="en")
    pages = []
    page = anon.get(f"/r/{token}")
    pages.append(page.text)
    assert page.status_code == 200 and "Step 1 of 5" in page.text
    assert "From Beroendemottagning Malmö" in page.text and "<script" in page.text
    r = anon.post(f"/r/{token}", data={"step_key": "audit#0", "action": "next",
                                       "audit:item_1": "3"}, follow_redirects=False)
    assert r.status_code == 303
    # drinks heavily → items 4–8 are asked on step 3
    r = anon.post(f"/r/{token}", data={"step_key": "audit#1", "action": "next",
                                       "audit:item_2": "2", "audit:item_3": "1"})
    assert r.status_code == 200 and 'name="audit:item_4"' in r.text
    pages.append(r.text)
    # a partial answer, then leave: the draft is kept server-side
    r = anon.post(f"/r/{token}", data={"step_key": "audit#2", "action": "later",
                                       "audit:item_4": "1"})
    assert r.status_code == 200 and "Your answers are saved" in r.text
    pages.append(r.text)
    back = anon.get(f"/r/{token}")
    assert "Step 3 of 5" in back.text and 'name="audit:item_4" value="1" checked' in back.text
    r = anon.post(f"/r/{token}", data={"step_key": "audit#2", "action": "next",
                                       "audit:item_4": "1"})
    assert r.status_code == 422 and "Choose an answer to the question." in r.text
    assert "required item" not in r.text
    pages.append(r.text)
    # going back to change item 2 and 3 to "none" removes the skipped answers
    anon.post(f"/r/{token}", data={"step_key": "audit#1", "action": "next",
                                   "audit:item_2": "0", "audit:item_3": "0"})
    r = anon.get(f"/r/{token}?steg=3")
    assert 'name="audit:item_4"' not in r.text and 'name="audit:item_9"' in r.text
    r = anon.post(f"/r/{token}", data={"step_key": "audit#2", "action": "next",
                                       "audit:item_9": "0", "audit:item_10": "0"})
    r = anon.post(f"/r/{token}", data={"step_key": "who-5#0", "action": "next"}
                  | {f"who-5:item_{i}": "4" for i in range(1, 6)})
    assert "Your own goals" in r.text
    r = anon.post(f"/r/{token}", data={"step_key": "_goals", "action": "next",
                                       "goal_text_0": "Find work"})
    assert r.status_code == 422 and "Choose which area the goal is about." in r.text
    r = anon.post(f"/r/{token}", data={"step_key": "_goals", "action": "next",
                                       "goal_text_0": "Find work",
                                       "goal_domain_0": "occupation"})
    assert r.status_code == 200 and "Thank you for your answers!" in r.text
    assert "sr-flagged" not in r.text  # no answer raised a flag
    pages.append(r.text)
    closed = anon.get(f"/r/{token}")
    assert closed.status_code == 404
    pages.append(closed.text)
    for html in pages:
        assert_discreet(html, world.keys)
    goals = login("clin").get(f"/api/persons/{world.keys['region']}/goals").json()
    assert [(g["text"], g["domain"], g["source"]) for g in goals] == [
        ("Find work", "occupation", "self_report")]


def test_goals_api_and_own_view_links(login, anon: TestClient, world: World) -> None:
    key = world.keys["region"]
    clin = login("clin")
    assert anon.get(f"/api/persons/{key}/goals").status_code == 401
    r = clin.post(f"/api/persons/{key}/goals", json={"domain": "moon", "text": ""})
    assert r.status_code == 422
    assert {i["where"] for i in r.json()["issues"]} == {"goal.domain", "goal.text"}
    r = clin.post(f"/api/persons/{key}/goals", json={"domain": "housing", "text": "Eget hem"})
    assert r.status_code == 201, r.text
    goal_id = r.json()["goal_id"]
    r = clin.post(f"/api/goals/{goal_id}/reviews", json={"status": "partly"})
    assert r.status_code == 201, r.text
    assert clin.get(f"/api/persons/{key}/goals").json()[0]["status"] == "partly"
    assert login("soc").get(f"/api/persons/{key}/goals").status_code in (403, 404)
    assert login("soc").post(f"/api/goals/{goal_id}/reviews",
                             json={"status": "not"}).status_code in (403, 404)
    assert login("boss").post(f"/api/persons/{key}/own-view-links",
                              json={}).status_code == 403
    r = clin.post(f"/api/persons/{key}/own-view-links", json={})
    assert r.status_code == 201
    path = r.json()["path"]
    view = anon.get(path)
    assert view.status_code == 200 and "Eget hem" in view.text and "Delvis uppnått" in view.text
    assert_discreet(view.text, world.keys)
    data = anon.get("/api/own-view/" + path.removeprefix("/min/")).json()
    assert data["goals"][0]["text"] == "Eget hem" and "programme" not in str(data)
    assert clin.delete(f"/api/persons/{key}/own-view-links").json() == {"revoked": 1}
    gone = anon.get(path)
    assert gone.status_code == 404 and "no longer valid" not in gone.text
    assert "Länken gäller inte längre" in gone.text
    assert anon.get("/api/own-view/" + path.removeprefix("/min/")).status_code == 404


def test_staff_goal_and_own_link_pages(app, world: World) -> None:
    key = world.keys["region"]
    with TestClient(app) as client:
        csrf = page_login(client, "clin")
        page = client.get(f"/persons/{key}/goals")
        assert page.status_code == 200 and "Personens egna mål" in page.text
        r = client.post(f"/persons/{key}/goals", data={"csrf_token": csrf, "text": "Jobba"})
        assert r.status_code == 422 and "välj ett livsområde" in r.text and "Jobba" in r.text
        r = client.post(f"/persons/{key}/goals", data={
            "csrf_token": csrf, "text": "Jobba", "domain": "occupation"})
        assert r.status_code == 200 and "Jobba" in r.text and "Sparat." in r.text
        r = client.post(f"/persons/{key}/own-link", data={"csrf_token": csrf,
                                                           "action": "create"})
        assert r.status_code == 200 and "/min/" in r.text and "Aktiv" in r.text
        r = client.post(f"/persons/{key}/own-link", data={"csrf_token": csrf,
                                                           "action": "revoke"})
        assert r.status_code == 200 and "1 länk(ar) spärrade." in r.text
        assert "Spärrad" in r.text


def test_a_step_whose_question_is_unanswered_leads_back(login, anon: TestClient,
                                                        world: World) -> None:
    token = _link(login("clin"), world, ["audit-c"])
    page = anon.get(f"/r/{token}?steg=2")  # AUDIT-C item 1 not answered yet
    assert "Steg 1 av 3" in page.text and 'name="audit-c:item_1"' in page.text
    assert 'name="audit-c:item_2"' not in page.text


def test_personal_link_tokens_never_reach_a_log() -> None:
    from utfall.web.security import redact

    assert "secret-token" not in redact("GET /min/secret-token HTTP/1.1")
    assert "secret-token" not in redact("GET /api/own-view/secret-token?lang=en")
