"""The person page as one use case: timeline, consents, SIP plans and care relations,
checked once and logged once (a read, flagged under emergency access)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from utfall.access.audit import Actor


def person_overview(conn: Connection, actor: Actor, person_key: str, *,
                    emergency_reason: str | None = None) -> dict[str, Any]:
    """What the actor may see of the person: ``timeline`` (consent-filtered),
    ``masked`` identity, ``consents``, ``sips`` and ``relations`` (own organisation's).

    Raises ``AccessDenied`` / ``PersonNotFound`` exactly like :func:`timeline`.
    """
    from utfall.access.consent import list_consents, list_sips
    from utfall.access.policy import actor_organisation
    from utfall.access.relations import _relations
    from utfall.care.persons import masked_identity
    from utfall.care.timeline import timeline

    tl = timeline(conn, actor, person_key, emergency_reason=emergency_reason)
    own = None if actor.role == "system" else actor_organisation(conn, actor)
    return {"timeline": tl, "masked": masked_identity(conn, person_key),
            "consents": list_consents(conn, actor, person_key),
            "sips": list_sips(conn, person_key, actor),
            "relations": _relations(conn, person_key, own)}
