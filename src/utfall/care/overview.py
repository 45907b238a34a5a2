"""The person page as one use case: who the person is, where they are in their
programmes, the latest scores, open flags, consent and who is responsible, plus the
timeline, consents, SIP plans and care relations — checked once and logged once (the
timeline read, flagged under emergency access).

The full identity number is returned only here, to a user the access policy lets read
the person; it is never written to a log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select

from utfall.access.audit import Actor

STATUS_ORDER = {"overdue": 0, "due": 1, "upcoming": 2}
ENDED_LOOKBACK = dt.timedelta(days=800)  # as the work lists (care.due)
CHANGERS = ("clinician", "social_worker")


def full_identity(conn: Connection, person_key: str) -> str:
    """``YYYYMMDD-NNNN`` of a person (decrypted in memory only; no audit of its own)."""
    from utfall.access.pseudonym import IdentityVault
    from utfall.care._common import get_person
    from utfall.config import get_settings

    row = get_person(conn, person_key)
    canonical = IdentityVault(get_settings().effective_encryption_key).decrypt(
        row.pnr_encrypted)
    return f"{canonical[:8]}-{canonical[8:]}"


def _latest_scores(tl: Any) -> list[dict[str, Any]]:
    """The newest visible score of each instrument, newest first."""
    latest: dict[str, Any] = {}
    for a in tl.assessments:  # oldest first: later ones win
        latest[a.instrument] = a
    rows = sorted(latest.values(), key=lambda a: (a.date, a.instrument), reverse=True)
    return [{"instrument": a.instrument, "title": a.title.model_dump(), "date": a.date,
             "stage": a.stage, "score": a.score,
             "band": a.band, "band_label": a.band_label.model_dump() if a.band_label else None,
             "source": a.source, "assessment_id": a.assessment_id} for a in rows]


def _flags(conn: Connection, actor: Actor, person_key: str) -> list[dict[str, Any]]:
    """Open clinical flags the actor may see (empty if the flags module is absent)."""
    try:
        from utfall.care.flags import open_flags
    except ImportError:  # pragma: no cover - flags not installed
        return []
    try:
        return list(open_flags(conn, person_key, actor=actor))
    except TypeError:  # pragma: no cover - an open_flags without actor
        return list(open_flags(conn, person_key))


def _consent_state(consents: list[dict[str, Any]]) -> dict[str, Any]:
    """Active consents (what may be shared, from whom to whom, until when)."""
    from utfall.access.policy import CATEGORIES

    active = [{"from": c["from_organisation"], "to": c["to_organisation"],
               "categories": [CATEGORIES.get(k, {"sv": k, "en": k}) for k in c["categories"]],
               "valid_to": c["valid_to"]} for c in consents if c["active"]]
    return {"active": active, "revoked": sum(1 for c in consents if c.get("revoked_at")),
            "any": bool(consents)}


def _programmes(conn: Connection, actor: Actor, tl: Any, today: dt.date
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Open programmes (and ended ones with follow-ups still to come), each with its
    phase, allowed next phases and next due stage; and who is responsible, per
    principal (unit and worker of the stages still pending)."""
    from utfall.access.policy import actor_organisation, unit_organisation
    from utfall.care.enrolment import stage_owners
    from utfall.care.phases import enrolment_view
    from utfall.followup import UnknownProgrammeError, get_programme
    from utfall.store.models import Enrolment

    visible = [e.enrolment_id for e in tl.enrolments]
    if not visible:
        return [], []
    table = Enrolment.__table__
    rows = list(conn.execute(select(table).where(table.c.row_key.in_(visible))
                             .order_by(table.c.start_date)))
    own = None if actor.role in ("system", "person") else actor_organisation(conn, actor)
    programmes: list[dict[str, Any]] = []
    responsible: dict[tuple[str, str | None, str | None], set[str]] = {}
    for row in rows:
        try:
            prog = get_programme(row.programme)
        except UnknownProgrammeError:
            continue
        if row.end_date is not None and row.end_date < today - ENDED_LOOKBACK:
            continue  # nothing can still fall due
        owners = stage_owners(conn, row, prog)
        view = enrolment_view(conn, row, today, owners)
        if row.end_date is not None and not view.pending:
            continue
        pending = sorted(view.pending, key=lambda s: (STATUS_ORDER.get(s.status, 9),
                                                      s.due_date or dt.date.max))
        org = unit_organisation(conn, row.unit_id)
        may_change = (actor.role in CHANGERS and not tl.emergency and own is not None
                      and org is not None and org[0] == own)
        since = view.history[-1]["date"] if view.history else None
        programmes.append({
            "enrolment_id": row.row_key, "programme": prog.id,
            "title": prog.title.model_dump(), "start_date": row.start_date,
            "end_date": row.end_date,
            "end_reason_label": view.end_reason_label.model_dump()
            if view.end_reason_label else None,
            "unit_id": row.unit_id, "phase": view.phase,
            "phase_name": view.phase_name.model_dump() if view.phase_name else None,
            "phase_since": dt.date.fromisoformat(since) if since else None,
            "has_phases": prog.phase_model is not None,
            "history": view.history,
            "allowed": [{"phase": a.id, "name": a.name.model_dump(), "terminal": a.terminal}
                        for a in view.allowed if not a.terminal],
            "may_change": may_change and row.end_date is None,
            "next": _stage(pending[0]) if pending else None,
            "pending": [_stage(s) for s in pending],
        })
        pending_ids = {s.stage_id for s in view.pending}
        for stage_id, owner in owners.items():
            if row.end_date is not None and not any(
                    p == stage_id or p.startswith(stage_id + "-") for p in pending_ids):
                continue
            key = (owner.principal_type, owner.unit_id, owner.worker)
            responsible.setdefault(key, set()).add(prog.id)
    names = _unit_names(conn, {k[1] for k in responsible})
    people = [{"principal_type": p, "unit_id": u, "unit_name": names.get(u or ""),
               "worker": w, "programmes": sorted(progs)}
              for (p, u, w), progs in sorted(responsible.items(),
                                            key=lambda kv: (kv[0][0], kv[0][1] or "",
                                                            kv[0][2] or ""))]
    return programmes, people


