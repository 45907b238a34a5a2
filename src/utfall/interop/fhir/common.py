"""Shared FHIR helpers: canonical URLs, extensions, validation, errors."""

from __future__ import annotations

import importlib
from typing import Any

FHIR_VERSION = "4.0.1"
MEDIA_TYPE = "application/fhir+json"
# Namespace of Utfall's own canonical URLs and local code systems (provisional: to be
# replaced by a registered namespace; docs/interoperability.md).
CANONICAL = "https://utfall.se/fhir"

EXT_TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
EXT_ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
EXT_DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
EXT_CALCULATED = ("http://hl7.org/fhir/uv/sdc/StructureDefinition/"
                  "sdc-questionnaire-calculatedExpression")
EXT_ENABLE_WHEN_EXPRESSION = ("http://hl7.org/fhir/uv/sdc/StructureDefinition/"
                              "sdc-questionnaire-enableWhenExpression")
EXT_PHASE = f"{CANONICAL}/StructureDefinition/programme-phase"

SYSTEM_PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SYSTEM_SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"
SYSTEM_HSAID = "http://electronichealth.se/identifier/hsaid"
SYSTEM_PERSON_KEY = f"{CANONICAL}/identifier/person-key"
SYSTEM_UNIT = f"{CANONICAL}/identifier/unit"
SYSTEM_ORGANISATION = f"{CANONICAL}/identifier/organisation"

_MODELS = {
    "Bundle": "bundle", "CapabilityStatement": "capabilitystatement", "Consent": "consent",
    "EpisodeOfCare": "episodeofcare", "MeasureReport": "measurereport",
    "Observation": "observation", "OperationOutcome": "operationoutcome",
    "Patient": "patient", "Questionnaire": "questionnaire",
    "QuestionnaireResponse": "questionnaireresponse",
}


class FhirError(Exception):
    """A request the FHIR API refuses: HTTP status, issue code and text (sv/en)."""

    def __init__(self, status: int, code: str, en: str, sv: str | None = None,
                 expression: list[str] | None = None,
                 issues: list[dict[str, Any]] | None = None) -> None:
        super().__init__(en)
        self.status = status
        self.code = code
        self.en = en
        self.sv = sv or en
        self.expression = expression or []
        self.issues = issues or []


def model_class(resource_type: str) -> Any:
    """The ``fhir.resources`` R4B model class of a resource type."""
    module = importlib.import_module(f"fhir.resources.R4B.{_MODELS[resource_type]}")
    return getattr(module, resource_type)


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` after validation with ``fhir.resources`` (raises on invalid data).

    Returned unchanged (the validated model is only a check), so what is served is
    exactly what was built and checked.
    """
    model_class(resource["resourceType"]).model_validate(resource)
    return resource


def parse(resource: dict[str, Any], resource_type: str) -> Any:
    """An incoming resource parsed with ``fhir.resources`` (422 OperationOutcome if not)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
        raise FhirError(400, "structure", f"expected a {resource_type} resource",
                        f"en {resource_type}-resurs förväntades")
    try:
        return model_class(resource_type).model_validate(resource)
    except Exception as exc:  # pydantic ValidationError: report field paths
        errors = getattr(exc, "errors", None)
        where = []
        if callable(errors):
            where = [".".join(str(p) for p in e.get("loc", ())) for e in errors()][:20]
        raise FhirError(422, "structure", f"invalid {resource_type}",
                        f"ogiltig {resource_type}", expression=where) from None


def translated(sv: str, en: str) -> dict[str, Any]:
    """The ``_element`` carrying the English translation of a Swedish text."""
    return {"extension": [{"url": EXT_TRANSLATION, "extension": [
        {"url": "lang", "valueCode": "en"}, {"url": "content", "valueString": en}]}]}


def text_fields(name: str, text: Any) -> dict[str, Any]:
    """``{name: sv, _name: translation(en)}`` from a LocalText (sv first)."""
    if text is None:
        return {}
    return {name: text.sv, f"_{name}": translated(text.sv, text.en)}


def reference(resource_type: str, ident: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{ident}"}


def fhir_id(value: str) -> str:
    """A FHIR id from an Utfall id (``_`` is not allowed in FHIR ids)."""
    return value.replace("_", "-")


def local_system(*parts: str) -> str:
    """Canonical URL of an Utfall-local code system."""
    return f"{CANONICAL}/CodeSystem/" + "/".join(parts)


def searchset(resources: list[dict[str, Any]], base: str) -> dict[str, Any]:
    """A search result Bundle."""
    return validated({
        "resourceType": "Bundle", "type": "searchset", "total": len(resources),
        "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                   "search": {"mode": "match"}} for r in resources]})


def operation_outcome(status: int, code: str, en: str, sv: str | None = None,
                      expression: list[str] | None = None,
                      issues: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An OperationOutcome (error) with Swedish diagnostics and English details text."""
    severity = "error" if status < 500 else "fatal"
    out = issues or [{"severity": severity, "code": code, "details": {"text": en},
                      "diagnostics": sv or en, **({"expression": expression}
                                                  if expression else {})}]
    return validated({"resourceType": "OperationOutcome", "issue": out})
