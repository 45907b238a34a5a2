"""Recording and revoking consents to share data across principals, and SIP plans.

The organisation that holds the data documents the person's consent to disclose
it (``from`` = the recorder's organisation); either side may record a revocation,
which applies from the next request on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, insert, select, update

from utfall.access.audit import Actor, log_event
from utfall.access.policy import (
    CATEGORIES,
    AccessDenied,
    actor_organisation,
    require_person_access,
)
from utfall.store.models import Organisation
from utfall.store.models_access import Consent, SipPlan


class ConsentError(ValueError):
    """Invalid consent input; ``field`` names the form field, ``sv``/``en`` the text."""

    def __init__(self, field: str, sv: str, en: str) -> None:
        super().__init__(en)
        self.field = field
        self.sv = sv
        self.en = en


def _org_exists(conn: Connection, organisation_id: int) -> bool:
    return conn.execute(select(Organisation.id).where(Organisation.id == organisation_id)
                        ).first() is not None


def record_consent(conn: Connection, actor: Actor, person_key: str, *,
                   to_organisation_id: int, categories: Iterable[str],
                   valid_from: dt.date, valid_to: dt.date | None = None,
                   form: str = "written", note: str | None = None,
                   sip_id: int | None = None) -> int:
    """Document the person's consent that the actor's organisation may share
    ``categories`` with ``to_organisation_id``. Returns the consent id."""
    from_org = actor_organisation(conn, actor)
    if from_org is None:
        raise AccessDenied("unit", "Ingen giltig enhet vald.", "No valid unit selected.")
    require_person_access(conn, actor, person_key, "change")  # managers: refused
    cats = sorted(set(categories))
    if not cats or any(c not in CATEGORIES for c in cats):
        raise ConsentError("categories", "Välj minst en giltig kategori.",
                           "Choose at least one valid category.")
    if not _org_exists(conn, to_organisation_id) or to_organisation_id == from_org:
        raise ConsentError("to_organisation_id", "Välj en annan huvudman att dela med.",
                           "Choose another organisation to share with.")
    if valid_to is not None and valid_to < valid_from:
        raise ConsentError("valid_to", "Slutdatum före startdatum.",
                           "The end date is before the start date.")
    if form not in {"written", "oral"}:
        raise ConsentError("form", "Ange skriftligt eller muntligt.", "State written or oral.")
    consent_id = conn.execute(insert(Consent).values(
        person_key=person_key, from_organisation_id=from_org,
        to_organisation_id=to_organisation_id, categories=cats, valid_from=valid_from,
        valid_to=valid_to, form=form, note=(note or None), sip_id=sip_id,
        recorded_by=actor.user, recorded_unit_id=actor.unit_id,
        recorded_at=dt.datetime.now(dt.UTC)).returning(Consent.id)).scalar_one()
    log_event(conn, actor, "create", person_key,
              {"what": "consent", "consent_id": int(consent_id), "to": to_organisation_id,
               "categories": cats})
    return int(consent_id)


def revoke_consent(conn: Connection, actor: Actor, consent_id: int,
                   person_key: str | None = None) -> None:
    """Revoke a consent now. A clinician or social worker of either organisation of
    the consent whose unit has a care relation with the consent's person may record
    it (``person_key``, when given, must be that person). Anything else answers
    :class:`PersonNotFound`, the same as an unknown consent id."""
    from utfall.access.policy import PersonNotFound, require_recorder

    require_recorder(conn, actor)
    row = conn.execute(select(Consent).where(Consent.id == consent_id)).first()
    if row is None or (person_key is not None and row.person_key != person_key):
        raise PersonNotFound()
    require_person_access(conn, actor, row.person_key, "change")
    org = actor_organisation(conn, actor)
    if actor.role != "system" and org not in (row.from_organisation_id,
                                              row.to_organisation_id):
        raise PersonNotFound()
    if row.revoked_at is not None:
        return
    conn.execute(update(Consent).where(Consent.id == consent_id).values(
        revoked_at=dt.datetime.now(dt.UTC), revoked_by=actor.user))
    log_event(conn, actor, "change", row.person_key,
              {"what": "consent revoked", "consent_id": consent_id})


def consents_view(conn: Connection, actor: Actor, person_key: str) -> dict[str, Any]:
    """The person's consents and SIP plans involving the actor's organisation: a
    checked, logged read (``{"consents": [...], "sips": [...]}``)."""
    grant = require_person_access(conn, actor, person_key, "read")
    log_event(conn, actor, "read", person_key, {"what": "consents", **grant.detail()})
    return {"consents": list_consents(conn, actor, person_key),
            "sips": list_sips(conn, person_key, actor)}


def list_consents(conn: Connection, actor: Actor, person_key: str) -> list[dict[str, Any]]:
    """Consents of the person that involve the actor's organisation (all for system)."""
    org = actor_organisation(conn, actor)
    query = select(Consent).where(Consent.person_key == person_key).order_by(Consent.id)
    if actor.role != "system":
        query = query.where((Consent.from_organisation_id == org)
                            | (Consent.to_organisation_id == org))
    names = dict(conn.execute(select(Organisation.id, Organisation.name)).all())
    today = dt.date.today()
    out = []
    for c in conn.execute(query):
        active = (c.revoked_at is None and c.valid_from <= today
                  and (c.valid_to is None or c.valid_to >= today))
        out.append({
            "id": c.id, "from_organisation_id": c.from_organisation_id,
            "from_organisation": names.get(c.from_organisation_id),
            "to_organisation_id": c.to_organisation_id,
            "to_organisation": names.get(c.to_organisation_id),
            "categories": list(c.categories), "valid_from": c.valid_from.isoformat(),
            "valid_to": c.valid_to.isoformat() if c.valid_to else None, "form": c.form,
            "note": c.note, "recorded_by": c.recorded_by,
            "recorded_at": c.recorded_at.isoformat(),
            "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
            "revoked_by": c.revoked_by, "active": active,
        })
    return out