def _stage(s: Any) -> dict[str, Any]:
    return {"stage": s.stage_id, "title": s.title.model_dump(), "due_date": s.due_date,
            "window_start": s.window_start, "window_end": s.window_end, "status": s.status,
            "responsible": s.responsible, "unit_id": s.unit_id, "unit_name": s.unit_name}


def _unit_names(conn: Connection, unit_ids: set[str | None]) -> dict[str, str]:
    from utfall.store.models import Unit

    ids = sorted(u for u in unit_ids if u)
    if not ids:
        return {}
    return {str(k): str(v) for k, v in conn.execute(
        select(Unit.unit_id, Unit.name).where(Unit.unit_id.in_(ids))).all()}


def person_overview(conn: Connection, actor: Actor, person_key: str, *,
                    emergency_reason: str | None = None,
                    today: dt.date | None = None) -> dict[str, Any]:
    """What the actor may see of the person.

    Keys: ``identity`` (full identity number), ``masked``, ``sex``, ``birth_year``,
    ``programmes`` (phase, allowed next phases, next due stage), ``latest`` (newest
    score per instrument with its band), ``flags`` (open), ``consent`` (active
    consents), ``responsible`` (unit and worker per principal), ``timeline``
    (consent-filtered), ``consents``, ``sips`` and ``relations`` (own organisation's).

    Raises ``AccessDenied`` / ``PersonNotFound`` exactly like :func:`timeline`.
    """
    from utfall.access.consent import list_consents, list_sips
    from utfall.access.policy import actor_organisation
    from utfall.access.relations import _relations
    from utfall.care.timeline import timeline
    from utfall.followup import local_today

    tl = timeline(conn, actor, person_key, emergency_reason=emergency_reason)
    identity = full_identity(conn, person_key)
    own = None if actor.role == "system" else actor_organisation(conn, actor)
    consents = list_consents(conn, actor, person_key)
    programmes, responsible = _programmes(conn, actor, tl, today or local_today())
    return {"timeline": tl, "identity": identity, "masked": f"{identity[:8]}-****",
            "sex": tl.sex, "birth_year": tl.birth_year, "emergency": tl.emergency,
            "hidden": tl.hidden, "programmes": programmes, "latest": _latest_scores(tl),
            "flags": _flags(conn, actor, person_key), "consent": _consent_state(consents),
            "responsible": responsible, "consents": consents,
            "sips": list_sips(conn, person_key, actor),
            "relations": _relations(conn, person_key, own)}


def overview_json(view: dict[str, Any]) -> dict[str, Any]:
    """The overview without the timeline, JSON-able (dates ISO)."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    keep = ("identity", "masked", "sex", "birth_year", "emergency", "hidden", "programmes",
            "latest", "flags", "consent", "responsible")
    return {"person_key": view["timeline"].person_key, **{k: plain(view[k]) for k in keep}}
