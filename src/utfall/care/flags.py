"""Clinical flags: raised when an assessment is saved, open until acknowledged.

An instrument file defines its flags (``scoring.flags``: e.g. PHQ-9 ``suicidal_thoughts``
when item 9 ≥ 1). Every save path (web, API, CLI, self-report, import, correction)
calls :func:`raise_flags` / :func:`raise_flags_bulk` / :func:`reevaluate_flags`, so a
flag is stored once per assessment and flag id with person, unit, instrument and time.
A clinician or social worker closes it with :func:`acknowledge_flag` (a note is
required; access-checked and audited). Labels come from the instrument file in Swedish
and English; raw flag ids are never shown.

The readers :func:`open_flags` and :func:`open_flag_counts` do not check access: the
caller has (person page, worklist). Pass ``actor`` to :func:`open_flags` to keep only
flags the actor's scope allows (own organisation, or consented assessments).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select, update

from utfall.access.audit import Actor
from utfall.care._common import CareError, Issue, NotFound, access, as_utc, now_utc
from utfall.store.models_flags import CareFlag

OPEN = "open"
ACKNOWLEDGED = "acknowledged"
WITHDRAWN = "withdrawn"
MAX_NOTE = 2000
GENERIC = {"sv": "Flagga som behöver uppmärksammas", "en": "Flag that needs attention"}


def flag_label(instrument: str, flag_id: str) -> dict[str, str]:
    """``{"sv", "en"}`` label of a flag from its instrument file (a generic text if the
    instrument or flag is unknown: never the raw id)."""
    from utfall.instruments import UnknownInstrumentError, get_instrument

    try:
        definition = get_instrument(instrument)
    except UnknownInstrumentError:
        return dict(GENERIC)
    for flag in definition.scoring.flags:
        if flag.id == flag_id:
            return {"sv": flag.label.sv, "en": flag.label.en}
    return dict(GENERIC)


def instrument_title(instrument: str) -> dict[str, str]:
    """``{"sv", "en"}`` title of an instrument (its id upper-cased if unknown)."""
    from utfall.instruments import UnknownInstrumentError, get_instrument

    try:
        title = get_instrument(instrument).title
    except UnknownInstrumentError:
        return {"sv": instrument.upper(), "en": instrument.upper()}
    return {"sv": title.sv, "en": title.en}


def flags_for_answers(instrument: str, answers: Mapping[str, Any],
                      band: str | None = None) -> list[str]:
    """Flag ids an instrument defines that the (stored, numeric) answers or the stored
    band trigger."""
    from utfall.instruments import UnknownInstrumentError, get_instrument

    try:
        definition = get_instrument(instrument)
    except UnknownInstrumentError:
        return []
    return _triggered(definition.scoring.flags, answers, band)


def _triggered(flags: Sequence[Any], answers: Mapping[str, Any], band: str | None
               ) -> list[str]:
    out = []
    for flag in flags:
        if flag.bands:
            if band is not None and band in flag.bands:
                out.append(flag.id)
            continue
        if flag.item is None or flag.min is None:
            continue
        value = answers.get(flag.item)
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                continue
        if isinstance(value, (int, float)) and value >= flag.min:
            out.append(flag.id)
    return out


# ------------------------------------------------------------------ raising


def raise_flags(conn: Connection, *, assessment_id: str, person_key: str,
                unit_id: str | None, instrument: str, flag_ids: Iterable[str],
                now: dt.datetime | None = None) -> list[int]:
    """Store the open flags of one assessment (already stored flags are kept as they
    are). Returns the new flag row ids."""
    ids = list(dict.fromkeys(flag_ids))
    if not ids:
        return []
    t = CareFlag.__table__
    have: set[str] = set(conn.execute(select(t.c.flag_id).where(t.c.assessment_id == assessment_id))
               .scalars())
    at = now_utc(now)
    new: list[int] = []
    for flag_id in ids:
        if flag_id in have:
            continue
        result = conn.execute(t.insert().values(
            assessment_id=assessment_id, person_key=person_key, unit_id=unit_id,
            instrument=instrument, flag_id=flag_id, status=OPEN, raised_at=at))
        pk = result.inserted_primary_key
        if pk is not None:
            new.append(int(pk[0]))
    return new


def raise_flags_bulk(conn: Connection, rows: Iterable[Mapping[str, Any]],
                     now: dt.datetime | None = None) -> int:
    """Flags of many assessments at once (import): ``rows`` carry ``row_key``,
    ``person_key``, ``unit_id``, ``instrument``, ``band`` and ``answers`` (a mapping, or
    a callable returning one: then parsed only for instruments with item flags). Only
    instruments that define flags are looked at; flags already stored are skipped.
    Returns how many flags were raised."""
    from utfall.instruments import UnknownInstrumentError, get_instrument

    defined: dict[str, tuple[Any, ...]] = {}
    pending: list[dict[str, Any]] = []
    at = now_utc(now)
    for row in rows:
        instrument = row["instrument"]
        if instrument not in defined:
            try:
                defined[instrument] = tuple(get_instrument(instrument).scoring.flags)
            except UnknownInstrumentError:
                defined[instrument] = ()
        if not defined[instrument]:
            continue
        answers = row.get("answers") or {}
        if callable(answers):  # parsed only when an item flag needs them
            answers = answers() if any(f.item for f in defined[instrument]) else {}
        for flag_id in _triggered(defined[instrument], answers, row.get("band")):
            pending.append({"assessment_id": row["row_key"], "person_key": row["person_key"],
                            "unit_id": row.get("unit_id"), "instrument": instrument,
                            "flag_id": flag_id, "status": OPEN, "raised_at": at})
    if not pending:
        return 0
    t = CareFlag.__table__
    have: set[tuple[str, str]] = set()
    keys = sorted({p["assessment_id"] for p in pending})
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        have.update((r[0], r[1]) for r in conn.execute(
            select(t.c.assessment_id, t.c.flag_id).where(t.c.assessment_id.in_(chunk))))
    fresh = [p for p in pending if (p["assessment_id"], p["flag_id"]) not in have]
    if fresh:
        conn.execute(t.insert(), fresh)
    return len(fresh)


def reevaluate_flags(conn: Connection, *, assessment_id: str, person_key: str,
                     unit_id: str | None, instrument: str, flag_ids: Iterable[str] | None,
                     actor: Actor, now: dt.datetime | None = None) -> dict[str, list[str]]:
    """After a correction (``flag_ids`` = the flags of the new version) or a void
    (``flag_ids=None``): open flags no longer triggered are withdrawn, new ones raised.
    Acknowledged flags stay as they are. Returns ``{"raised", "withdrawn"}``."""
    t = CareFlag.__table__
    wanted = set(flag_ids or ())
    rows = conn.execute(select(t.c.id, t.c.flag_id, t.c.status)
                        .where(t.c.assessment_id == assessment_id)).all()
    at = now_utc(now)
    withdrawn = [r.flag_id for r in rows if r.status == OPEN and r.flag_id not in wanted]
    if withdrawn:
        conn.execute(update(t).where(t.c.assessment_id == assessment_id,
                                     t.c.status == OPEN, t.c.flag_id.in_(withdrawn))
                     .values(status=WITHDRAWN, closed_at=at, closed_by=actor.user,
                             closed_role=actor.role))
    # a flag withdrawn earlier and triggered again is opened again
    reopen = [r.flag_id for r in rows if r.status == WITHDRAWN and r.flag_id in wanted]
    if reopen:
        conn.execute(update(t).where(t.c.assessment_id == assessment_id,
                                     t.c.flag_id.in_(reopen))
                     .values(status=OPEN, raised_at=at, closed_at=None, closed_by=None,
                             closed_role=None, note=None))
    have = {r.flag_id for r in rows}
    raise_flags(conn, assessment_id=assessment_id, person_key=person_key, unit_id=unit_id,
                instrument=instrument, flag_ids=[f for f in wanted if f not in have], now=at)
    return {"raised": sorted(f for f in wanted if f not in have or f in reopen),
            "withdrawn": sorted(withdrawn)}


# ------------------------------------------------------------------ reading


def flag_dict(row: Any, unit_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A flag row as a JSON-friendly dict with Swedish/English labels."""
    raised = as_utc(row.raised_at)
    closed = as_utc(row.closed_at) if row.closed_at is not None else None
    out = {
        "flag_id": row.id,
        "code": row.flag_id,
        "assessment_id": row.assessment_id,
        "person_key": row.person_key,
        "instrument": row.instrument,
        "instrument_title": instrument_title(row.instrument),
        "label": flag_label(row.instrument, row.flag_id),
        "unit_id": row.unit_id,
        "unit_name": (unit_names or {}).get(row.unit_id or ""),
        "status": row.status,
        "raised_at": raised.isoformat(),
        "closed_at": closed.isoformat() if closed else None,
        "closed_by": row.closed_by,
        "note": row.note,
    }
    date = getattr(row, "date", None)
    if date is not None:
        out["assessment_date"] = date.isoformat() if hasattr(date, "isoformat") else str(date)
    return out


