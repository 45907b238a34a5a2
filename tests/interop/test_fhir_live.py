"""The FHIR API against a running server (uvicorn on 127.0.0.1) through the real
client library fhirpy: a hand-written PHQ-9 response is stored, scored, flagged,
appears on the timeline and in Observation search; every resource validates."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from tests.web.e2e_support import live_server
from tests.web.factory import PASSWORD
from utfall.interop.fhir.common import model_class

# The Medizininformatik-Initiative PROMs module's published PHQ-9 example
# (input/fsh/examples/mii-exa-pro-phq-9-response.fsh and -observation.fsh): all nine
# items answered "Nearly every day" (LOINC answer LA6571-9), published total 27
# (LOINC 44261-6). Written by hand against Utfall's PHQ-9 Questionnaire: linkIds
# item_1..item_9, answer code 3 = "Nearly every day" (Nästan varje dag).
PUBLISHED_TOTAL = 27


def _phq9_response(person_key: str) -> dict:
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "https://utfall.se/fhir/Questionnaire/phq-9|2001",
        "status": "completed",
        "subject": {"reference": f"Patient/{person_key}"},
        "authored": "2026-11-30T10:00:00+01:00",
        "item": [{"linkId": f"item_{n}", "answer": [{"valueCoding": {
            "system": f"https://utfall.se/fhir/CodeSystem/phq-9/item_{n}", "code": "3",
            "display": "Nästan varje dag"}}]} for n in range(1, 10)],
    }


def _token(url: str, user: str) -> str:
    req = urllib.request.Request(url + "/api/session", method="POST", data=json.dumps(
        {"username": user, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())["token"]


def _validate(resource: dict) -> None:
    model_class(resource["resourceType"]).model_validate(resource)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(Path(tmp_path_factory.mktemp("fhir"))) as srv:
        yield srv


def test_phq9_round_trip_through_fhirpy(server) -> None:
    key = server.keys["both"]
    client = SyncFHIRClient(server.url + "/fhir",
                            authorization="Bearer " + _token(server.url, "clin"))
    meta = client.execute("metadata", method="get")
    assert meta["resourceType"] == "CapabilityStatement" and meta["fhirVersion"] == "4.0.1"

    q = client.reference("Questionnaire", "phq-9").to_resource()
    _validate(q.serialize())
    assert q["code"][0]["code"] == "44249-1"

    qr = client.resource("QuestionnaireResponse", **_phq9_response(key))
    qr.save()
    assert qr.id  # the stored assessment's id
    _validate(qr.serialize())

    found = client.resources("Observation").search(
        patient=f"Patient/{key}", code="http://loinc.org|44261-6").fetch_all()
    totals = [o for o in found if o["derivedFrom"][0]["reference"] ==
              f"QuestionnaireResponse/{qr.id}"]
    assert len(totals) == 1 and totals[0]["valueQuantity"]["value"] == PUBLISHED_TOTAL
    all_obs = client.resources("Observation").search(patient=key).fetch_all()
    mine = {o["code"]["coding"][0]["code"]: o for o in all_obs
            if o["derivedFrom"][0]["reference"] == f"QuestionnaireResponse/{qr.id}"}
    assert mine["band"]["valueCodeableConcept"]["coding"][0]["code"] == "severe"
    assert mine["flag-suicidal_thoughts"]["valueBoolean"] is True  # item 9 ≥ 1
    for o in all_obs:
        _validate(o.serialize())

    responses = client.resources("QuestionnaireResponse").search(patient=key).fetch_all()
    assert qr.id in {r.id for r in responses}
    stored = next(r for r in responses if r.id == qr.id)
    assert next(i for i in stored["item"] if i["linkId"] == "total")["answer"][0][
        "valueInteger"] == PUBLISHED_TOTAL

    # the same assessment on the timeline of the JSON API
    req = urllib.request.Request(server.url + f"/api/persons/{key}/timeline", headers={
        "Authorization": "Bearer " + _token(server.url, "clin")})
    with urllib.request.urlopen(req) as r:
        timeline = json.loads(r.read())
    entry = next(a for a in timeline["assessments"] if a["assessment_id"] == qr.id)
    assert entry["score"] == PUBLISHED_TOTAL and entry["band"] == "severe"

    patient = client.reference("Patient", key).to_resource()
    _validate(patient.serialize())
    assert patient["identifier"][0]["system"] == \
        "http://electronichealth.se/identifier/personnummer"
    assert patient["identifier"][0]["value"] == "197712242390"


def test_invalid_response_is_an_operation_outcome(server) -> None:
    key = server.keys["both"]
    client = SyncFHIRClient(server.url + "/fhir",
                            authorization="Bearer " + _token(server.url, "clin"))
    body = _phq9_response(key)
    body["item"][2]["answer"][0]["valueCoding"]["code"] = "9"
    body["item"].append({"linkId": "nonsense", "answer": [{"valueInteger": 1}]})
    with pytest.raises(OperationOutcome) as caught:
        client.resource("QuestionnaireResponse", **body).save()
    text = json.dumps(caught.value.resource if hasattr(caught.value, "resource")
                      else str(caught.value))
    assert "nonsense" in text


def test_transaction_bundle_is_all_or_nothing(server) -> None:
    key = server.keys["both"]
    token = _token(server.url, "clin")
    client = SyncFHIRClient(server.url + "/fhir", authorization="Bearer " + token)
    before = len(client.resources("QuestionnaireResponse").search(patient=key).fetch_all())
    good = _phq9_response(key)
    bad = _phq9_response(key)
    bad["item"][0]["answer"][0]["valueCoding"]["code"] = "8"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": good, "request": {"method": "POST", "url": "QuestionnaireResponse"}},
        {"resource": bad, "request": {"method": "POST", "url": "QuestionnaireResponse"}}]}
    with pytest.raises(OperationOutcome):
        client.execute("", method="post", data=bundle)
    assert len(client.resources("QuestionnaireResponse").search(
        patient=key).fetch_all()) == before
    bundle["entry"] = bundle["entry"][:1]
    result = client.execute("", method="post", data=bundle)
    Bundle.model_validate(result)
    assert result["type"] == "transaction-response"
    assert result["entry"][0]["response"]["status"] == "201 Created"
    assert len(client.resources("QuestionnaireResponse").search(
        patient=key).fetch_all()) == before + 1
