"""Flags, inbox and corrections over HTTP: every new route × role, audit, pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.web.factory import SYSTEM, World
from utfall.care import record_assessment
from utfall.store.models import AuditEvent

PHQ = {f"item_{i}": 1 for i in range(1, 9)} | {"item_9": 0}
DAY = dt.date(2026, 1, 12)


@pytest.fixture
def flagged(world: World) -> dict[str, Any]:
    """A PHQ-9 with item 9 > 0 for the shared person and a self-report of the region-only
    person, both at reg-ber."""
    with world.engine.begin() as conn:
        phq = record_assessment(conn, SYSTEM, world.keys["both"], "phq-9",
                                PHQ | {"item_9": 2}, unit_id="reg-ber", on_date=DAY)
        report = record_assessment(conn, SYSTEM, world.keys["region"], "phq-9", PHQ,
                                   unit_id="reg-ber", on_date=DAY, source="self_report")
    return {"phq": phq, "report": report, "both": world.keys["both"],
            "region": world.keys["region"]}


def _flag_id(client: TestClient) -> int:
    return int(client.get("/api/inbox").json()["flags"][0]["flag_id"])


def test_every_route_needs_a_session(anon: TestClient, flagged: dict[str, Any]) -> None:
    a, key = flagged["phq"], flagged["both"]
    calls = [("get", "/api/inbox", None), ("post", "/api/flags/1/acknowledge", {"note": "x"}),
             ("get", f"/api/persons/{key}/flags", None),
             ("post", f"/api/self-reports/{a}/seen", None),
             ("get", f"/api/assessments/{a}/history", None),
             ("post", f"/api/assessments/{a}/correct", {"answers": PHQ, "reason": "x"}),
             ("post", f"/api/assessments/{a}/void", {"reason": "x"})]
    for method, path, body in calls:
        r = anon.request(method.upper(), path, json=body)
        assert r.status_code == 401, (path, r.status_code)
    page = anon.get("/inbox", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_inbox_by_role(login: Callable[[str], TestClient], flagged: dict[str, Any]) -> None:
    box = login("clin").get("/api/inbox").json()
    assert [f["person_key"] for f in box["flags"]] == [flagged["both"]]
    assert box["flags"][0]["label"]["sv"].startswith("Tankar på döden")
    assert [r["assessment_id"] for r in box["self_reports"]] == [flagged["report"]]
    assert login("boss").get("/api/inbox").json()["total"] == 2  # manager of reg-ber reads
    assert login("clin2").get("/api/inbox").json()["total"] == 0  # other unit
    assert login("soc").get("/api/inbox").json()["total"] == 0  # other principal
    assert login("ana").get("/api/inbox").status_code == 403
    assert login("root").get("/api/inbox").status_code == 403


def test_acknowledge_by_role_and_audit(world: World, login: Callable[[str], TestClient],
                                       flagged: dict[str, Any]) -> None:
    clin = login("clin")
    flag = _flag_id(clin)
    path = f"/api/flags/{flag}/acknowledge"
    for user, status in (("ana", 403), ("root", 403), ("boss", 403), ("soc", 404),
                         ("soc_lund", 404), ("clin2", 404)):
        r = login(user).post(path, json={"note": "Bedömt"})
        assert r.status_code == status, (user, r.status_code, r.text)
    blank = clin.post(path, json={"note": "  "})
    assert blank.status_code == 422 and blank.json()["issues"][0]["where"] == "note"
    assert clin.post(path, json={}).status_code == 422
    assert clin.post("/api/flags/999999/acknowledge", json={"note": "x"}).status_code == 404
    done = clin.post(path, json={"note": "Suicidriskbedömning gjord"})
    assert done.status_code == 200 and done.json()["status"] == "acknowledged"
    assert clin.post(path, json={"note": "igen"}).status_code == 422
    assert clin.get("/api/inbox").json()["flags"] == []
    with world.engine.connect() as conn:
        events = conn.execute(select(AuditEvent.__table__).where(
            AuditEvent.person_key == flagged["both"])).all()
    acks = [e for e in events if (e.detail or {}).get("what") == "flag_acknowledged"]
    assert len(acks) == 1 and acks[0].actor == "clin" and acks[0].action == "change"


def test_person_flags_follow_consent(login: Callable[[str], TestClient],
                                     flagged: dict[str, Any]) -> None:
    path = f"/api/persons/{flagged['both']}/flags"
    assert [f["code"] for f in login("clin").get(path).json()["flags"]] == [
        "suicidal_thoughts"]
    assert len(login("boss").get(path).json()["flags"]) == 1
    soc = login("soc").get(path)  # no consent: the region's flag is not shown
    assert soc.status_code == 200 and soc.json()["flags"] == []
    assert login("soc_lund").get(path).status_code == 404  # no relation at all
    assert login("ana").get(path).status_code == 403
    assert login("root").get(path).status_code == 403


def test_correct_void_history_by_role(login: Callable[[str], TestClient],
                                      flagged: dict[str, Any]) -> None:
    a = flagged["phq"]
    clin = login("clin")
    for user, status in (("ana", 403), ("root", 403), ("boss", 403), ("soc", 403),
                         ("soc_lund", 404), ("clin2", 404)):
        r = login(user).post(f"/api/assessments/{a}/correct",
                             json={"answers": PHQ, "reason": "fel"})
        assert r.status_code == status, (user, r.status_code, r.text)
        r = login(user).post(f"/api/assessments/{a}/void", json={"reason": "fel"})
        assert r.status_code == status, (user, r.status_code, r.text)
    for user, status in (("clin", 200), ("boss", 200), ("soc", 404), ("soc_lund", 404),
                         ("ana", 403), ("root", 403)):
        assert login(user).get(f"/api/assessments/{a}/history").status_code == status, user
    bad = clin.post(f"/api/assessments/{a}/correct", json={"answers": PHQ | {"item_9": 9},
                                                            "reason": "fel"})
    assert bad.status_code == 422 and bad.json()["issues"][0]["where"] == "item_9"
    no_reason = clin.post(f"/api/assessments/{a}/correct", json={"answers": PHQ, "reason": ""})
    assert no_reason.status_code == 422 and no_reason.json()["issues"][0]["where"] == "reason"
    ok = clin.post(f"/api/assessments/{a}/correct", json={"answers": PHQ, "reason": "Fel fråga"})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["current"]["version"] == 2 and body["current"]["score"] == 8
    assert body["previous"][0]["score"] == 10 and body["previous"][0]["reason"] == "Fel fråga"
    assert [f["status"] for f in body["flags"]] == ["withdrawn"]
    assert clin.get("/api/inbox").json()["flags"] == []
    void = clin.post(f"/api/assessments/{a}/void", json={"reason": "Fel person"})
    assert void.status_code == 200 and void.json()["status"] == "voided"
    assert clin.post(f"/api/assessments/{a}/void", json={"reason": "igen"}).status_code == 422
    timeline = clin.get(f"/api/persons/{flagged['both']}/timeline").json()
    assert a not in str(timeline)
    assert clin.get(f"/api/assessments/{a}/history").json()["void"]["reason"] == "Fel person"


def test_seen_by_role(login: Callable[[str], TestClient], flagged: dict[str, Any]) -> None:
    path = f"/api/self-reports/{flagged['report']}/seen"
    assert login("ana").post(path).status_code == 403
    assert login("root").post(path).status_code == 403
    assert login("soc").post(path).status_code == 404
    assert login("clin2").post(path).status_code == 404
    assert login("clin").post(f"/api/self-reports/{flagged['phq']}/seen").status_code == 404
    boss = login("boss")
    assert boss.post(path).status_code == 200
    assert boss.get("/api/inbox").json()["self_reports"] == []


def test_cookie_requests_need_csrf(app: Any, flagged: dict[str, Any]) -> None:
    from tests.web.conftest import page_login

    with TestClient(app, raise_server_exceptions=False) as client:
        token = page_login(client, "clin")
        flag = _flag_id(client)
        path = f"/api/flags/{flag}/acknowledge"
        assert client.post(path, json={"note": "x"}).status_code == 403
        assert client.post(path, json={"note": "x"},
                           headers={"X-CSRF-Token": token}).status_code == 200


def test_pages(app: Any, flagged: dict[str, Any]) -> None:
    from tests.web.conftest import page_login

    with TestClient(app, raise_server_exceptions=False) as client:
        token = page_login(client, "clin")
        person = client.get(f"/persons/{flagged['both']}")
        assert person.status_code == 200
        assert "Inkorg (2)" in person.text and "Tankar på döden" in person.text
        assert "suicidal_thoughts" not in person.text
        assert f"/persons/{flagged['both']}/assessments/{flagged['phq']}" in person.text
        inbox = client.get("/inbox")
        assert inbox.status_code == 200 and "Nya självskattningar (1)" in inbox.text
        english = client.get("/inbox?lang=en").text
        assert "New self-reports (1)" in english and "Inbox (2)" in english
        assert "Thoughts of death or self-harm" in english
        flag = _flag_id(client)
        empty = client.post(f"/inbox/flags/{flag}/acknowledge",
                            data={"csrf_token": token, "note": "", "next": "/inbox"})
        assert empty.status_code == 422 and "Skriv en anteckning" in empty.text
        done = client.post(f"/inbox/flags/{flag}/acknowledge",
                           data={"csrf_token": token, "note": "Bedömt, låg risk",
                                 "next": f"/persons/{flagged['both']}"},
                           follow_redirects=False)
        assert done.status_code == 303
        assert "Inkorg (1)" in client.get("/inbox").text
        history = f"/persons/{flagged['both']}/assessments/{flagged['phq']}"
        page = client.get(history)
        assert page.status_code == 200 and "Rätta svaren" in page.text
        assert "Kvitterad" in page.text and "Bedömt, låg risk" in page.text
        form = {f"item_{i}": "1" for i in range(1, 10)} | {"csrf_token": token}
        missing = client.post(f"{history}/correct", data=form | {"reason": ""})
        assert missing.status_code == 422 and "Ange en orsak" in missing.text
        saved = client.post(f"{history}/correct", data=form | {"reason": "Fel svar"},
                            follow_redirects=False)
        assert saved.status_code == 303
        after = client.get(saved.headers["location"])
        assert "Version 1" in after.text and "Fel svar" in after.text
        assert "Gällande version (version 2)" in after.text
    with TestClient(app, raise_server_exceptions=False) as other:
        page_login(other, "ana")
        assert other.get("/inbox").status_code == 403
        assert other.get(history).status_code == 403


def test_consented_municipality_sees_flag_and_history_but_cannot_change(
        world: World, app: Any, login: Callable[[str], TestClient],
        flagged: dict[str, Any]) -> None:
    from tests.web.conftest import page_login
    from utfall.store.models_access import Consent

    with world.engine.begin() as conn:
        conn.execute(Consent.__table__.insert().values(
            person_key=flagged["both"], from_organisation_id=world.org["Region Syd"],
            to_organisation_id=world.org["Malmö stad"], categories=["assessments"],
            valid_from=dt.date(2025, 1, 1), form="written", recorded_by="clin",
            recorded_unit_id="reg-ber", recorded_at=dt.datetime(2025, 1, 2, tzinfo=dt.UTC)))
    soc = login("soc")
    flags = soc.get(f"/api/persons/{flagged['both']}/flags").json()["flags"]
    assert [f["code"] for f in flags] == ["suicidal_thoughts"]
    assert soc.get(f"/api/assessments/{flagged['phq']}/history").status_code == 200
    assert soc.post(f"/api/flags/{flags[0]['flag_id']}/acknowledge",
                    json={"note": "Läst"}).status_code == 404  # the region's flag
    assert soc.post(f"/api/assessments/{flagged['phq']}/void",
                    json={"reason": "x"}).status_code == 403
    with TestClient(app, raise_server_exceptions=False) as client:
        page_login(client, "soc")
        page = client.get(f"/persons/{flagged['both']}/assessments/{flagged['phq']}")
        assert page.status_code == 200 and "PHQ-9" in page.text
        assert "Rätta svaren" not in page.text and "Makulera" not in page.text
        person = client.get(f"/persons/{flagged['both']}")
        assert "Tankar på döden" in person.text and "/acknowledge" not in person.text