def _unit_names(conn: Connection, unit_ids: Iterable[str | None]) -> dict[str, str]:
    from utfall.store.models import Unit

    ids = sorted({u for u in unit_ids if u})
    if not ids:
        return {}
    rows = conn.execute(select(Unit.unit_id, Unit.name).where(Unit.unit_id.in_(ids)))
    return {str(r[0]): str(r[1]) for r in rows}


def open_flags(conn: Connection, person_key: str, *, actor: Actor | None = None
               ) -> list[dict[str, Any]]:
    """The person's open flags, newest first (see :func:`flag_dict` for the keys:
    ``flag_id`` (row id for acknowledging), ``label`` {sv, en}, ``instrument_title``,
    ``raised_at`` (ISO, UTC), ``assessment_id``, ``assessment_date``, ``unit_name``).

    No access check and no audit (the caller reads the person); with ``actor`` only
    flags on assessments the actor's scope allows are returned.
    """
    from utfall.store.models import Assessment

    t = CareFlag.__table__
    a = Assessment.__table__
    rows = conn.execute(select(t, a.c.date).join(a, a.c.row_key == t.c.assessment_id)
                        .where(t.c.person_key == person_key, t.c.status == OPEN)
                        .order_by(t.c.raised_at.desc(), t.c.id.desc())).all()
    if actor is not None and rows:
        from utfall.access.policy import access_scope, filter_entries, unit_organisations

        scope = access_scope(conn, actor, person_key)
        rows = filter_entries(rows, scope, unit_organisations(conn),
                              category_of=lambda _r: "assessments")
    names = _unit_names(conn, (r.unit_id for r in rows))
    return [flag_dict(r, names) for r in rows]


