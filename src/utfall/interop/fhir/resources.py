"""Observation (scores), Patient, EpisodeOfCare and Consent from Utfall's data.

Builders only shape data the care/access services already released (checked,
consent-filtered and audited); they decide nothing about access.
"""

from __future__ import annotations

from typing import Any

from utfall.instruments import InstrumentDefinition
from utfall.interop.fhir.common import (
    CANONICAL,
    EXT_PHASE,
    SYSTEM_ORGANISATION,
    SYSTEM_PERSONNUMMER,
    SYSTEM_SAMORDNINGSNUMMER,
    SYSTEM_UNIT,
    fhir_id,
    local_system,
    reference,
    text_fields,
    validated,
)
from utfall.interop.fhir.questionnaire import score_system, total_coding

SURVEY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                      "code": "survey", "display": "Survey"}]}
SCORE_UNIT = {"unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}
EXT_END_REASON = f"{CANONICAL}/StructureDefinition/end-reason"


def _quantity(value: float) -> dict[str, Any]:
    return {"value": int(value) if float(value).is_integer() else value, **SCORE_UNIT}


def _observation(ident: str, entry: Any, code: dict[str, Any], value: dict[str, Any]
                 ) -> dict[str, Any]:
    return validated({
        "resourceType": "Observation", "id": ident, "status": "final", "category": [SURVEY],
        "code": code, "subject": reference("Patient", entry_key(entry)),
        "effectiveDateTime": entry.date.isoformat(),
        "derivedFrom": [reference("QuestionnaireResponse", entry.assessment_id)],
        "performer": _unit_ref(entry), **value})


def entry_key(entry: Any) -> str:
    return entry.person_key


def _unit_ref(entry: Any) -> list[dict[str, Any]]:
    if not getattr(entry, "unit_id", None):
        return []
    return [{"identifier": {"system": SYSTEM_UNIT, "value": entry.unit_id},
             "display": entry.unit_name or entry.unit_id}]


def observations(definition: InstrumentDefinition | None, entry: Any,
                 flags: list[str] | None = None) -> list[dict[str, Any]]:
    """Observations of one assessment: total, subscales, band and flags.

    ``entry`` is a consent-filtered timeline assessment with ``person_key`` set.
    Codes: the total's LOINC code where the instrument file gives a verified one,
    otherwise instrument-local codes (``…/CodeSystem/<instrument>/scores``).
    """
    out: list[dict[str, Any]] = []
    base = entry.assessment_id
    system = score_system(entry.instrument)
    if entry.score is not None:
        code = total_coding(definition) if definition is not None else {
            "system": system, "code": "total"}
        out.append(_observation(f"{base}-total", entry, {"coding": [code]},
                                {"valueQuantity": _quantity(entry.score)}))
    titles = {s.id: s.title for s in definition.scoring.subscales} if definition else {}
    for sub, value in sorted((entry.subscores or {}).items()):
        if value is None:
            continue
        title = titles.get(sub)
        coding = {"system": system, "code": sub, **text_fields("display", title)}
        out.append(_observation(f"{base}-{fhir_id(sub)}"[:64], entry, {"coding": [coding]},
                                {"valueQuantity": _quantity(value)}))
    if entry.band is not None:
        label = entry.band_label
        band = {"system": local_system(entry.instrument, "bands"), "code": entry.band,
                **text_fields("display", label)}
        out.append(_observation(f"{base}-band", entry, {"coding": [
            {"system": system, "code": "band", "display": "Interpretation band"}]},
            {"valueCodeableConcept": {"coding": [band]}}))
    flag_labels = {f.id: f.label for f in definition.scoring.flags} if definition else {}
    for flag in flags or []:
        coding = {"system": system, "code": f"flag-{flag}",
                  **text_fields("display", flag_labels.get(flag))}
        out.append(_observation(f"{base}-flag-{fhir_id(flag)}"[:64], entry,
                                {"coding": [coding]}, {"valueBoolean": True}))
    return out


def patient(person_key: str, person: Any, identity_number: str | None) -> dict[str, Any]:
    """A Patient with the Swedish identifier (only built for callers allowed to see it)."""
    resource: dict[str, Any] = {
        "resourceType": "Patient", "id": person_key,
        "gender": {"M": "male", "F": "female"}.get(person.sex, "unknown"),
        "birthDate": person.birth_date.isoformat()}
    if identity_number:
        system = SYSTEM_SAMORDNINGSNUMMER if person.coordination_number else \
            SYSTEM_PERSONNUMMER
        resource["identifier"] = [{"use": "official", "system": system,
                                   "value": identity_number}]
    if person.municipality_code:
        resource["address"] = [{"use": "home", "district": person.municipality_code}]
    return validated(resource)


def episode_of_care(person_key: str, entry: Any) -> dict[str, Any]:
    """An enrolment (timeline entry) as EpisodeOfCare with its phase history."""
    history = []
    phases = list(entry.phases or [])
    for n, p in enumerate(phases):
        end = phases[n + 1].on_date if n + 1 < len(phases) else entry.end_date
        period = {"start": p.on_date.isoformat(), **({"end": end.isoformat()} if end else {})}
        history.append({"status": "active", "period": period, "extension": [
            {"url": EXT_PHASE, "valueCoding": {
                "system": local_system(entry.programme, "phases"), "code": p.phase,
                **text_fields("display", p.name)}}]})
    period = {"start": entry.date.isoformat(),
              **({"end": entry.end_date.isoformat()} if entry.end_date else {})}
    resource: dict[str, Any] = {
        "resourceType": "EpisodeOfCare", "id": fhir_id(entry.enrolment_id)[:64],
        "status": "finished" if entry.end_date else "active",
        "type": [{"coding": [{"system": local_system("programme"), "code": entry.programme,
                              **text_fields("display", entry.title)}]}],
        "patient": reference("Patient", person_key), "period": period}
    if history:
        resource["statusHistory"] = history
    if entry.unit_id:
        resource["managingOrganization"] = {
            "identifier": {"system": SYSTEM_UNIT, "value": entry.unit_id},
            "display": entry.unit_name or entry.unit_id}
    if entry.end_reason:
        resource["extension"] = [{"url": EXT_END_REASON, "valueCoding": {
            "system": local_system(entry.programme, "end-reasons"), "code": entry.end_reason,
            **text_fields("display", entry.end_reason_label)}}]
    return validated(resource)


def consent(person_key: str, c: dict[str, Any]) -> dict[str, Any]:
    """A documented cross-principal (SIP) consent to disclose named categories."""
    period = {"start": c["valid_from"], **({"end": c["valid_to"]} if c["valid_to"] else {})}
    resource = {
        "resourceType": "Consent", "id": str(c["id"]),
        "status": "active" if c["active"] else "inactive",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": local_system("consent-category"),
                                  "code": "cross-principal-disclosure",
                                  "display": "Samtycke till utlämnande mellan huvudmän"}]}],
        "patient": reference("Patient", person_key), "dateTime": c["recorded_at"],
        "performer": [reference("Patient", person_key)],
        "organization": [{"identifier": {"system": SYSTEM_ORGANISATION,
                                         "value": str(c["from_organisation_id"])},
                          "display": c["from_organisation"] or ""}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                   "code": "OPTIN"}],
                       "text": f"{c['form']} consent (Patientdatalagen / SoL)"},
        "provision": {
            "type": "permit", "period": period,
            "actor": [{"role": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": "IRCP"}]},
                "reference": {"identifier": {"system": SYSTEM_ORGANISATION,
                                             "value": str(c["to_organisation_id"])},
                              "display": c["to_organisation"] or ""}}],
            "code": [{"coding": [{"system": local_system("consent-data-category"),
                                  "code": cat}]} for cat in c["categories"]]},
    }
    return validated(resource)
