"""Authorisation suite for the dynamic cases of issue 13, for every role:

* a self-granted care relation is refused (recording, enrolling, registering a person
  known elsewhere, SIP, self-report links, consents, revocation by sequential id);
* emergency access is bounded by principal and by time (injectable clock);
* uniform answers (search, pages, API; access log never names another principal's
  units);
* person-level reads are logged (audit sample, consents/SIP, access log, relations),
  and a 422 re-render never shows what the caller may not read.

Attempts and failures per category go to ``test-artifacts/authz-dynamic.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.access.authz_support import UNKNOWN, add_persons, cookie_client, luhn_number
from tests.web.factory import P_REGION, World
from utfall.access import clock
from utfall.store.models import Assessment, AuditEvent
from utfall.store.models_relations import CareRelation

FIGURES: Counter[str] = Counter()
FAILED: Counter[str] = Counter()
USERS = {"clinician": "clin", "social_worker": "soc", "unit_manager": "boss",
         "analyst": "ana", "admin": "root"}


def attempt(category: str, ok: bool, what: str = "") -> None:
    """Count one attack attempt; a failed defence fails the test."""
    FIGURES[category] += 1
    if not ok:
        FAILED[category] += 1
    assert ok, f"{category}: {what}"


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    out = Path(__file__).resolve().parents[2] / "test-artifacts" / "authz-dynamic.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"attempts": dict(FIGURES), "failures": dict(FAILED)},
                              indent=2), encoding="utf-8")


@pytest.fixture
def clients(app) -> Iterator[dict[str, object]]:
    made = {role: cookie_client(app, user) for role, user in USERS.items()}
    made |= {"clin2": cookie_client(app, "clin2"), "soc_lund": cookie_client(app, "soc_lund"),
             "soc_boss": cookie_client(app, "soc_boss")}
    yield made
    for c in made.values():
        c.__exit__(None, None, None)


def _events(world: World, key: str) -> list[AuditEvent]:
    with world.engine.connect() as conn:
        return list(conn.execute(select(AuditEvent).where(AuditEvent.person_key == key)
                                 .order_by(AuditEvent.id)))


AUDIT_C = {"instrument": "audit-c", "answers": {"item_1": 1, "item_2": 0, "item_3": 0}}


def test_self_granted_relation_refused_for_every_role(clients, world: World) -> None:
    key = world.keys["region"]
    today = dt.date.today().isoformat()
    with world.engine.connect() as conn:
        before = conn.execute(select(Assessment.row_key).where(Assessment.person_key == key)
                              ).all()
    for who in ("clin2", "social_worker", "soc_lund", "unit_manager", "analyst", "admin"):
        c = clients[who]
        expected = {"unit_manager": 403, "analyst": 403, "admin": 403}.get(who, 404)
        r = c.post(f"/api/persons/{key}/assessments", json=AUDIT_C)
        attempt("self-granted relation", r.status_code == expected, f"{who} assess {r.status_code}")
        r = c.post(f"/api/persons/{key}/enrolments",
                   json={"programme": "vip-beroende", "start_date": today})
        attempt("self-granted relation", r.status_code == expected, f"{who} enrol {r.status_code}")
        r = c.post(f"/persons/{key}/sip", data={
            "meeting_date": today, "responsible_organisation_id": "1",
            "intervention_org": "1", "intervention_text": "x"})
        attempt("self-granted relation", r.status_code == expected, f"{who} sip {r.status_code}")
        r = c.get(f"/api/persons/{key}/timeline")  # still nothing to read afterwards
        readable = 200 if who == "unit_manager" else expected  # reg-ber's manager reads
        attempt("self-granted relation", r.status_code == readable, f"{who} read {r.status_code}")
    # registering a person known elsewhere does not open them; it is logged for review
    for who in ("clin2", "social_worker", "soc_lund"):
        r = clients[who].post("/api/persons", json={"identity_number": P_REGION})
        attempt("self-granted relation", r.status_code == 403
                and r.json()["code"] == "relation_needed", f"{who} register {r.text}")
    denied = [e for e in _events(world, key) if e.detail.get("denied")]
    attempt("self-granted relation", len(denied) >= 3, "refused registrations logged")
    with world.engine.connect() as conn:
        after = conn.execute(select(Assessment.row_key).where(Assessment.person_key == key)).all()
        units = set(conn.execute(select(CareRelation.unit_id)
                                 .where(CareRelation.person_key == key)).scalars())
    attempt("self-granted relation", after == before and units == set(), "nothing stored")
    # a new person registered at one's own unit starts the relation there
    fresh = luhn_number("19880808", 555)
    r = clients["clin2"].post("/api/persons", json={"identity_number": fresh})
    attempt("self-granted relation", r.status_code == 201, r.text)
    new_key = r.json()["person_key"]
    attempt("self-granted relation",
            clients["clin2"].get(f"/api/persons/{new_key}/timeline").status_code == 200)
    attempt("self-granted relation",
            clients["clinician"].get(f"/api/persons/{new_key}/timeline").status_code == 404)


def test_self_report_link_and_consents_need_the_relation(clients, world: World) -> None:
    key = world.keys["region"]
    clin = clients["clinician"]
    r = clin.post(f"/api/persons/{key}/enrolments",
                  json={"programme": "vip-beroende", "start_date": dt.date.today().isoformat()})
    enrolment = r.json()["enrolment_id"]
    body = {"enrolment_id": enrolment, "stage": "intake"}
    for who in ("soc_lund", "social_worker", "clin2"):
        r = clients[who].post(f"/api/persons/{key}/self-report-links", json=body)
        attempt("self-report link", r.status_code == 404, f"{who} {r.status_code}")
    # even with a relation, another organisation may not issue links on the region's enrolment
    clin.post(f"/api/persons/{key}/relations", json={"unit_id": "soc-malmo", "basis": "sip"})
    r = clients["social_worker"].post(f"/api/persons/{key}/self-report-links", json=body)
    attempt("self-report link", r.status_code == 403, r.text)
    attempt("self-report link",
            clin.post(f"/api/persons/{key}/self-report-links", json=body).status_code == 201)
    # consents: managers never record; revocation needs the relation to that person
    consent = {"to_organisation_id": world.org["Lunds kommun"], "categories": ["assessments"],
               "valid_from": dt.date.today().isoformat()}
    r = clients["unit_manager"].post(f"/api/persons/{key}/consents", json=consent)
    attempt("consents", r.status_code == 403, r.text)
    r = clients["unit_manager"].post(f"/persons/{key}/consents",
                                     data=consent | {"categories": "assessments"})
    attempt("consents", r.status_code == 403, str(r.status_code))
    consent_id = clin.post(f"/api/persons/{key}/consents", json=consent).json()["consent_id"]
    for who in ("soc_lund", "clin2", "unit_manager"):
        r = clients[who].post(f"/api/consents/{consent_id}/revoke")
        attempt("consents", r.status_code in (403, 404), f"{who} revoke {r.status_code}")
    r = clients["soc_lund"].post(f"/api/consents/{consent_id}/revoke")
    unknown = clients["soc_lund"].post("/api/consents/999999/revoke")
    attempt("uniform answers", (r.status_code, r.text) == (unknown.status_code, unknown.text))
    # the page route names the person: another person's consent id is refused
    other = world.keys["both"]
    r = clin.post(f"/persons/{other}/consents/{consent_id}/revoke", follow_redirects=False)
    attempt("consents", r.status_code == 404, str(r.status_code))
    attempt("consents", clin.post(f"/api/consents/{consent_id}/revoke").status_code == 200)


def test_emergency_bounded_by_principal_and_time(clients, world: World) -> None:
    extra = add_persons(world)
    laro, malmo2 = extra["laro"], extra["malmo2"]
    clin = clients["clinician"]
    reason = {"reason": "Akut läge, medvetslös, behöver läkemedel"}
    start = dt.datetime.now(dt.UTC)
    with clock.use_clock(lambda: start):
        # never into another principal (social services), the same answer as for nobody
        r = clin.post(f"/api/persons/{malmo2}/emergency-access", json=reason)
        nobody = clin.post(f"/api/persons/{UNKNOWN}/emergency-access", json=reason)
        attempt("emergency bounds", r.status_code == 404
                and r.text == nobody.text, r.text)
        # social services have no route; managers neither
        for who in ("social_worker", "soc_lund", "unit_manager", "analyst", "admin"):
            r = clients[who].post(f"/api/persons/{laro}/emergency-access", json=reason)
            attempt("emergency bounds", r.status_code == 403, f"{who} {r.status_code}")
        r = clients["social_worker"].post(f"/persons/{world.keys['region']}/emergency",
                                          data=reason)
        attempt("emergency bounds", r.status_code == 403, str(r.status_code))
        page = clients["social_worker"].get(f"/persons/{world.keys['region']}")
        attempt("emergency bounds", "Nödåtkomst" not in page.text, "not offered to social work")
        r = clin.post(f"/api/persons/{laro}/emergency-access", json={"reason": "kort"})
        attempt("emergency bounds", r.status_code == 422, "reason required")
        r = clin.post(f"/api/persons/{laro}/emergency-access", json=reason)
        attempt("emergency bounds", r.status_code == 201, r.text)
        expires = dt.datetime.fromisoformat(r.json()["expires_at"])
        attempt("emergency bounds", abs((expires - start).total_seconds() - 4 * 3600) < 2)
        tl = clin.get(f"/api/persons/{laro}/timeline")
        attempt("emergency bounds", tl.status_code == 200 and tl.json()["emergency"])
    with clock.use_clock(lambda: start + dt.timedelta(hours=3, minutes=59)):
        attempt("emergency bounds", clin.get(f"/api/persons/{laro}/timeline").status_code == 200)
    with clock.use_clock(lambda: start + dt.timedelta(hours=4, seconds=1)):
        attempt("emergency bounds", clin.get(f"/api/persons/{laro}/timeline").status_code == 404,
                "expired after 4 hours")
    reads = [e for e in _events(world, laro) if e.actor == "clin" and e.action == "read"
             and not e.detail.get("denied")]
    attempt("emergency bounds", len(reads) >= 3 and all(e.detail.get("emergency") for e in reads),
            "every read flagged")
    listed = clients["unit_manager"].get("/api/emergency-accesses").json()
    attempt("emergency bounds", [e["person_key"] for e in listed] == [laro], str(listed))
    attempt("emergency bounds", clients["soc_boss"].get("/api/emergency-accesses").json() == [])
    review = clients["unit_manager"].get("/review")
    attempt("emergency bounds", "medvetslös" in review.text, "on the manager's review page")


def test_emergency_shows_other_principal_only_with_consent(clients, world: World) -> None:
    from sqlalchemy import insert

    from utfall.store.models import Contact

    laro = add_persons(world)["laro"]
    with world.engine.begin() as conn:  # the person also has a Malmö contact
        conn.execute(insert(Contact).values(contact_id="c-malmo-x", person_key=laro,
                                            unit_id="soc-malmo", date=dt.date.today(),
                                            contact_type="visit", main_dx="F19.2",
                                            dx_group="F19"))
    clin = clients["clinician"]
    clin.post(f"/api/persons/{laro}/emergency-access",
              json={"reason": "Akut läge, medvetslös, behöver läkemedel"})
    units = {c["unit_id"] for c in clin.get(f"/api/persons/{laro}/timeline").json()["contacts"]}
    attempt("emergency bounds", units == {"reg-laro"}, f"cross-principal data shown: {units}")


def test_uniform_answers(clients, world: World) -> None:
    soc = clients["social_worker"]
    unknown_number = luhn_number("19010101", 999)
    for path in ("/api/persons/search",):
        a = soc.post(path, json={"identity_number": P_REGION})
        b = soc.post(path, json={"identity_number": unknown_number})
        attempt("uniform answers", (a.status_code, a.text) == (b.status_code, b.text), a.text)
    a = soc.post("/persons/search", data={"identity_number": P_REGION})
    b = soc.post("/persons/search", data={"identity_number": unknown_number})
    attempt("uniform answers", a.status_code == b.status_code == 200
            and a.text.replace(P_REGION, "N") == b.text.replace(unknown_number, "N"))
    for who in ("clinician", "social_worker", "unit_manager"):
        for suffix in ("access-log", "consents", "timeline", "relations"):
            r = clients[who].get(f"/api/persons/{UNKNOWN}/{suffix}")
            attempt("uniform answers", r.status_code == 404, f"{who} {suffix} {r.status_code}")
        r = clients[who].get(f"/persons/{'0' * 64}")
        attempt("uniform answers", r.status_code == 404, f"{who} page {r.status_code}")
    # the access log handed out by one principal never names the other's units
    both = world.keys["both"]
    clients["clinician"].get(f"/api/persons/{both}/timeline")
    soc_log = soc.get(f"/api/persons/{both}/access-log").json()
    attempt("uniform answers", all(r["unit_id"] in (None, "soc-malmo") for r in soc_log),
            str({r["unit_id"] for r in soc_log}))
    clin_log = clients["clinician"].get(f"/api/persons/{both}/access-log").json()
    attempt("uniform answers", all(r["unit_id"] in (None, "reg-ber", "reg-laro")
                                   for r in clin_log))
    fresh = luhn_number("19770707", 321)
    key = clients["clinician"].post("/api/persons", json={"identity_number": fresh}
                                    ).json()["person_key"]
    clients["clinician"].post(f"/api/persons/{key}/relations",
                              json={"unit_id": "soc-malmo", "basis": "referral"})
    page = soc.get(f"/persons/{key}/access-log")
    attempt("uniform answers", page.status_code == 200
            and "Beroendemottagning" not in page.text, "registering unit not revealed")


def test_reads_are_logged(clients, world: World) -> None:
    key = world.keys["region"]
    clin, boss = clients["clinician"], clients["unit_manager"]
    checks = [(clin, f"/persons/{key}/consents", "consents"),
              (clin, f"/api/persons/{key}/consents", "consents"),
              (boss, f"/persons/{key}/consents", "consents"),
              (clin, f"/api/persons/{key}/access-log", "access_log_extract"),
              (clin, f"/persons/{key}/access-log", "access_log_extract"),
              (clin, f"/api/persons/{key}/relations", "care_relations"),
              (clin, f"/persons/{key}", "timeline")]
    for client, path, what in checks:
        n = sum(e.detail.get("what") == what for e in _events(world, key))
        attempt("reads logged", client.get(path).status_code == 200, path)
        m = sum(e.detail.get("what") == what for e in _events(world, key))
        attempt("reads logged", m == n + 1, f"{path}: {n} -> {m}")
    today = dt.date.today().isoformat()
    boss.get(f"/api/audit/sample?date_from={today}&date_to={today}&every_k=1")
    sampled = [e for e in _events(world, key) if e.detail.get("what") == "audit_sample"]
    attempt("reads logged", sampled and sampled[-1].actor == "boss", "audit sample read logged")
    boss.get("/review?every_k=1")
    again = [e for e in _events(world, key) if e.detail.get("what") == "audit_sample"]
    attempt("reads logged", len(again) > len(sampled), "review page read logged")


def test_error_rerender_never_shows_unreadable_data(clients, world: World) -> None:
    key = world.keys["region"]
    clin = clients["clinician"]
    r = clin.post(f"/persons/{key}/sip", data={
        "meeting_date": dt.date.today().isoformat(),
        "responsible_organisation_id": str(world.org["Region Syd"]),
        "intervention_org": str(world.org["Region Syd"]), "intervention_text": "Hemligt LARO",
        "goals": "Hemligt mål"}, follow_redirects=False)
    attempt("422 re-render", r.status_code == 303)
    for who in ("soc_lund", "social_worker", "clin2", "unit_manager", "analyst", "admin"):
        c = clients[who]
        r = c.post(f"/persons/{key}/sip", data={"meeting_date": "not-a-date"})
        attempt("422 re-render", r.status_code in (403, 404) and "Hemligt" not in r.text,
                f"{who} sip {r.status_code}")
        r = c.post(f"/persons/{key}/consents", data={"valid_from": "x"})
        attempt("422 re-render", r.status_code in (403, 404) and "Hemligt" not in r.text,
                f"{who} consents {r.status_code}")
        r = c.post(f"/persons/{key}/relations", data={"unit_id": "nope", "basis": "x"})
        attempt("422 re-render", r.status_code in (403, 404) and "Hemligt" not in r.text,
                f"{who} relations {r.status_code}")
    n = sum(e.detail.get("what") == "consents" for e in _events(world, key))
    r = clin.post(f"/persons/{key}/sip", data={"meeting_date": "not-a-date"})
    attempt("422 re-render", r.status_code == 422 and "Hemligt" in r.text)
    m = sum(e.detail.get("what") == "consents" for e in _events(world, key))
    attempt("422 re-render", m == n + 1, "the re-render is a logged read")