def flag_history(conn: Connection, assessment_id: str) -> list[dict[str, Any]]:
    """Every flag of one assessment (open, acknowledged, withdrawn), oldest first."""
    t = CareFlag.__table__
    rows = conn.execute(select(t).where(t.c.assessment_id == assessment_id)
                        .order_by(t.c.raised_at, t.c.id)).all()
    names = _unit_names(conn, (r.unit_id for r in rows))
    return [flag_dict(r, names) for r in rows]


def open_flag_counts(conn: Connection, person_keys: Sequence[str]) -> dict[str, int]:
    """Open flags per person for the given persons (persons without any are left out).
    No access check: for lists the caller has already checked (worklist)."""
    t = CareFlag.__table__
    out: dict[str, int] = {}
    keys = list(dict.fromkeys(person_keys))
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        rows = conn.execute(
            select(t.c.person_key, func.count()).where(t.c.person_key.in_(chunk),
                                                       t.c.status == OPEN)
            .group_by(t.c.person_key))
        out.update({str(r[0]): int(r[1]) for r in rows})
    return out


def open_flags_by_assessment(conn: Connection, assessment_ids: Sequence[str]
                             ) -> dict[str, list[dict[str, Any]]]:
    """Open flags keyed by assessment id (for timelines)."""
    t = CareFlag.__table__
    out: dict[str, list[dict[str, Any]]] = {}
    ids = list(dict.fromkeys(assessment_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for row in conn.execute(select(t).where(t.c.assessment_id.in_(chunk),
                                                t.c.status == OPEN).order_by(t.c.id)):
            out.setdefault(row.assessment_id, []).append(flag_dict(row))
    return out


# ------------------------------------------------------------------ acknowledging


def _check_note(note: str | None) -> str:
    text = (note or "").strip()
    if not text:
        raise CareError("note_required", "skriv en anteckning om vad som gjorts",
                        "write a note on what has been done",
                        [Issue("note", "required", "Skriv en anteckning.", "Write a note.")])
    if len(text) > MAX_NOTE:
        raise CareError("too_large", f"anteckningen är längre än {MAX_NOTE} tecken",
                        f"the note is longer than {MAX_NOTE} characters",
                        [Issue("note", "too_large", f"högst {MAX_NOTE} tecken",
                               f"at most {MAX_NOTE} characters")])
    return text


def acknowledge_flag(conn: Connection, actor: Actor, flag_id: int, note: str | None, *,
                     now: dt.datetime | None = None) -> dict[str, Any]:
    """Close an open flag with a note (clinician, social worker of the organisation that
    raised it). Access-checked as a change of the person's data and audited.

    Raises :class:`NotFound` (unknown flag, or one outside the actor's scope: same
    answer), :class:`CareError` (no note, already closed) or ``AccessDenied``.
    """
    from utfall.access.policy import AccessDenied, PersonNotFound
    from utfall.care._common import require_own_organisation

    t = CareFlag.__table__
    row = conn.execute(select(t).where(t.c.id == flag_id)).first()
    if row is None:
        raise NotFound("flag_not_found", "flaggan finns inte", "no such flag")
    if actor.role not in ("clinician", "social_worker", "system"):
        raise AccessDenied("role", "Bara behandlare och socialsekreterare kvitterar flaggor.",
                           "Only clinicians and social workers acknowledge flags.")
    text = _check_note(note)
    try:
        require_own_organisation(conn, actor, row.unit_id)
    except AccessDenied:
        # another principal's flag: the same answer as for an unknown one
        raise NotFound("flag_not_found", "flaggan finns inte", "no such flag") from None
    if row.status != OPEN:
        raise CareError("flag_closed", "flaggan är redan kvitterad eller återkallad",
                        "the flag is already acknowledged or withdrawn",
                        [Issue("flag_id", "flag_closed", "redan stängd", "already closed")])
    at = now_utc(now)
    try:
        with conn.begin_nested():
            access(conn, actor, row.person_key, "change",
                   {"what": "flag_acknowledged", "flag_id": row.id,
                    "assessment_id": row.assessment_id, "instrument": row.instrument,
                    "flag": row.flag_id})
            conn.execute(update(t).where(t.c.id == flag_id, t.c.status == OPEN)
                         .values(status=ACKNOWLEDGED, closed_at=at, closed_by=actor.user,
                                 closed_role=actor.role, note=text))
    except PersonNotFound:
        raise NotFound("flag_not_found", "flaggan finns inte", "no such flag") from None
    done = conn.execute(select(t).where(t.c.id == flag_id)).one()
    return flag_dict(done, _unit_names(conn, [done.unit_id]))


def person_open_flags(conn: Connection, actor: Actor, person_key: str) -> list[dict[str, Any]]:
    """Use case: the person's open flags the actor may see (access-checked, audited)."""
    grant = access(conn, actor, person_key, "read", {"what": "flags"})
    del grant
    return open_flags(conn, person_key, actor=actor)
