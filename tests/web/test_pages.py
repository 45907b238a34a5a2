"""Server-rendered pages: login, CSRF, errors, forms with field messages, consent and
emergency flows, log review, self-report, language switch."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.web.conftest import page_login
from tests.web.factory import PASSWORD, World
from utfall.store.models import AuditEvent
from utfall.store.models_access import AuditReview


@pytest.fixture
def browser(app):
    """A cookie-based client logged in through the login form: ``(client, csrf)``."""
    clients = []

    def make(user: str) -> tuple[TestClient, str]:
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client, page_login(client, user)

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def test_login_page_and_cookie_flags(anon: TestClient) -> None:
    r = anon.get("/login")
    assert r.status_code == 200 and 'lang="sv"' in r.text and "Logga in" in r.text
    assert "Content-Security-Policy" in r.headers
    token = anon.cookies.get("utfall_login_csrf")
    r = anon.post("/login", data={"username": "clin", "password": PASSWORD,
                                  "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_login_errors_and_lockout(anon: TestClient) -> None:
    anon.get("/login")
    token = anon.cookies.get("utfall_login_csrf")
    r = anon.post("/login", data={"username": "clin", "password": "wrong", "csrf_token": token})
    assert r.status_code == 401 and "Fel användarnamn eller lösenord" in r.text
    for _ in range(5):
        r = anon.post("/login", data={"username": "clin", "password": "wrong",
                                      "csrf_token": anon.cookies.get("utfall_login_csrf")})
    # back-off, never a lock that names the account: same answer as an unknown user
    # (tests/access/test_accounts.py covers the back-off itself)
    assert r.status_code == 401 and "låst" not in r.text
    assert "Fel användarnamn eller lösenord" in r.text
    r = anon.post("/login", data={"username": "clin", "password": PASSWORD,
                                  "csrf_token": "forged"})
    assert r.status_code == 403


def test_pages_need_login_and_redirect(anon: TestClient) -> None:
    r = anon.get("/worklist", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = anon.get("/lang/en?next=https://evil.example/", follow_redirects=False)
    assert r.headers["location"] == "/"


def test_error_pages_without_traces(browser, world: World) -> None:
    client, _ = browser("clin")
    r = client.get("/nowhere")
    assert r.status_code == 404 and "Sidan finns inte" in r.text and "Traceback" not in r.text
    r = client.get("/persons/" + "z" * 64)
    assert r.status_code == 404
    r = client.get("/persons/" + "0" * 64)  # well-formed but unknown: 404, never 500
    assert r.status_code == 404 and "Traceback" not in r.text
    r = client.get("/admin/users")
    assert r.status_code == 403 and "Åtkomst nekad" in r.text


def test_server_error_page_hides_details(app, browser, monkeypatch) -> None:
    client, _ = browser("clin")
    import utfall.care.worklist

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(utfall.care.worklist, "worklist_page", boom)
    r = client.get("/worklist")
    assert r.status_code == 500 and "secret internals" not in r.text
    assert "Ett oväntat fel" in r.text


def test_forms_need_csrf(browser, world: World) -> None:
    client, csrf = browser("clin")
    r = client.post("/persons/search", data={"identity_number": "19771224-2390"})
    assert r.status_code == 403 and "säkerhetstoken" in r.text
    r = client.post("/persons/search", data={"identity_number": "19771224-2390",
                                             "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/persons/{world.keys['both']}"


def test_search_validation_messages(browser) -> None:
    client, csrf = browser("clin")
    r = client.post("/persons/search", data={"identity_number": "12345", "csrf_token": csrf})
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text
    assert "10 eller 12 siffror" in r.text
    r = client.post("/persons/search", data={"identity_number": "200002292381",
                                             "csrf_token": csrf})
    assert r.status_code == 200 and "Registrera person" in r.text
    r = client.post("/persons/register", data={"identity_number": "200002292381",
                                               "municipality_code": "12x",
                                               "csrf_token": csrf})
    assert r.status_code == 422 and "fyra siffror" in r.text
    r = client.post("/persons/register", data={"identity_number": "200002292381",
                                               "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303


def test_record_audit_with_field_errors_then_success(browser, world: World) -> None:
    client, csrf = browser("clin")
    key = world.keys["region"]
    form = client.get(f"/persons/{key}/assess?instrument=audit")
    assert form.status_code == 200
    assert form.text.count('type="radio"') > 30 and "Hur ofta dricker du alkohol?" in form.text
    bad = {"csrf_token": csrf, "on_date": "2026-13-45", "item_1": "7"}
    r = client.post(f"/persons/{key}/assess?instrument=audit", data=bad)
    assert r.status_code == 422 and "giltigt datum" in r.text
    bad["on_date"] = "2026-02-01"
    r = client.post(f"/persons/{key}/assess?instrument=audit", data=bad)
    assert r.status_code == 422 and 'id="e-item_1"' in r.text
    answers = {f"item_{i}": "1" for i in range(1, 9)} | {"item_9": "0", "item_10": "2"}
    r = client.post(f"/persons/{key}/assess?instrument=audit",
                    data={"csrf_token": csrf, "on_date": "2026-02-01", **answers},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"])
    assert "AUDIT" in page.text and "<strong>10</strong>" in page.text
    assert "<svg" in page.text


def _laro_only_person(world: World) -> str:
    """A person known only at reg-laro (same region as clin/boss, no relation at reg-ber)."""
    import datetime as dt

    from sqlalchemy import insert

    from tests.web.factory import SYSTEM
    from utfall.care import register_person
    from utfall.store.models import Contact

    with world.engine.begin() as conn:
        key = register_person(conn, SYSTEM, "196403273813")
        conn.execute(insert(Contact).values(contact_id="c-laro", person_key=key,
                                            unit_id="reg-laro", date=dt.date.today(),
                                            contact_type="visit", main_dx="F11.2",
                                            dx_group="F11"))
    return key


def test_refusal_is_uniform_and_emergency_only_in_health_care(browser, world: World) -> None:
    soc, soc_csrf = browser("soc")
    region, unknown = world.keys["region"], "ab" * 32
    known = soc.get(f"/persons/{region}")
    missing = soc.get(f"/persons/{unknown}")
    assert known.status_code == missing.status_code == 404
    assert known.text.replace(region, unknown) == missing.text  # no existence oracle
    assert "vårdrelation" in known.text and "Nödåtkomst" not in known.text
    assert "Skriv in personen" not in known.text
    r = soc.post(f"/persons/{region}/emergency",
                 data={"csrf_token": soc_csrf, "reason": "Akut förgiftning, behöver uppgifter"})
    assert r.status_code == 403  # social services have no emergency route into health care
    key = _laro_only_person(world)
    client, csrf = browser("clin")
    r = client.get(f"/persons/{key}")
    assert r.status_code == 404 and "Nödåtkomst" in r.text
    r = client.post(f"/persons/{key}/emergency", data={"csrf_token": csrf, "reason": "kort"})
    assert r.status_code == 422
    r = client.post(f"/persons/{key}/emergency",
                    data={"csrf_token": csrf, "reason": "Akut förgiftning, behöver uppgifter"})
    assert r.status_code == 200 and "Nödåtkomst (tidsbegränsad" in r.text
    assert client.get(f"/persons/{key}").status_code == 200  # the access runs 4 hours
    with world.engine.connect() as conn:
        events = conn.execute(select(AuditEvent).where(AuditEvent.person_key == key)).all()
    assert any(e.detail.get("denied") for e in events)
    reads = [e for e in events if e.actor == "clin" and e.detail.get("what") == "timeline"]
    assert len(reads) == 2 and all(e.detail.get("emergency") for e in reads)
    boss, boss_csrf = browser("boss")  # the manager of the unit acted from
    page = boss.get("/review")
    assert page.status_code == 200 and "nödåtkomster väntar på granskning" in page.text
    assert "Akut förgiftning" in page.text
    ids = re.findall(r'name="event_ids" value="(\d+)"', page.text)
    boss.post("/review", data={"csrf_token": boss_csrf, "event_ids": ids, "outcome": "ok",
                               "findings": "Nödåtkomsten var befogad.",
                               "date_from": "2020-01-01", "date_to": "2030-01-01"})
    assert "väntar på granskning" not in boss.get("/review").text
    other_boss, _ = browser("soc_boss")  # another unit's manager does not see it
    assert "Akut förgiftning" not in other_boss.get("/review").text


def test_consent_page_flow(browser, world: World) -> None:
    clin, csrf = browser("clin")
    key = world.keys["region"]
    page = clin.get(f"/persons/{key}/consents")
    assert page.status_code == 200 and "Malmö stad" in page.text
    r = clin.post(f"/persons/{key}/consents", data={"csrf_token": csrf,
                                                    "to_organisation_id": world.org["Malmö stad"],
                                                    "valid_from": "2026-01-01"})
    assert r.status_code == 422 and "minst en giltig kategori" in r.text
    r = clin.post(f"/persons/{key}/consents", data={
        "csrf_token": csrf, "to_organisation_id": world.org["Malmö stad"],
        "categories": ["assessments", "contacts"], "valid_from": "2026-01-01"},
        follow_redirects=False)
    assert r.status_code == 303
    soc, soc_csrf = browser("soc")
    assert soc.get(f"/persons/{key}").status_code == 404  # a consent is not a relation
    r = clin.post(f"/persons/{key}/relations", data={"csrf_token": csrf, "unit_id": "soc-malmo",
                                                     "basis": "sip", "note": "SIP-möte"},
                  follow_redirects=False)
    assert r.status_code == 303
    shared = soc.get(f"/persons/{key}")
    assert shared.status_code == 200 and "Beroendemottagning Malmö" in shared.text
    consent_id = re.search(r"/consents/(\d+)/revoke", clin.get(f"/persons/{key}/consents").text)
    assert consent_id
    r = soc.post(f"/persons/{key}/consents/{consent_id.group(1)}/revoke",
                 data={"csrf_token": soc_csrf}, follow_redirects=False)
    assert r.status_code == 303
    after = soc.get(f"/persons/{key}")
    assert after.status_code == 200 and 'class="kind-' not in after.text  # region's gone
    r = clin.post(f"/persons/{key}/sip", data={
        "csrf_token": csrf, "meeting_date": "2026-02-01",
        "responsible_organisation_id": world.org["Region Syd"],
        "intervention_org": [str(world.org["Region Syd"]), str(world.org["Malmö stad"])],
        "intervention_text": ["LARO", "Boendestöd"], "goals": "Eget boende"},
        follow_redirects=False)
    assert r.status_code == 303
    assert "Boendestöd" in clin.get(f"/persons/{key}/consents").text


def test_manager_review_is_documented(browser, world: World) -> None:
    clin, _ = browser("clin")
    for _ in range(3):
        clin.get(f"/persons/{world.keys['region']}")
    boss, csrf = browser("boss")
    page = boss.get("/review?every_k=2&random_n=1&seed=7")
    assert page.status_code == 200
    ids = re.findall(r'name="event_ids" value="(\d+)"', page.text)
    assert ids
    r = boss.post("/review", data={"csrf_token": csrf, "event_ids": ids, "findings":
                                   "Alla läsningar hade vårdrelation.", "outcome": "ok",
                                   "date_from": "2026-01-01", "date_to": "2030-01-01",
                                   "every_k": "2", "random_n": "1", "seed": "7"},
                  follow_redirects=False)
    assert r.status_code == 303
    with world.engine.connect() as conn:
        review = conn.execute(select(AuditReview)).one()
    assert review.reviewer == "boss" and review.outcome == "ok"
    assert sorted(review.event_ids) == sorted(int(i) for i in ids)
    assert "Alla läsningar" in boss.get("/review").text


def test_access_log_extract(browser, world: World) -> None:
    clin, _ = browser("clin")
    clin.get(f"/persons/{world.keys['both']}")
    page = clin.get(f"/persons/{world.keys['both']}/access-log")
    assert page.status_code == 200 and "clin" in page.text and "läst" in page.text


def test_language_switch(browser) -> None:
    client, _ = browser("clin")
    client.get("/lang/en?next=/worklist")
    r = client.get("/worklist")
    assert 'lang="en"' in r.text and "Worklist" in r.text


def test_pages_by_role(browser) -> None:
    expect = {"ana": {"/analytics": 200, "/worklist": 403, "/persons": 403},
              "root": {"/admin/users": 200, "/analytics": 403, "/dashboard": 403},
              "boss": {"/dashboard": 200, "/review": 200, "/analytics": 200},
              "soc": {"/worklist": 200, "/review": 403, "/analytics": 403}}
    for user, pages in expect.items():
        client, _ = browser(user)
        for path, status in pages.items():
            assert client.get(path).status_code == status, (user, path)


def test_admin_creates_user(browser) -> None:
    root, csrf = browser("root")
    r = root.post("/admin/users", data={"csrf_token": csrf, "username": "ny", "role":
                                        "clinician", "units": "reg-ber", "password": "kort"})
    assert r.status_code == 422 and "minst 12" in r.text
    r = root.post("/admin/users", data={"csrf_token": csrf, "username": "ny", "role":
                                        "clinician", "units": "reg-ber",
                                        "password": "tillräckligt långt"},
                  follow_redirects=False)
    assert r.status_code == 303


def test_enrol_page_and_worklist(browser, world: World) -> None:
    import datetime as dt

    clin, csrf = browser("clin")
    key = world.keys["region"]
    page = clin.get(f"/persons/{key}/enrol")
    assert page.status_code == 200 and "vip-beroende" in page.text
    r = clin.post(f"/persons/{key}/enrol", data={"csrf_token": csrf, "programme": "nope",
                                                 "start_date": "2026-01-01"})
    assert r.status_code == 422 and 'id="e-programme"' in r.text
    r = clin.post(f"/persons/{key}/enrol", data={
        "csrf_token": csrf, "programme": "vip-beroende",
        "start_date": dt.date.today().isoformat(), "municipal_unit_id": "soc-malmo"},
        follow_redirects=False)
    assert r.status_code == 303, r.text
    work = clin.get("/worklist")
    assert "Inskrivning" in work.text and "19850615-****" in work.text
    person = clin.get(f"/persons/{key}")
    assert "Skapa länk" in person.text  # the self-report form lists the enrolment's stages
    r = clin.post(f"/persons/{key}/self-report", data={
        "csrf_token": csrf, "enrolment_stage": "x|intake", "locale": "sv"})
    assert r.status_code == 422
