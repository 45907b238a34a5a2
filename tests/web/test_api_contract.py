"""API contract: 401 without a session, 403 for roles without person-level access, 404
(the same as for an unknown person) outside the care relation, consent across
principals, analysts never see person-level data, revocation takes effect at once."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import api_login
from tests.web.factory import P_BOTH, World

PUBLIC = {("POST", "/api/session"), ("GET", "/api/instruments"),
          ("GET", "/api/instruments/{instrument_id}"), ("GET", "/api/self-report/{token}"),
          ("POST", "/api/self-report/{token}"), ("GET", "/api/own-view/{token}")}
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
UNITS_OF_REGION = {"reg-ber", "reg-laro"}
UNITS_OF_MALMO = {"soc-malmo"}


def _fill(path: str, world: World) -> str:
    return (path.replace("{person_key}", world.keys["region"]).replace("{consent_id}", "1")
            .replace("{token}", "x").replace("{instrument_id}", "audit"))


def test_every_personal_route_needs_a_session(anon: TestClient, world: World) -> None:
    assert anon.get("/api/openapi.json").status_code == 401  # the map only for users
    spec = anon.app.openapi()
    checked = 0
    for path, ops in spec["paths"].items():
        for method in ops:
            if (method.upper(), path) in PUBLIC:
                continue
            r = anon.request(method.upper(), _fill(path, world), json={})
            assert r.status_code == 401, (method, path, r.status_code)
            checked += 1
    assert checked >= 15
    bogus = {"Authorization": "Bearer not-a-token"}
    assert anon.get(f"/api/persons/{world.keys['region']}/timeline",
                    headers=bogus).status_code == 401


# who may read whose timeline without any consent (own unit's care relation only);
# 404 = the answer for an unknown person, 403 = the role has no person-level access
READ = {
    "clin": {"region": 200, "both": 200, "soc": 404},
    "clin2": {"region": 404, "both": 404, "soc": 404},  # another unit, no care relation
    "soc": {"region": 404, "both": 200, "soc": 200},
    "soc_lund": {"region": 404, "both": 404, "soc": 404},
    "boss": {"region": 200, "both": 200, "soc": 404},
    "ana": {"region": 403, "both": 403, "soc": 403},
    "root": {"region": 403, "both": 403, "soc": 403},
}


@pytest.mark.parametrize("user", sorted(READ))
def test_person_reads_by_role(login, world: World, user: str) -> None:
    client = login(user)
    for person, expected in READ[user].items():
        key = world.keys[person]
        for path in (f"/api/persons/{key}/timeline", f"/api/persons/{key}/consents",
                     f"/api/persons/{key}/access-log"):
            r = client.get(path)
            assert r.status_code == expected, (user, person, path, r.text)
            if expected in (403, 404):
                assert HEX64.findall(r.text) == [] and "entries" not in r.text


def test_timeline_shows_only_own_principal_without_consent(login, world: World) -> None:
    soc = login("soc")
    tl = soc.get(f"/api/persons/{world.keys['both']}/timeline").json()
    units = {e["unit_id"] for k in ("contacts", "interventions", "assessments", "enrolments",
                                    "medications") for e in tl[k]}
    assert units == UNITS_OF_MALMO
    assert tl["hidden"] >= 3  # the region's contact, intervention and AUDIT-C
    clin = login("clin")
    tl = clin.get(f"/api/persons/{world.keys['both']}/timeline").json()
    units = {e["unit_id"] for k in ("contacts", "interventions", "assessments") for e in tl[k]}
    assert units <= UNITS_OF_REGION and tl["hidden"] == 1  # Malmö's contact


def test_consent_shares_categories_and_revocation_is_immediate(login, world: World) -> None:
    clin, soc, soc_lund = login("clin"), login("soc"), login("soc_lund")
    key = world.keys["region"]
    assert soc.get(f"/api/persons/{key}/timeline").status_code == 404
    r = clin.post(f"/api/persons/{key}/consents", json={
        "to_organisation_id": world.org["Malmö stad"], "categories": ["assessments"],
        "valid_from": dt.date.today().isoformat()})
    assert r.status_code == 201, r.text
    consent_id = r.json()["consent_id"]
    # a consent alone does not open the person: Malmö's unit needs a care relation
    assert soc.get(f"/api/persons/{key}/timeline").status_code == 404
    r = clin.post(f"/api/persons/{key}/relations", json={"unit_id": "soc-malmo",
                                                          "basis": "sip"})
    assert r.status_code == 201, r.text
    tl = soc.get(f"/api/persons/{key}/timeline")
    assert tl.status_code == 200
    data = tl.json()
    assert [a["instrument"] for a in data["assessments"]] == ["audit-c"]
    assert data["contacts"] == [] and data["hidden"] == 1
    assert soc_lund.get(f"/api/persons/{key}/timeline").status_code == 404
    # a unit without a relation may neither record nor revoke (by sequential id)
    assert soc_lund.post(f"/api/persons/{key}/consents", json={
        "to_organisation_id": world.org["Malmö stad"], "categories": ["assessments"],
        "valid_from": dt.date.today().isoformat()}).status_code == 404
    assert soc_lund.post(f"/api/consents/{consent_id}/revoke").status_code == 404
    assert login("boss").post(f"/api/consents/{consent_id}/revoke").status_code == 403
    assert clin.post(f"/api/consents/{consent_id}/revoke").status_code == 200
    after = soc.get(f"/api/persons/{key}/timeline").json()
    assert after["assessments"] == [] and after["hidden"] == 2


def test_analyst_gets_aggregates_only(login, world: World) -> None:
    ana = login("ana")
    for path in ("/api/analytics/regional", "/api/analytics/indicators"):
        r = ana.get(path)
        assert r.status_code == 200, r.text
        assert not HEX64.findall(r.text)
        assert "person_key" not in r.text and P_BOTH not in r.text
    for path in ("/api/worklist", "/api/dashboard", "/api/audit/reviews"):
        assert ana.get(path).status_code == 403
    assert ana.post("/api/persons/search",
                    json={"identity_number": P_BOTH}).status_code == 403
    clin = login("clin")
    assert clin.get("/api/analytics/regional").status_code == 403


@pytest.mark.parametrize(("user", "status"), [("clin", 201), ("clin2", 404), ("soc", 404),
                                              ("boss", 403), ("ana", 403), ("root", 403)])
def test_record_assessment_by_role(login, world: World, user: str, status: int) -> None:
    client = login(user)
    r = client.post(f"/api/persons/{world.keys['region']}/assessments", json={
        "instrument": "audit-c", "answers": {"item_1": 1, "item_2": 0, "item_3": 0}})
    assert r.status_code == status, r.text


def test_recording_does_not_start_a_care_relation(login, world: World) -> None:
    clin2 = login("clin2")
    key = world.keys["region"]
    assert clin2.get(f"/api/persons/{key}/timeline").status_code == 404
    assert clin2.post(f"/api/persons/{key}/assessments", json={
        "instrument": "audit-c", "answers": {"item_1": 1, "item_2": 0, "item_3": 0}}
    ).status_code == 404
    assert clin2.get(f"/api/persons/{key}/timeline").status_code == 404
    assert len(login("clin").get(f"/api/persons/{key}/timeline").json()["assessments"]) == 1


def test_invalid_answers_give_field_errors(login, world: World) -> None:
    clin = login("clin")
    r = clin.post(f"/api/persons/{world.keys['region']}/assessments", json={
        "instrument": "audit-c", "answers": {"item_1": 9}})
    assert r.status_code == 422
    assert any(i["where"] == "item_1" for i in r.json()["issues"])
    r = clin.post(f"/api/persons/{world.keys['region']}/assessments", json={
        "instrument": "nope", "answers": {}})
    assert r.status_code == 422


def test_search_and_register(login, world: World) -> None:
    clin = login("clin")
    r = clin.post("/api/persons/search", json={"identity_number": "19771224-2390"})
    assert r.status_code == 200 and r.json()["person_key"] == world.keys["both"]
    r = clin.post("/api/persons/search", json={"identity_number": "19771224-2391"})
    assert r.status_code == 422 and r.json()["issues"][0]["where"] == "identity_number"
    assert "2391" not in r.text
    r = clin.post("/api/persons/search", json={"identity_number": "200002292381"})
    assert r.status_code == 404
    r = clin.post("/api/persons", json={"identity_number": "200002292381"})
    assert r.status_code == 201
    soc = login("soc")  # the region's person: the same answer as for an unknown one
    unknown = soc.post("/api/persons/search", json={"identity_number": "200112122387"})
    known = soc.post("/api/persons/search", json={"identity_number": "198506152381"})
    assert known.status_code == unknown.status_code == 404 and known.text == unknown.text


def test_unit_scope_of_worklist_and_review(login) -> None:
    for user in ("clin", "soc", "boss"):
        assert login(user).get("/api/worklist").status_code == 200
    boss = login("boss")
    today = dt.date.today().isoformat()
    assert boss.get(f"/api/audit/sample?date_from={today}&date_to={today}").status_code == 200
    assert login("clin").get(
        f"/api/audit/sample?date_from={today}&date_to={today}").status_code == 403


def test_cookie_requests_need_csrf(app, world: World) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        token = client.post("/api/session", json={"username": "clin",
                                                  "password": "correct horse battery"}
                            ).json()["token"]
        client.cookies.set("utfall_session", token)
        me = client.get("/api/me").json()
        body = {"instrument": "audit-c", "answers": {"item_1": 0}}
        path = f"/api/persons/{world.keys['region']}/assessments"
        assert client.post(path, json=body).status_code == 403
        assert client.post(path, json=body,
                           headers={"X-CSRF-Token": "forged"}).status_code == 403
        assert client.post(path, json=body,
                           headers={"X-CSRF-Token": me["csrf_token"]}).status_code == 201


def test_logout_ends_the_token(anon: TestClient) -> None:
    headers = api_login(anon, "clin")
    assert anon.get("/api/me", headers=headers).status_code == 200
    assert anon.delete("/api/session", headers=headers).status_code == 200
    assert anon.get("/api/me", headers=headers).status_code == 401