def create_sip(conn: Connection, actor: Actor, person_key: str, *,
               responsible_organisation_id: int, interventions: list[dict[str, Any]],
               goals: str | None, meeting_date: dt.date) -> int:
    """Store a SIP (coordinated individual plan); needs the care relation."""
    require_person_access(conn, actor, person_key, "create")
    if not _org_exists(conn, responsible_organisation_id):
        raise ConsentError("responsible_organisation_id", "Välj huvudman med helhetsansvar.",
                           "Choose the organisation with overall responsibility.")
    sip_id = conn.execute(insert(SipPlan).values(
        person_key=person_key, responsible_organisation_id=responsible_organisation_id,
        interventions=interventions, goals=goals or None, meeting_date=meeting_date,
        created_by=actor.user, created_unit_id=actor.unit_id,
        created_at=dt.datetime.now(dt.UTC)).returning(SipPlan.id)).scalar_one()
    log_event(conn, actor, "create", person_key, {"what": "sip", "sip_id": int(sip_id)})
    return int(sip_id)


def list_sips(conn: Connection, person_key: str, actor: Actor | None = None
              ) -> list[dict[str, Any]]:
    """SIP plans of the person. With ``actor``, only plans the actor may see: made by
    its own organisation, or shared with it under a consent covering ``plan``."""
    from utfall.access.policy import access_scope, unit_organisations

    names = dict(conn.execute(select(Organisation.id, Organisation.name)).all())
    scope = access_scope(conn, actor, person_key) if actor is not None else None
    unit_org = unit_organisations(conn)
    out = []
    for s in conn.execute(select(SipPlan).where(SipPlan.person_key == person_key)
                          .order_by(SipPlan.id)):
        if scope is not None and not scope.allows(unit_org.get(s.created_unit_id or ""),
                                                  "plan"):
            continue
        out.append({"id": s.id, "responsible": names.get(s.responsible_organisation_id),
                    "responsible_organisation_id": s.responsible_organisation_id,
                    "interventions": s.interventions, "goals": s.goals,
                    "meeting_date": s.meeting_date.isoformat(), "created_by": s.created_by,
                    "created_unit_id": s.created_unit_id})
    return out
