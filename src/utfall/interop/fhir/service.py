"""FHIR reads and writes over Utfall's use-case functions.

Access checks, consent filtering and audit happen in the care and access services
(``utfall.care.timeline``, ``record_assessment``, ``consents_view``, the care access
helper); this module only selects and shapes what they released.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from utfall.access.audit import Actor
from utfall.instruments import UnknownInstrumentError, get_instrument
from utfall.interop.fhir import resources
from utfall.interop.fhir.common import FhirError, fhir_id
from utfall.interop.fhir.response import build_response, read_response
from utfall.store.models import Assessment
from utfall.store.models_care import CareAssessment


def _definition(instrument: str) -> Any:
    try:
        return get_instrument(instrument)
    except UnknownInstrumentError:
        return None


def person_of_assessment(conn: Connection, ident: str, *, observation: bool = False) -> str:
    """The person key of an assessment id, or of the assessment an Observation id
    (``<assessment>-<measure>``) derives from (404 when unknown; no data released)."""
    candidates = [ident]
    if observation:
        parts = ident.split("-")
        candidates = ["-".join(parts[:n]) for n in range(1, len(parts))]
    row = conn.execute(select(Assessment.person_key)
                       .where(Assessment.row_key.in_(candidates))).first()
    if row is None:
        raise FhirError(404, "not-found", "unknown resource id", "okänd resurs")
    return str(row[0])


def _visible_assessments(conn: Connection, actor: Actor, person_key: str) -> list[Any]:
    """Timeline assessments the actor may see (checked, consent-filtered, audited)."""
    from utfall.care import timeline

    return list(timeline(conn, actor, person_key).assessments)


def responses(conn: Connection, actor: Actor, person_key: str) -> list[dict[str, Any]]:
    """QuestionnaireResponses of a person (what the actor may see)."""
    ids = [a.assessment_id for a in _visible_assessments(conn, actor, person_key)]
    if not ids:
        return []
    table = Assessment.__table__
    rows = conn.execute(select(table).where(table.c.row_key.in_(ids))
                        .order_by(table.c.date, table.c.row_key)).all()
    return [build_response(_definition(r.instrument), r) for r in rows]


class _Entry:
    """A timeline assessment with the person key (for the Observation builder)."""

    def __init__(self, entry: Any, person_key: str) -> None:
        self._entry = entry
        self.person_key = person_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._entry, name)


def _flags(conn: Connection, ids: list[str]) -> dict[str, list[str]]:
    if not ids:
        return {}
    table = CareAssessment.__table__
    out = {}
    for r in conn.execute(select(table.c.assessment_id, table.c.result)
                          .where(table.c.assessment_id.in_(ids))):
        result = json.loads(r.result) if isinstance(r.result, str) else (r.result or {})
        out[r.assessment_id] = list(result.get("flags") or [])
    return out


def observations(conn: Connection, actor: Actor, person_key: str,
                 code: str | None = None) -> list[dict[str, Any]]:
    """Score Observations of a person; ``code`` filters by ``[system|]code``."""
    entries = _visible_assessments(conn, actor, person_key)
    flags = _flags(conn, [e.assessment_id for e in entries])
    out = []
    for entry in entries:
        out.extend(resources.observations(_definition(entry.instrument),
                                          _Entry(entry, person_key),
                                          flags.get(entry.assessment_id)))
    if code:
        system, _, value = code.rpartition("|")
        out = [o for o in out if any(c["code"] == value and (not system or c["system"] == system)
                                     for c in o["code"]["coding"])]
    return out


def patient(conn: Connection, actor: Actor, person_key: str) -> dict[str, Any]:
    """The Patient with the decrypted identity number: a checked, audited read."""
    from utfall.access.pseudonym import IdentityVault
    from utfall.care._common import access, get_person
    from utfall.config import get_settings

    access(conn, actor, person_key, "read", {"what": "fhir_patient",
                                             "identity_number": True})
    person = get_person(conn, person_key)
    number = IdentityVault(get_settings().effective_encryption_key).decrypt(
        person.pnr_encrypted)
    return resources.patient(person_key, person, number)


def episodes(conn: Connection, actor: Actor, person_key: str) -> list[dict[str, Any]]:
    """EpisodeOfCare per enrolment the actor may see, with phase histories."""
    from utfall.care import timeline

    tl = timeline(conn, actor, person_key)
    return [resources.episode_of_care(person_key, e) for e in tl.enrolments]


def consents(conn: Connection, actor: Actor, person_key: str) -> list[dict[str, Any]]:
    """Consents involving the actor's organisation (checked, audited read)."""
    from utfall.access.consent import consents_view

    view = consents_view(conn, actor, person_key)
    return [resources.consent(person_key, c) for c in view["consents"]]


def record_response(conn: Connection, actor: Actor, unit_id: str | None,
                    resource: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Store a QuestionnaireResponse as an assessment through the care service
    (``record_assessment``: access check, engine validation and scoring, flags, audit).
    Returns the assessment id and the stored response."""
    from utfall.care import CareError, record_assessment

    given = read_response(resource)
    try:
        assessment_id = record_assessment(
            conn, actor, given["person_key"], given["definition"].id, given["answers"],
            stage=given["stage"], unit_id=str(unit_id), on_date=given["on_date"],
            source="capture")
    except CareError as exc:
        issues = [{"severity": "error", "code": "invalid" if i.where else "business-rule",
                   "details": {"text": f"{i.where}: {i.en}" if i.where else i.en},
                   "diagnostics": i.sv,
                   **({"expression": [f"QuestionnaireResponse.item.where(linkId='{i.where}')"]}
                      if i.where and i.where.startswith("item") else {})}
                  for i in exc.issues]
        status = 404 if type(exc).__name__ == "NotFound" else 422
        raise FhirError(status, "invalid", exc.en, exc.sv, issues=issues or None) from None
    row = conn.execute(select(Assessment.__table__)
                       .where(Assessment.row_key == assessment_id)).one()
    return assessment_id, build_response(given["definition"], row)


def find_episode(items: list[dict[str, Any]], ident: str) -> dict[str, Any]:
    for item in items:
        if item["id"] == fhir_id(ident):
            return item
    raise FhirError(404, "not-found", "unknown resource id", "okänd resurs")


def person_of_enrolment(conn: Connection, ident: str) -> str:
    """The person key of an EpisodeOfCare id (404 when unknown)."""
    from utfall.store.models import Enrolment

    row = conn.execute(select(Enrolment.person_key).where(
        Enrolment.row_key.in_([ident, ident.replace("-", "_")]))).first()
    if row is None:
        raise FhirError(404, "not-found", "unknown resource id", "okänd resurs")
    return str(row[0])


def person_of_consent(conn: Connection, ident: str) -> str:
    """The person key of a Consent id (404 when unknown)."""
    from utfall.store.models_access import Consent

    if not ident.isdigit() or len(ident) > 9:
        raise FhirError(404, "not-found", "unknown resource id", "okänd resurs")
    row = conn.execute(select(Consent.person_key).where(Consent.id == int(ident))).first()
    if row is None:
        raise FhirError(404, "not-found", "unknown resource id", "okänd resurs")
    return str(row[0])
