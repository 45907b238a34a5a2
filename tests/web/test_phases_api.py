"""The overview, phase and discharge API: every role, 401/403/404, the 409 contract,
422 issues, audit, and the post-discharge stage on the municipality's work list."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.web.conftest import page_login
from utfall.store.models import AuditEvent

FACTS = {"opioid_dependence_months": 36, "dependence_assessed_by_physician": True,
         "responsible_physician_specialist": True, "medication": "buprenorphine",
         "treatment_plan": True, "supervised_intake": True}


def day(days_ago: int) -> str:
    """A date relative to today (Stockholm): schedules depend on today."""
    from utfall.followup import local_today

    return (local_today() - dt.timedelta(days=days_ago)).isoformat()


def _enrol(client: TestClient, key: str, **extra: Any) -> str:
    r = client.post(f"/api/persons/{key}/enrolments", json={
        "programme": "laro", "start_date": day(200), "facts": FACTS, **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["enrolment_id"])


def _items(r: Any) -> list[dict[str, Any]]:
    data = r.json()
    return data["items"] if isinstance(data, dict) else data


def test_overview_by_role(world, login, anon) -> None:
    key = world.keys["region"]
    clin = login("clin")
    _enrol(clin, key)
    assert anon.get(f"/api/persons/{key}/overview").status_code == 401
    for user in ("ana", "root"):
        assert login(user).get(f"/api/persons/{key}/overview").status_code == 403, user
    for user in ("clin2", "soc", "soc_lund"):  # no care relation: other unit / principal
        assert login(user).get(f"/api/persons/{key}/overview").status_code == 404, user
    assert login("boss").get(f"/api/persons/{key}/overview").status_code == 200
    r = clin.get(f"/api/persons/{key}/overview")
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["identity"] == "19850615-2381" and view["masked"] == "19850615-****"
    laro = view["programmes"][0]
    assert laro["phase"] == "assessment"
    assert laro["phase_name"]["sv"] == "Utredning och bedömning"
    assert [a["phase"] for a in laro["allowed"]] == ["treatment-start"]
    assert laro["next"]["stage"] == "review-1" and laro["may_change"] is True
    assert view["latest"][0]["instrument"] == "audit-c" and view["latest"][0]["band_label"]
    by_principal = {r["principal_type"]: r for r in view["responsible"]}
    assert by_principal["region"]["unit_name"] == "Beroendemottagning Malmö"
    assert by_principal["municipality"]["unit_id"] is None  # no municipal unit named yet
    assert view["consent"]["active"] == [] and view["flags"] == []
    with world.engine.connect() as conn:  # the read is audited; the number never logged
        rows = conn.execute(select(AuditEvent.__table__).where(
            AuditEvent.person_key == key)).all()
    assert any((r.detail or {}).get("what") == "timeline" and r.actor == "clin" for r in rows)
    assert "2381" not in str([r.detail for r in rows])


def test_phase_and_discharge_contract(world, login, anon) -> None:
    key = world.keys["region"]
    clin = login("clin")
    enrolment = _enrol(clin, key)
    url = f"/api/enrolments/{enrolment}"
    body = {"phase": "treatment-start", "date": day(190), "facts": {}}
    assert anon.post(f"{url}/phase", json=body).status_code == 401
    assert anon.post(f"{url}/discharge", json={"end_reason": "completed"}).status_code == 401
    for user in ("boss", "ana", "root"):  # roles that do not record
        assert login(user).post(f"{url}/phase", json=body).status_code == 403, user
        assert login(user).post(f"{url}/discharge",
                                json={"end_reason": "completed"}).status_code == 403, user
    for user in ("clin2", "soc", "soc_lund"):  # other unit, other principal: no relation
        assert login(user).post(f"{url}/phase", json=body).status_code == 404, user
    assert clin.post("/api/enrolments/nope/phase", json=body).status_code == 404
    # forbidden transition: 409 with the reason and the allowed set
    r = clin.post(f"{url}/phase", json={"phase": "rehabilitation", "date": day(190)})
    assert r.status_code == 409, r.text
    assert r.json()["allowed"] == ["treatment-start", "ending"]
    assert "Långsiktig rehabilitering" in r.json()["detail"]
    # invalid input: 422 with issues naming the field
    r = clin.post(f"{url}/phase", json={"phase": "treatment-start", "date": "not a date"})
    assert r.status_code == 422 and r.json()["issues"][0]["where"] == "date"
    r = clin.post(f"{url}/phase", json={"phase": "treatment-start", "date": day(190),
                                        "facts": {"opioid_dependence_months": 3}})
    assert r.status_code == 422
    assert "laro.opioid_dependence_under_1_year" in {i["code"] for i in r.json()["issues"]}
    # allowed: 200 with the enrolment
    r = clin.post(f"{url}/phase", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["phase"] == "treatment-start"
    assert r.json()["phase_name"]["sv"] == "Behandlingsstart"
    r = clin.post(f"{url}/phase", json={"phase": "stabilisation", "date": day(150),
                                        "facts": {"care_plan_goals": "Stabil dos"}})
    assert r.status_code == 200, r.text
    r = clin.post(f"{url}/discharge", json={"end_reason": "completed",
                                            "municipal_unit_id": "no-such-unit"})
    assert r.status_code == 422 and r.json()["issues"][0]["where"] == "municipal_unit"
    # discharge: an involuntary one needs medical grounds
    r = clin.post(f"{url}/discharge", json={"date": day(5),
                                            "end_reason": "involuntary_discharge"})
    assert r.status_code == 422 and "medical_ground" in {i["where"] for i in r.json()["issues"]}
    r = clin.post(f"{url}/discharge", json={
        "date": day(5), "end_reason": "involuntary_discharge",
        "facts": {"medical_ground": "Upprepade överdoser, påtaglig medicinsk risk"},
        "municipal_unit_id": "soc-malmo"})
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["end_date"] == day(5) and ended["phase"] == "ending"
    post = [s for s in ended["pending_stages"] if s["stage"] == "post-discharge-6"]
    assert post and post[0]["unit_id"] == "soc-malmo"
    r = clin.post(f"{url}/phase", json=body)
    assert r.status_code == 409 and r.json()["allowed"] == []
    # the municipality takes over the follow-up: on its work list, but it cannot
    # change the region's enrolment
    soc = login("soc")
    items = _items(soc.get("/api/worklist"))
    assert any(i["stage_id"] == "post-discharge-6" and i["enrolment_id"] == enrolment
               for i in items)
    assert soc.post(f"{url}/discharge", json={"end_reason": "completed"}).status_code == 403
    with world.engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.__table__).where(
            AuditEvent.person_key == key, AuditEvent.action == "change")).all()
    whats = [(r.detail or {}).get("what") for r in rows]
    assert whats.count("phase") == 2 and "end_enrolment" in whats and "stage_owner" in whats


def test_cookie_session_needs_csrf(world, app) -> None:
    key = world.keys["region"]
    with TestClient(app, raise_server_exceptions=False) as client:
        csrf = page_login(client, "clin")
        r = client.post(f"/api/persons/{key}/enrolments", headers={"X-CSRF-Token": csrf},
                        json={"programme": "laro", "start_date": day(200), "facts": FACTS})
        enrolment = r.json()["enrolment_id"]
        body = {"phase": "treatment-start", "date": day(190)}
        assert client.post(f"/api/enrolments/{enrolment}/phase", json=body).status_code == 403
        r = client.post(f"/api/enrolments/{enrolment}/phase", json=body,
                        headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text


def test_phase_pages_by_role(world, login, app, anon) -> None:
    key = world.keys["region"]
    enrolment = _enrol(login("clin"), key)
    pages = (f"/enrolments/{enrolment}/phase?to=treatment-start",
             f"/enrolments/{enrolment}/discharge")
    for path in pages:
        r = anon.get(path, follow_redirects=False)
        assert r.status_code == 303 and "/login" in r.headers["location"]
        for user in ("boss", "ana", "root"):
            assert login(user).get(path).status_code == 403, (user, path)
        for user in ("clin2", "soc", "soc_lund"):
            assert login(user).get(path).status_code == 404, (user, path)
        assert login("clin").get(path).status_code == 200, path
    assert login("clin").get("/enrolments/nope/phase?to=ending").status_code == 404
    r = login("clin").get(f"/enrolments/{enrolment}/phase?to=ending", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/discharge")
    r = login("clin").get(f"/enrolments/{enrolment}/phase?to=rehabilitation")
    assert r.status_code == 409 and "Behandlingsstart" in r.text
    with TestClient(app, raise_server_exceptions=False) as client:
        csrf = page_login(client, "clin")
        form = {"to": "treatment-start", "date": day(190)}
        r = client.post(f"/enrolments/{enrolment}/phase", data=form)
        assert r.status_code == 403  # no CSRF token
        r = client.post(f"/enrolments/{enrolment}/phase", data={
            **form, "csrf_token": csrf, "fact_opioid_dependence_months": "x"})
        assert r.status_code == 422 and 'id="e-opioid_dependence_months"' in r.text
        r = client.post(f"/enrolments/{enrolment}/phase", data={**form, "csrf_token": csrf},
                        follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("saved=phase#overview")
        r = client.post(f"/enrolments/{enrolment}/discharge", data={
            "csrf_token": csrf, "date": day(1), "end_reason": ""})
        assert r.status_code == 422 and 'id="e-end_reason"' in r.text
        page = client.get(f"/persons/{key}")
        assert "Behandlingsstart" in page.text and "19850615-2381" in page.text
        english = client.get(f"/persons/{key}?lang=en")
        assert "Overview" in english.text and "Treatment start" in english.text
        assert "Change phase to Stabilisation" in english.text
