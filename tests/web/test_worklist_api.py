"""Worklist routes (API and pages): the exact page contract, 422 for bad parameters,
authorisation per role and unit, CSV content, assignment, search by identity number,
and the stage/enrolment forms (scheduled stage or "unscheduled", fields in words)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.access.authz_support import luhn_number
from tests.web.conftest import page_login
from tests.web.factory import World
from tests.web.worklist_seed import seed_enrolments
from utfall.store.models import Assessment, AuditEvent

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def seeded(world: World) -> list[str]:
    return seed_enrolments(world.engine, 16)


@pytest.fixture
def pages(app) -> Iterator:
    clients: list[TestClient] = []

    def make(user: str) -> tuple[TestClient, str]:
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client, page_login(client, user)

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def test_api_page_contract_paging_and_422(login, seeded: list[str]) -> None:
    clin = login("clin")
    r = clin.get("/api/worklist", params={"page_size": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"items", "total", "page", "page_size"}
    assert body["page"] == 1 and body["page_size"] == 5 and len(body["items"]) == 5
    total = body["total"]
    assert total > 16
    seen = []
    for page in range(1, -(-total // 5) + 1):
        items = clin.get("/api/worklist", params={"page": page, "page_size": 5}).json()["items"]
        seen += [(i["enrolment_id"], i["stage_id"]) for i in items]
    assert len(seen) == len(set(seen)) == total
    item = body["items"][0]
    assert re.fullmatch(r"\d{8}-\*{4}", item["person"]) and item["programme"] == "vip-beroende"
    assert item["title"]["sv"] and item["status"] in ("overdue", "due", "upcoming", "missed")
    overdue = clin.get("/api/worklist", params={"status": "overdue", "page_size": 200}).json()
    assert all(i["status"] == "overdue" for i in overdue["items"])
    by_due = clin.get("/api/worklist", params={"sort": "-due", "page_size": 200}).json()["items"]
    dates = [i["due_date"] for i in by_due if i["due_date"]]
    assert dates == sorted(dates, reverse=True)
    programme = clin.get("/api/worklist", params={"programme": "laro"}).json()
    assert programme["total"] == 0
    mine = clin.get("/api/worklist", params={"mine": "true", "status": "all",
                                             "page_size": 200}).json()
    assert mine["total"] > 0 and {i["worker"] for i in mine["items"]} == {"clin"}
    person = clin.get("/api/worklist", params={"person": seeded[3], "status": "all"}).json()
    assert person["total"] > 0 and {i["person_key"] for i in person["items"]} == {seeded[3]}
    for bad in ({"page": 0}, {"page_size": 0}, {"page_size": 201}, {"status": "bogus"},
                {"sort": "bogus"}, {"person": "not-a-key"}, {"programme": "Bad Id"}):
        assert clin.get("/api/worklist", params=bad).status_code == 422, bad
    unknown = clin.get("/api/worklist", params={"programme": "nope"})
    assert unknown.status_code == 422 and unknown.json()["issues"][0]["where"] == "programme"


def test_authorisation_per_role_and_unit(app, login, world: World, seeded: list[str]) -> None:
    with TestClient(app, raise_server_exceptions=False) as anon:
        for path in ("/api/worklist", "/api/worklist/export"):
            assert anon.get(path).status_code == 401
        assert anon.post("/api/worklist/assignments", json={}).status_code == 401
        page = anon.get("/worklist", follow_redirects=False)
        assert page.status_code == 303 and "/login" in page.headers["location"]
    for user in ("ana", "root"):
        client = login(user)
        assert client.get("/api/worklist").status_code == 403
        assert client.get("/api/worklist/export").status_code == 403
        assert client.post("/api/worklist/assignments", json={
            "enrolment_id": "x", "stage": "intake", "worker": None}).status_code == 403
    boss = login("boss")  # manager of reg-ber: reads the list, does not assign
    listed = boss.get("/api/worklist").json()
    assert listed["total"] > 0
    target = listed["items"][0]
    assert boss.post("/api/worklist/assignments", json={
        "enrolment_id": target["enrolment_id"], "stage": target["stage"],
        "worker": "clin"}).status_code == 403
    soc = login("soc")  # another principal's unit: none of reg-ber's stages
    theirs = soc.get("/api/worklist", params={"status": "all", "page_size": 200}).json()
    assert not {i["enrolment_id"] for i in theirs["items"]} & {
        i["enrolment_id"] for i in listed["items"]}
    refused = soc.post("/api/worklist/assignments", json={
        "enrolment_id": target["enrolment_id"], "stage": target["stage"], "worker": "soc"})
    assert refused.status_code in (403, 404)
    clin2 = login("clin2")  # same region, other unit
    assert clin2.get("/api/worklist").json()["total"] == 0


def test_assignment_api(login, world: World, seeded: list[str]) -> None:
    clin = login("clin")
    item = clin.get("/api/worklist", params={"worker": "-", "status": "all"}).json()["items"][0]
    r = clin.post("/api/worklist/assignments", json={
        "enrolment_id": item["enrolment_id"], "stage": item["stage_id"], "worker": "clin"})
    assert r.status_code == 200, r.text
    assert r.json()["worker"] == "clin" and r.json()["stage"] == item["stage"]
    again = clin.get("/api/worklist", params={"person": item["person_key"], "status": "all",
                                              "stage": item["stage"]}).json()["items"]
    assert {i["worker"] for i in again} == {"clin"}
    bad = clin.post("/api/worklist/assignments", json={
        "enrolment_id": item["enrolment_id"], "stage": item["stage"], "worker": "ghost"})
    assert bad.status_code == 422 and bad.json()["issues"][0]["where"] == "worker"
    stage = clin.post("/api/worklist/assignments", json={
        "enrolment_id": item["enrolment_id"], "stage": "nope", "worker": "clin"})
    assert stage.status_code == 422 and stage.json()["issues"][0]["where"] == "stage"


def test_csv_export(login, world: World, seeded: list[str]) -> None:
    clin = login("clin")
    total = clin.get("/api/worklist", params={"status": "all"}).json()["total"]
    with world.engine.connect() as conn:
        before = conn.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc())).scalar()
    r = clin.get("/api/worklist/export", params={"status": "all"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].split(";")[:3] == ["Status", "Person (maskerat personnummer)", "Kön"]
    assert len(lines) == total + 1
    text = r.content.decode("utf-8-sig")
    assert not re.search(r"\d{8}-?\d{4}", text)  # never a full identity number
    assert "vip-beroende" not in text and "overdue" not in text  # words, not codes
    assert "VIP beroende" in text
    with world.engine.connect() as conn:
        exported = conn.execute(select(AuditEvent.person_key).where(
            AuditEvent.id > before, AuditEvent.action == "export")).scalars().all()
    assert len(set(exported)) == len(exported) > 0
    english = clin.get("/api/worklist/export", params={"status": "all", "lang": "en"})
    assert english.content.decode("utf-8-sig").startswith("Status;Person (masked")


def test_worklist_page_search_and_assign(pages, world: World, seeded: list[str]) -> None:
    clin, csrf = pages("clin")
    r = clin.get("/worklist", params={"size": 5})
    assert r.status_code == 200
    assert "Visar 1–5 av" in r.text and 'aria-current="page"' in r.text
    assert "overdue" not in re.sub(r'(class|value|href)="[^"]*"', "", r.text)
    bad = clin.post("/worklist/search", data={"csrf_token": csrf, "identity_number": "123"})
    assert bad.status_code == 422 and 'id="wl-pnr-error"' in bad.text
    number = luhn_number("19600110", 500)  # the first seeded person
    found = clin.post("/worklist/search", data={"csrf_token": csrf, "identity_number": number,
                                                "status": "all"}, follow_redirects=False)
    assert found.status_code == 303
    target = found.headers["location"]
    assert number[:8] not in target and f"person={seeded[0]}" in target
    listed = clin.get(target)
    assert listed.status_code == 200 and "Visar en person" in listed.text
    item = re.search(r'name="enrolment_id" value="([0-9a-f]+)"', listed.text)
    stage = re.search(r'name="stage" value="([a-z0-9-]+)"', listed.text)
    assert item and stage
    saved = clin.post("/worklist/assign", data={
        "csrf_token": csrf, "enrolment_id": item.group(1), "stage": stage.group(1),
        "worker": "clin", "back": target}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].startswith("/worklist")
    csv = clin.get("/worklist/export.csv", params={"status": "all"})
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")
    boss, boss_csrf = pages("boss")
    assert boss.get("/worklist").status_code == 200
    assert boss.post("/worklist/assign", data={
        "csrf_token": boss_csrf, "enrolment_id": item.group(1), "stage": stage.group(1),
        "worker": "clin"}).status_code == 403


def test_assessment_stage_validation(login, pages, world: World,
                                     seeded: list[str]) -> None:
    clin = login("clin")
    key = seeded[0]
    answers = {"item_1": 1, "item_2": 0, "item_3": 0}
    r = clin.post(f"/api/persons/{key}/assessments", json={
        "instrument": "audit-c", "answers": answers, "stage": "6m"})
    assert r.status_code == 422 and r.json()["issues"][0]["where"] == "stage"
    r = clin.post(f"/api/persons/{key}/assessments", json={
        "instrument": "audit-c", "answers": answers, "stage": "unscheduled"})
    assert r.status_code == 201
    with world.engine.connect() as conn:
        stored = conn.execute(select(Assessment.stage).where(
            Assessment.row_key == r.json()["assessment_id"])).scalar()
    assert stored is None
    web, csrf = pages("clin")
    form = web.get(f"/persons/{key}/assess", params={"instrument": "audit-c"})
    assert form.status_code == 200 and 'name="stage"' in form.text
    assert "Utanför plan" in form.text and 'value="unscheduled"' in form.text
    assert 'input id="f-stage"' not in form.text  # never free text
    bad = web.post(f"/persons/{key}/assess?instrument=audit-c", data={
        "csrf_token": csrf, "on_date": dt.date.today().isoformat(), "stage": "x|6m",
        "item_1": "1", "item_2": "0", "item_3": "0"})
    assert bad.status_code == 422 and 'id="e-stage"' in bad.text
    assert 'value="1" checked' in bad.text  # the answers are kept
    choice = re.search(r'<option value="([0-9a-f]+\|[a-z0-9-]+)"', form.text)
    assert choice
    good = web.post(f"/persons/{key}/assess?instrument=audit-c", data={
        "csrf_token": csrf, "on_date": dt.date.today().isoformat(), "stage": choice.group(1),
        "item_1": "1", "item_2": "0", "item_3": "0"}, follow_redirects=False)
    assert good.status_code == 303, good.text


def test_enrolment_form_fields_in_words(pages, world: World) -> None:
    web, csrf = pages("clin")
    key = world.keys["region"]
    first = web.get(f"/persons/{key}/enrol")
    assert first.status_code == 200 and "fact-" not in first.text  # no fields before a choice
    laro = web.get(f"/persons/{key}/enrol", params={"programme": "laro"})
    assert 'id="fact-age"' in laro.text and "fact-sip_consent" not in laro.text
    r = web.post(f"/persons/{key}/enrol", data={
        "csrf_token": csrf, "programme": "laro", "start_date": dt.date.today().isoformat(),
        "fact_age": "200", "fact_special_reason": "Särskilt beslut", "fact_medication":
        "methadone"})
    assert r.status_code == 422
    text = r.text
    assert 'value="200"' in text and 'value="Särskilt beslut"' in text  # input kept
    assert 'value="methadone" selected' in text
    assert "fact-sip_consent" not in text  # only the chosen programme's fields
    assert "age:" not in text and "Ålder vid behandlingsstart" in text
    assert re.search(r'id="e-age">[^<]*0–130', text)
