"""401/403 over /fhir exactly like /api/, OperationOutcome on every error, audit,
and MeasureReports without unmasked small cells."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from utfall.interop.fhir.common import EXT_DATA_ABSENT, model_class
from utfall.store.models import AuditEvent

USERS = ("clin", "clin2", "soc", "soc_lund", "boss", "soc_boss", "ana", "root")


def _person_routes(key: str) -> list[str]:
    return [f"/fhir/Observation?patient={key}", f"/fhir/QuestionnaireResponse?patient={key}",
            f"/fhir/Patient/{key}", f"/fhir/EpisodeOfCare?patient={key}",
            f"/fhir/Consent?patient={key}"]


def _is_outcome(r) -> None:
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    model_class("OperationOutcome").model_validate(body)


def test_401_without_credentials(anon, world) -> None:
    key = world.keys["both"]
    routes = [*_person_routes(key), "/fhir/MeasureReport", "/fhir/MeasureReport/x"]
    for path in routes:
        r = anon.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        _is_outcome(r)
    r = anon.post("/fhir/QuestionnaireResponse", json={"resourceType": "QuestionnaireResponse"})
    assert r.status_code == 401
    assert anon.post("/fhir/", json={"resourceType": "Bundle"}).status_code == 401
    assert anon.get("/api/persons/" + key + "/timeline").status_code == 401
    assert anon.get("/fhir/metadata").status_code == 200  # public, like /api/instruments
    assert anon.get("/fhir/Questionnaire/audit").status_code == 200


@pytest.mark.parametrize("user", USERS)
def test_person_reads_match_the_json_api(login, world, user) -> None:
    client = login(user)
    for label, key in world.keys.items():
        expected = client.get(f"/api/persons/{key}/timeline").status_code
        for path in _person_routes(key):
            r = client.get(path)
            assert r.status_code == expected, (user, label, path, r.text)
            if r.status_code >= 400:
                _is_outcome(r)


def test_unknown_ids_are_404(login, world) -> None:
    client = login("clin")
    for path in ("/fhir/QuestionnaireResponse/0123456789abcdef0123456789abcdef",
                 "/fhir/Observation/0123456789abcdef0123456789abcdef-total",
                 "/fhir/Questionnaire/k99", "/fhir/EpisodeOfCare/nope", "/fhir/Consent/999999",
                 "/fhir/Patient/" + "0" * 64, "/fhir/NoSuchType"):
        r = client.get(path)
        assert r.status_code == 404, path
        _is_outcome(r)


def test_recording_roles_and_csrf(login, world, anon) -> None:
    key = world.keys["region"]
    body = {"resourceType": "QuestionnaireResponse", "status": "completed",
            "questionnaire": "https://utfall.se/fhir/Questionnaire/audit-c",
            "subject": {"reference": f"Patient/{key}"}, "authored": "2026-11-01",
            "item": [{"linkId": f"item_{n}", "answer": [{"valueCoding": {"code": "1"}}]}
                     for n in (1, 2, 3)]}
    assert login("boss").post("/fhir/QuestionnaireResponse", json=body).status_code == 403
    assert login("ana").post("/fhir/QuestionnaireResponse", json=body).status_code == 403
    # a social worker of another principal without relation: refused like /api/
    soc = login("soc_lund")
    api = soc.post(f"/api/persons/{key}/assessments", json={
        "instrument": "audit-c", "answers": {"item_1": 1, "item_2": 1, "item_3": 1}})
    fhir = soc.post("/fhir/QuestionnaireResponse", json=body)
    assert fhir.status_code == api.status_code and fhir.status_code in (403, 404)
    _is_outcome(fhir)
    # cookie session without the CSRF header: 403 as in /api/
    from tests.web.conftest import page_login

    page_login(anon, "clin")
    r = anon.post("/fhir/QuestionnaireResponse", json=body)
    assert r.status_code == 403
    _is_outcome(r)
    clin = login("clin")
    r = clin.post("/fhir/QuestionnaireResponse", json=body)
    assert r.status_code == 201, r.text
    with world.engine.connect() as conn:
        events = conn.execute(select(AuditEvent.action, AuditEvent.detail).where(
            AuditEvent.person_key == key)).all()
    assert any(e.action == "create" and (e.detail or {}).get("assessment_id") == r.json()["id"]
               for e in events)


def test_patient_read_is_audited(login, world) -> None:
    key = world.keys["region"]
    assert login("clin").get(f"/fhir/Patient/{key}").status_code == 200
    with world.engine.connect() as conn:
        details = [e.detail for e in conn.execute(select(AuditEvent.detail).where(
            AuditEvent.person_key == key, AuditEvent.action == "read"))]
    assert any((d or {}).get("what") == "fhir_patient" and (d or {}).get("identity_number")
               for d in details)


def test_measure_reports_publish_no_small_cell(login, world) -> None:
    from utfall.analytics.runs import compute_and_store

    assert login("ana").get("/fhir/MeasureReport").json()["total"] == 0  # no run yet
    compute_and_store(world.engine)  # what the background job does after a change
    r = login("ana").get("/fhir/MeasureReport")
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["total"] > 0
    masked = 0

    def cells(node):
        nonlocal masked
        for pop in node.get("population", []):
            if "count" in pop:
                assert pop["count"] == 0 or pop["count"] >= 5, pop
            else:
                assert pop["_count"]["extension"][0] == {"url": EXT_DATA_ABSENT,
                                                         "valueCode": "masked"}
                masked += 1

    for entry in bundle["entry"]:
        report = entry["resource"]
        model_class("MeasureReport").model_validate(report)
        for group in report["group"]:
            cells(group)
            for strat in group.get("stratifier", []):
                for stratum in strat["stratum"]:
                    cells(stratum)
    assert masked > 0  # the tiny world has only small cells: they are masked
    assert login("clin").get("/fhir/MeasureReport").status_code == 403
