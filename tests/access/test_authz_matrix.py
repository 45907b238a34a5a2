"""Role × route × person matrix over every route of the pages and ``/api``.

Routes are enumerated from the FastAPI app, so a new route fails this test until it
is classified below (public, person-level, or role-level with the roles of
docs/security.md). For every person-level route and every role the suite asks for a
person of the caller's own unit, of another unit of the same principal, of another
principal, and an unknown key, and checks:

* anonymous: 401 (API) or a redirect to the login page (pages);
* analyst and admin: 403 for every person, never any person data;
* care roles: the answer for a person outside the care relation is byte-for-byte the
  answer for an unknown key (no existence oracle), a 404 (or a 403 that does not
  depend on the person, e.g. a manager recording), and shows no data of the person;
  emergency access (clinicians, same principal) is the one route that may differ;
* own unit: never 404 and never a server error; managers never record.

Figures (attempts and failures per category) are written to
``test-artifacts/authz-matrix.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest

from tests.access.authz_support import UNKNOWN, add_persons, cookie_client, luhn_number, walk_routes
from tests.web.factory import World

CARE = {"clinician", "social_worker", "unit_manager"}
RECORDERS = {"clinician", "social_worker"}
USERS = {"clinician": "clin", "social_worker": "soc", "unit_manager": "boss",
         "analyst": "ana", "admin": "root", "anonymous": None}

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/api/session"),
          ("GET", "/api/instruments"), ("GET", "/api/instruments/{instrument_id}"),
          ("GET", "/api/self-report/{token}"), ("POST", "/api/self-report/{token}"),
          ("GET", "/login"), ("POST", "/login"), ("GET", "/login/oidc/{name}"),
          ("GET", "/login/oidc/{name}/callback"), ("GET", "/"), ("GET", "/lang/{code}"),
          ("GET", "/r/{token}"), ("POST", "/r/{token}"), ("GET", "/api/redoc"),
          ("GET", "/min/{token}"), ("GET", "/api/own-view/{token}")}
ANY_USER = {"any"}
# role-level routes: the roles docs/security.md allows ("any": every logged-in user)
ROLE_ROUTES: dict[tuple[str, str], set[str]] = {
    ("DELETE", "/api/session"): ANY_USER, ("GET", "/api/me"): ANY_USER,
    ("GET", "/api/openapi.json"): ANY_USER, ("GET", "/api/docs"): ANY_USER,
    ("POST", "/logout"): ANY_USER, ("GET", "/account/password"): ANY_USER,
    ("POST", "/account/password"): ANY_USER,
    ("POST", "/unit"): {"clinician", "social_worker", "unit_manager", "analyst"},
    ("POST", "/api/persons/search"): CARE, ("GET", "/persons"): CARE,
    ("POST", "/persons/search"): CARE,
    ("POST", "/api/persons"): RECORDERS, ("POST", "/persons/register"): RECORDERS,
    ("POST", "/api/consents/{consent_id}/revoke"): RECORDERS,
    ("POST", "/api/relations/referrals"): {"unit_manager"},
    ("GET", "/relations"): {"unit_manager"}, ("POST", "/relations/referral"): {"unit_manager"},
    ("GET", "/api/emergency-accesses"): {"unit_manager"},
    ("GET", "/api/audit/sample"): {"unit_manager"}, ("GET", "/api/audit/reviews"): {"unit_manager"},
    ("POST", "/api/audit/reviews"): {"unit_manager"},
    ("GET", "/review"): {"unit_manager"}, ("POST", "/review"): {"unit_manager"},
    ("GET", "/api/worklist"): CARE, ("GET", "/api/dashboard"): CARE,
    ("GET", "/api/worklist/export"): CARE, ("POST", "/api/worklist/assignments"): RECORDERS,
    ("POST", "/worklist/search"): CARE, ("GET", "/worklist/export.csv"): CARE,
    ("POST", "/worklist/assign"): RECORDERS,
    ("GET", "/worklist"): CARE, ("GET", "/dashboard"): CARE, ("GET", "/register/gaps"): CARE,
    ("GET", "/api/analytics/regional"): {"analyst", "unit_manager"},
    ("GET", "/api/analytics/indicators"): {"analyst", "unit_manager"},
    ("GET", "/analytics"): {"analyst", "unit_manager"},
    ("GET", "/analytics/funnel"): {"analyst", "unit_manager"},
    ("GET", "/analytics/download.{fmt}"): {"analyst", "unit_manager"},
    ("GET", "/api/analytics/explore"): {"analyst", "unit_manager"},
    ("GET", "/api/analytics/funnel"): {"analyst", "unit_manager"},
    ("GET", "/admin/runs"): {"admin"}, ("POST", "/admin/runs"): {"admin"},
    ("GET", "/admin/users"): {"admin"}, ("POST", "/admin/users"): {"admin"},
    ("GET", "/admin/users/{user_id}"): {"admin"}, ("POST", "/admin/users/{user_id}"): {"admin"},
    ("POST", "/api/goals/{goal_id}/reviews"): RECORDERS,
    ("GET", "/analytics/quality"): {"analyst", "unit_manager"},
    # routes keyed by an assessment, enrolment or flag (their person checks are in
    # tests/web/test_flags_api.py and test_phases_api.py): here the roles
    ("GET", "/api/assessments/{assessment_id}/history"): CARE,
    ("POST", "/api/assessments/{assessment_id}/correct"): RECORDERS,
    ("POST", "/api/assessments/{assessment_id}/void"): RECORDERS,
    ("POST", "/api/enrolments/{enrolment_id}/phase"): RECORDERS,
    ("POST", "/api/enrolments/{enrolment_id}/discharge"): RECORDERS,
    ("GET", "/enrolments/{enrolment_id}/phase"): RECORDERS,
    ("POST", "/enrolments/{enrolment_id}/phase"): RECORDERS,
    ("GET", "/enrolments/{enrolment_id}/discharge"): RECORDERS,
    ("POST", "/enrolments/{enrolment_id}/discharge"): RECORDERS,
    ("GET", "/api/inbox"): CARE, ("GET", "/inbox"): CARE,
    ("POST", "/api/flags/{flag_id}/acknowledge"): RECORDERS,
    ("POST", "/inbox/flags/{flag_id}/acknowledge"): RECORDERS,
    ("POST", "/api/self-reports/{assessment_id}/seen"): CARE,
    ("POST", "/inbox/self-reports/{assessment_id}/seen"): CARE,
}
# person-level routes that record: unit managers are refused (403) whoever the person is
RECORDING = {"/assessments", "/enrolments", "/self-report-links", "/assess", "/enrol",
             "/sip", "/self-report", "/relations", "/emergency", "/emergency-access",
             "/revoke", "/goals", "/own-view-links", "/own-link"}
LAST = {("DELETE", "/api/session"), ("POST", "/logout")}
EMERGENCY = {"/persons/{person_key}/emergency", "/api/persons/{person_key}/emergency-access"}


def _today() -> str:
    return dt.date.today().isoformat()


def _body(method: str, path: str, world: World, serial: int) -> dict:
    """Request arguments for a route (valid input, so only access decides)."""
    if method == "GET":
        params = {}
        if path == "/api/audit/sample":
            params = {"date_from": _today(), "date_to": _today()}
        if path.endswith("/assess"):
            params = {"instrument": "audit-c"}
        return {"params": params}
    lund = world.org["Lunds kommun"]
    api = {
        "/api/persons/search": {"identity_number": "197712242390"},
        "/api/persons": {"identity_number": luhn_number("19910101", serial)},
        "/assessments": {"instrument": "audit-c",
                         "answers": {"item_1": 1, "item_2": 0, "item_3": 0}},
        "/enrolments": {"programme": "vip-beroende", "start_date": _today()},
        "/self-report-links": {"enrolment_id": "nope", "stage": "intake"},
        "/consents": {"to_organisation_id": lund, "categories": ["assessments"],
                      "valid_from": _today()},
        "/relations": {"unit_id": "soc-lund", "basis": "referral"},
        "/referrals": {"identity_number": luhn_number("19920202", serial), "note": "Remiss"},
        "/emergency-access": {"reason": "Akut läge, personen är medvetslös"},
        "/api/audit/reviews": {"date_from": _today(), "date_to": _today(), "findings": "ok",
                               "outcome": "ok"},
        "/api/session": {},
        "/goals": {"domain": "health", "text": "Sova bättre"},
        "/reviews": {"status": "partly"},
        "/invitations": {"channel": "email", "to": "person@example.org"},
    }
    pages = {
        "/persons/search": {"identity_number": "197712242390"},
        "/persons/register": {"identity_number": luhn_number("19930303", serial)},
        "/relations/referral": {"identity_number": luhn_number("19940404", serial),
                                "note": "Remiss"},
        "/emergency": {"reason": "Akut läge, personen är medvetslös"},
        "/assess": {"on_date": _today(), "item_1": "1", "item_2": "0", "item_3": "0"},
        "/enrol": {"programme": "vip-beroende", "start_date": _today()},
        "/consents": {"to_organisation_id": str(lund), "categories": "assessments",
                      "valid_from": _today()},
        "/sip": {"meeting_date": _today(), "responsible_organisation_id": str(lund),
                 "intervention_org": str(lund), "intervention_text": "Boendestöd"},
        "/self-report": {"enrolment_stage": "x|intake"},
        "/relations": {"unit_id": "soc-lund", "basis": "referral", "note": "Remiss"},
        "/unit": {"unit_id": "reg-ber"},
        "/review": {"findings": "ok", "outcome": "ok"},
        "/goals": {"domain": "health", "text": "Sova bättre"},
    }
    table = api if path.startswith("/api/") else pages
    for suffix, body in table.items():
        if path == suffix or path.endswith(suffix):
            return {"json": body} if path.startswith("/api/") else {"data": body}
    return {"json": {}} if path.startswith("/api/") else {"data": {}}


def _fill(path: str, key: str, consents: dict[str, int] | None = None,
          assessments: dict[str, str] | None = None, links: dict[str, int] | None = None
          ) -> str:
    consent = (consents or {}).get(key, 999999)  # a real consent of the person if any
    assessment = (assessments or {}).get(key, "nope")  # and a real assessment, link
    link = (links or {}).get(key, 888888)
    return (path.replace("{person_key}", key).replace("{consent_id}", str(consent))
            .replace("{assessment_id}", assessment).replace("{link_id}", str(link))
            .replace("{user_id}", "1").replace("{token}", "x").replace("{name}", "none")
            .replace("{instrument_id}", "audit").replace("{code}", "sv")
            .replace("{assessment_id}", "nope").replace("{enrolment_id}", "nope")
            .replace("{flag_id}", "999999"))


def _persons(role: str, keys: dict[str, str]) -> dict[str, str]:
    if role == "social_worker":
        return {"own": keys["soc"], "same_principal": keys["malmo2"],
                "other_principal": keys["region"], "unknown": UNKNOWN}
    return {"own": keys["region"], "same_principal": keys["laro"],
            "other_principal": keys["soc"], "unknown": UNKNOWN}


# traces of a person's data in an answer (the key the caller sent may be echoed in links)
DATA_MARKERS = ('class="kind-', '"assessments"', '"consents":', '"relations"', "F10", "F11",
                "AUDIT-C", "Beroendemottagning Malmö</td>", '"at":')


def _leaks(text: str, key: str, masked: str | None) -> bool:
    return bool(masked and masked in text) or any(m in text for m in DATA_MARKERS)


def _consents(world: World, keys: dict[str, str]) -> dict[str, int]:
    """A consent of each own-unit person (region by clin, soc by soc), to revoke."""
    from utfall.access.audit import Actor
    from utfall.access.consent import record_consent

    out = {}
    with world.engine.begin() as conn:
        for label, actor in (("region", Actor("clin", "clinician", "reg-ber")),
                             ("soc", Actor("soc", "social_worker", "soc-malmo"))):
            out[keys[label]] = record_consent(
                conn, actor, keys[label], to_organisation_id=world.org["Lunds kommun"],
                categories=["assessments"], valid_from=dt.date.today())
    return out


def _first_difference(a: str, b: str) -> str:
    """Where two answers first differ (for the failure message)."""
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
              min(len(a), len(b)))
    return f"{a[max(0, at - 40):at + 40]!r} vs {b[max(0, at - 40):at + 40]!r}"


def _links(world: World, keys: dict[str, str]) -> dict[str, int]:
    """A self-report link (and an assessment) of each own-unit person: region by clin at
    reg-ber, soc by soc at soc-malmo, for the routes keyed by person and link."""
    from utfall.access.audit import Actor
    from utfall.care import enrol, issue_self_report_link, record_assessment
    from utfall.messaging.invitations import remember_link

    out = {}
    with world.engine.begin() as conn:
        for label, actor in (("region", Actor("clin", "clinician", "reg-ber")),
                             ("soc", Actor("soc", "social_worker", "soc-malmo"))):
            enrolment = enrol(conn, actor, keys[label], "vip-beroende", str(actor.unit_id),
                              dt.date.today() - dt.timedelta(days=2))
            token = issue_self_report_link(conn, actor, enrolment, "intake")
            out[keys[label]] = remember_link(conn, actor, token, "http://testserver")
            record_assessment(conn, actor, keys[label], "audit-c",
                              {"item_1": 1, "item_2": 0, "item_3": 0},
                              unit_id=str(actor.unit_id), on_date=dt.date.today(),
                              stage="unscheduled")
    return out


def _assessments(world: World, keys: dict[str, str]) -> dict[str, str]:
    """An assessment of each person that has one (routes keyed by person and assessment)."""
    from sqlalchemy import select

    from utfall.store.models import Assessment

    with world.engine.connect() as conn:
        rows = conn.execute(select(Assessment.person_key, Assessment.row_key)
                            .where(Assessment.person_key.in_(list(keys.values())))).all()
    return {person: row_key for person, row_key in rows}


@pytest.mark.filterwarnings("ignore")
def test_role_route_person_matrix(app, world: World) -> None:
    from utfall.care.persons import masked_identity

    keys = dict(world.keys) | add_persons(world)
    with world.engine.connect() as conn:
        masked = {k: masked_identity(conn, k) for k in keys.values()}
    consents = _consents(world, keys)
    links = _links(world, keys)
    assessments = _assessments(world, keys)
    # emergency routes run late (they open an access), ending the session last of all
    routes = sorted(set(walk_routes(app)), key=lambda r: (r in LAST, r[1] in EMERGENCY,
                                                          r[1], r[0]))
    unclassified = [r for r in routes if r not in PUBLIC and r not in ROLE_ROUTES
                    and "{person_key}" not in r[1]]
    assert unclassified == [], f"classify these routes in the matrix: {unclassified}"
    attempts: Counter[str] = Counter()
    failures: list[str] = []
    serial = 100

    def check(category: str, ok: bool, what: str) -> None:
        attempts[category] += 1
        if not ok:
            failures.append(f"{category}: {what}")

    clients = {role: cookie_client(app, user) for role, user in USERS.items()}
    try:
        for method, path in routes:
            api = path.startswith("/api/")
            for role, client in clients.items():
                serial += 1
                args = _body(method, path, world, serial)
                if (method, path) in PUBLIC:
                    r = client.request(method, _fill(path, UNKNOWN), follow_redirects=False,
                                       **args)
                    check("public", r.status_code < 500, f"{method} {path} {role} {r.status_code}")
                    continue
                if "{person_key}" not in path:
                    r = client.request(method, _fill(path, UNKNOWN), follow_redirects=False,
                                       **args)
                    allowed = ROLE_ROUTES[(method, path)]
                    tag = f"{method} {path} {role} -> {r.status_code}"
                    if role == "anonymous":
                        docs = path == "/api/docs"  # an HTML page: redirect to the login
                        check("anonymous", r.status_code in ((401,) if api and not docs
                                                             else (303, 401)), tag)
                    elif "any" in allowed or role in allowed:
                        check("role allowed", r.status_code not in (401, 500)
                              and not (r.status_code == 403 and '"code":"role"' in r.text), tag)
                    else:
                        check("role refused", r.status_code == 403, tag)
                    continue
                persons = _persons(role, keys)
                answers = {}
                for label in ("unknown", "other_principal", "same_principal", "own"):
                    key = persons[label]
                    r = client.request(method, _fill(path, key, consents, assessments, links),
                                       follow_redirects=False, **args)
                    # the path the caller sent is echoed (e.g. in the language links)
                    answers[label] = (r.status_code, r.text.replace(key, "<key>")
                                      .replace(f"/self-report/{links.get(key, 888888)}",
                                               "/self-report/<link>")
                                      .replace(f"/{consents.get(key, 999999)}/", "/<id>/")
                                      .replace(assessments.get(key, "nope"), "<a>"))
                    tag = f"{method} {path} {role} {label} -> {r.status_code}"
                    if role == "anonymous":
                        check("anonymous", r.status_code in ((401,) if api else (303,)), tag)
                    elif role in ("analyst", "admin"):
                        check("no person-level role", r.status_code == 403
                              and not _leaks(r.text, key, masked.get(key)), tag)
                    elif label == "own":
                        recording = method == "POST" and any(path.endswith(s)
                                                             for s in RECORDING)
                        if role == "unit_manager" and recording:
                            check("manager records", r.status_code == 403, tag)
                        else:
                            check("own unit", r.status_code not in (401, 404, 500), tag)
                    else:
                        emergency_ok = (path in EMERGENCY and role == "clinician"
                                        and label == "same_principal")
                        if emergency_ok:
                            check("emergency within principal", r.status_code in (200, 201),
                                  tag)
                            continue
                        check("not yours", r.status_code in (403, 404)
                              and not _leaks(r.text, key, masked.get(key)), tag)
                        check("uniform answer", answers[label] == answers["unknown"],
                              f"{tag} differs from unknown {answers['unknown'][0]}: "
                              f"{_first_difference(answers[label][1], answers['unknown'][1])}")
    finally:
        for c in clients.values():
            c.__exit__(None, None, None)
    figures = {"attempts": dict(attempts), "failures": len(failures),
               "failures_by_category": dict(Counter(f.split(":")[0] for f in failures)),
               "routes": len(routes)}
    out = Path(__file__).resolve().parents[2] / "test-artifacts" / "authz-matrix.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    assert failures == [], "\n".join(failures[:40])
    assert sum(attempts.values()) > 500
