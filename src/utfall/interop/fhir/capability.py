"""The server's CapabilityStatement (``GET /fhir/metadata``)."""

from __future__ import annotations

from typing import Any

from utfall.interop.fhir.common import FHIR_VERSION, validated

_SEARCH_PATIENT = [{"name": "patient", "type": "reference"},
                   {"name": "subject", "type": "reference"}]
RESOURCES: list[dict[str, Any]] = [
    {"type": "Questionnaire", "interaction": ["read", "search-type"]},
    {"type": "QuestionnaireResponse", "interaction": ["read", "search-type", "create"],
     "searchParam": _SEARCH_PATIENT},
    {"type": "Observation", "interaction": ["read", "search-type"],
     "searchParam": [*_SEARCH_PATIENT, {"name": "code", "type": "token"}]},
    {"type": "Patient", "interaction": ["read"]},
    {"type": "EpisodeOfCare", "interaction": ["read", "search-type"],
     "searchParam": _SEARCH_PATIENT[:1]},
    {"type": "Consent", "interaction": ["read", "search-type"],
     "searchParam": _SEARCH_PATIENT[:1]},
    {"type": "MeasureReport", "interaction": ["read", "search-type"],
     "searchParam": [{"name": "measure", "type": "reference"},
                     {"name": "period", "type": "date"}]},
]


def capability_statement(base_url: str, software_version: str) -> dict[str, Any]:
    """What the server supports: R4 JSON, the resources above, transaction bundles."""
    return validated({
        "resourceType": "CapabilityStatement", "status": "active", "date": "2026-12-02",
        "kind": "instance", "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "software": {"name": "Utfall", "version": software_version},
        "implementation": {"description": "Utfall FHIR API", "url": base_url},
        "rest": [{
            "mode": "server",
            "security": {"description": "Session cookie (with X-CSRF-Token on writes) or "
                                        "Authorization: Bearer from POST /api/session; the "
                                        "same roles, care relations, consent and audit as "
                                        "/api/."},
            "resource": [{"type": r["type"], "interaction": [{"code": c} for c in
                                                             r["interaction"]],
                          **({"searchParam": r["searchParam"]} if "searchParam" in r else {})}
                         for r in RESOURCES],
            "interaction": [{"code": "transaction"}]}]})
