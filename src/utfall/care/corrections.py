"""Correcting and voiding recorded assessments, with the history kept.

A correction replaces the answers of an assessment (re-validated and re-scored with
the person's sex and age on the assessment date) and keeps the previous version in
``care_assessment_revision``; the ``assessment`` row always holds the current
version, so everything reading it (timeline, schedules, indicators) uses that one. A
void keeps the row but records it in ``care_assessment_void``: voided assessments are
left out of the timeline, schedules and the canonical analytics tables
(:func:`not_voided`). Both re-evaluate the assessment's clinical flags, need a reason,
are allowed for clinicians and social workers of the organisation that recorded the
assessment, and are audited (action ``change``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, select, update

from utfall.access.audit import Actor
from utfall.care._common import (
    CareError,
    Issue,
    access,
    age_on,
    as_utc,
    get_person,
    now_utc,
    require_own_organisation,
    unit_info,
)
from utfall.store.models import Assessment
from utfall.store.models_care import CareAssessment
from utfall.store.models_flags import AssessmentRevision, AssessmentVoid

MAX_REASON = 2000


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise CareError("reason_required", "ange en orsak", "give a reason",
                        [Issue("reason", "required", "Ange en orsak.", "Give a reason.")])
    if len(text) > MAX_REASON:
        raise CareError("too_large", f"orsaken är längre än {MAX_REASON} tecken",
                        f"the reason is longer than {MAX_REASON} characters",
                        [Issue("reason", "too_large", f"högst {MAX_REASON} tecken",
                               f"at most {MAX_REASON} characters")])
    return text


def _not_found() -> Exception:
    """An unknown assessment and one outside the actor's scope get one answer: the
    person-level 404 (``PersonNotFound``), so assessment ids cannot be probed."""
    from utfall.access.policy import PersonNotFound

    return PersonNotFound()


def _load(conn: Connection, assessment_id: str) -> Any:
    """The assessment row (an unknown id: see :func:`_not_found`)."""
    a = Assessment.__table__
    row = conn.execute(select(a).where(a.c.row_key == assessment_id)).first()
    if row is None:
        raise _not_found()
    return row


def is_voided(conn: Connection, assessment_id: str) -> bool:
    """Whether the assessment has been voided."""
    return conn.execute(select(AssessmentVoid.assessment_id).where(
        AssessmentVoid.assessment_id == assessment_id)).first() is not None


def _check_change(conn: Connection, actor: Actor, row: Any) -> None:
    """Person access (404 outside scope), role and own organisation (403)."""
    from utfall.access.policy import AccessDenied, require_person_access

    if actor.role not in ("clinician", "social_worker", "system"):
        raise AccessDenied("role", "Bara behandlare och socialsekreterare rättar bedömningar.",
                           "Only clinicians and social workers correct assessments.")
    require_person_access(conn, actor, row.person_key, "change")
    require_own_organisation(conn, actor, row.unit_id)
    if is_voided(conn, row.row_key):
        raise CareError("assessment_voided", "bedömningen är makulerad",
                        "the assessment has been voided",
                        [Issue(None, "assessment_voided", "redan makulerad", "already voided")])


def _next_version(conn: Connection, assessment_id: str) -> int:
    r = AssessmentRevision.__table__
    count = conn.execute(select(func.count()).where(r.c.assessment_id == assessment_id,
                                                    r.c.action == "correct")).scalar_one()
    return int(count) + 1


def _care_result(conn: Connection, assessment_id: str) -> dict[str, Any] | None:
    ca = CareAssessment.__table__
    value = conn.execute(select(ca.c.result).where(ca.c.assessment_id == assessment_id)).scalar()
    return dict(value) if isinstance(value, Mapping) else None


def _snapshot(conn: Connection, actor: Actor, row: Any, action: str, reason: str,
              at: dt.datetime) -> None:
    conn.execute(AssessmentRevision.__table__.insert().values(
        assessment_id=row.row_key, version=_next_version(conn, row.row_key), action=action,
        answers=dict(row.answers or {}), score=row.score,
        subscores=dict(row.subscores) if isinstance(row.subscores, Mapping) else None,
        band=row.band, result=_care_result(conn, row.row_key), reason=reason,
        changed_by=actor.user, role=actor.role, unit_id=actor.unit_id, changed_at=at))


def correct_assessment(conn: Connection, actor: Actor, assessment_id: str,
                       answers: Mapping[str, Any], reason: str | None, *,
                       now: dt.datetime | None = None) -> dict[str, Any]:
    """Replace the answers of an assessment (re-scored, flags re-evaluated), keeping the
    previous version. Returns :func:`assessment_history` of the corrected assessment.

    Raises :class:`NotFound` / ``PersonNotFound`` (404), ``AccessDenied`` (403) or
    :class:`CareError` (reason missing, invalid answers naming the item, voided).
    """
    from utfall.care.capture import _stored_answers, check_answers, instrument_of
    from utfall.care.flags import reevaluate_flags
    from utfall.care.limits import check_answer_sizes
    from utfall.instruments import InvalidAnswersError, score

    row = _load(conn, assessment_id)
    _check_change(conn, actor, row)
    text = _reason(reason)
    check_answer_sizes(answers)
    definition = instrument_of(row.instrument)
    check_answers(definition, answers)
    person = get_person(conn, row.person_key)
    try:
        result = score(definition, answers, sex=person.sex,
                       age=age_on(person.birth_date, row.date))
    except InvalidAnswersError as exc:
        raise CareError("invalid_answers", f"ogiltiga svar i {definition.id}",
                        f"invalid answers to {definition.id}",
                        [Issue(p.link_id, p.code, p.sv, p.en) for p in exc.problems]) from None
    at = now_utc(now)
    version = _next_version(conn, assessment_id) + 1
    with conn.begin_nested():
        access(conn, actor, row.person_key, "change",
               {"what": "assessment_corrected", "assessment_id": assessment_id,
                "instrument": row.instrument, "version": version})
        _snapshot(conn, actor, row, "correct", text, at)
        a = Assessment.__table__
        conn.execute(update(a).where(a.c.row_key == assessment_id).values(
            answers=_stored_answers(definition, answers, result.items),
            score=None if result.total is None else float(result.total),
            subscores=dict(result.subscales), band=result.band))
        ca = CareAssessment.__table__
        conn.execute(update(ca).where(ca.c.assessment_id == assessment_id).values(
            instrument_version=definition.version,
            result={"prorated": result.prorated, "missing": result.missing,
                    "flags": result.flags, "transformed": result.transformed,
                    "transform_id": result.transform_id,
                    "band_provisional": result.band_provisional}))
        reevaluate_flags(conn, assessment_id=assessment_id, person_key=row.person_key,
                         unit_id=row.unit_id, instrument=row.instrument,
                         flag_ids=result.flags, actor=actor, now=at)
    return _history(conn, assessment_id)


def void_assessment(conn: Connection, actor: Actor, assessment_id: str, reason: str | None,
                    *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Void an assessment with a reason: kept and shown in its history, left out of
    the timeline, schedules and indicators; its open flags are withdrawn."""
    from utfall.care.flags import reevaluate_flags

    row = _load(conn, assessment_id)
    _check_change(conn, actor, row)
    text = _reason(reason)
    at = now_utc(now)
    with conn.begin_nested():
        access(conn, actor, row.person_key, "change",
               {"what": "assessment_voided", "assessment_id": assessment_id,
                "instrument": row.instrument})
        conn.execute(AssessmentVoid.__table__.insert().values(
            assessment_id=assessment_id, reason=text, voided_by=actor.user, role=actor.role,
            voided_at=at))
        reevaluate_flags(conn, assessment_id=assessment_id, person_key=row.person_key,
                         unit_id=row.unit_id, instrument=row.instrument, flag_ids=None,
                         actor=actor, now=at)
    return _history(conn, assessment_id)


# ------------------------------------------------------------------ history


def _band_label(instrument: str, band: str | None) -> dict[str, str] | None:
    if band is None:
        return None
    from utfall.instruments import UnknownInstrumentError, get_instrument

    try:
        definition = get_instrument(instrument)
    except UnknownInstrumentError:
        return None
    for band_set in definition.bands:
        for b in band_set.bands:
            if b.id == band:
                return {"sv": b.label.sv, "en": b.label.en}
    return None


def answer_rows(instrument: str, answers: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each item of the instrument with its question and the answer in words
    (``{"item", "text": {sv, en}, "value", "answer": {sv, en} | None}``)."""
    from utfall.instruments import UnknownInstrumentError, get_instrument

    try:
        definition = get_instrument(instrument)
    except UnknownInstrumentError:
        return [{"item": k, "text": {"sv": k, "en": k}, "value": v, "answer": None}
                for k, v in answers.items()]
    out = []
    for item in definition.items:
        value = answers.get(item.linkId)
        answer = None
        for option in getattr(item, "answerOption", None) or ():
            if option.value == value:
                answer = {"sv": f"{value} – {option.display.sv}",
                          "en": f"{value} – {option.display.en}"}
        if answer is None and value is not None:
            if item.type == "boolean":
                answer = {"sv": "Ja" if value else "Nej", "en": "Yes" if value else "No"}
            else:
                unit = getattr(item, "unit", None)
                answer = {"sv": f"{value} {unit.sv}" if unit else str(value),
                          "en": f"{value} {unit.en}" if unit else str(value)}
        out.append({"item": item.linkId, "text": {"sv": item.text.sv, "en": item.text.en},
                    "value": value, "answer": answer})
    return out


def _version(instrument: str, *, answers: Any, score: Any, band: Any) -> dict[str, Any]:
    given = dict(answers or {})
    return {"answers": given, "answer_rows": answer_rows(instrument, given),
            "score": score, "band": band, "band_label": _band_label(instrument, band)}


def _changes(instrument: str, before: Mapping[str, Any], after: Mapping[str, Any]
             ) -> list[dict[str, Any]]:
    """Items whose answer differs: question, number, answer before and after (in words)."""
    rows_before = {r["item"]: r for r in answer_rows(instrument, before)}
    out = []
    for n, row in enumerate(answer_rows(instrument, after), start=1):
        old = rows_before.get(row["item"])
        if old is not None and old["value"] != row["value"]:
            out.append({"item": row["item"], "number": n, "text": row["text"],
                        "before": old["answer"], "after": row["answer"]})
    return out


def _history(conn: Connection, assessment_id: str) -> dict[str, Any]:
    from utfall.care.flags import flag_history, instrument_title

    row = _load(conn, assessment_id)
    r = AssessmentRevision.__table__
    revisions = conn.execute(select(r).where(r.c.assessment_id == assessment_id)
                             .order_by(r.c.version, r.c.id)).all()
    void = conn.execute(select(AssessmentVoid.__table__).where(
        AssessmentVoid.assessment_id == assessment_id)).first()
    info = unit_info(conn, row.unit_id)
    previous = []
    for rev in revisions:
        previous.append({
            "version": rev.version, "action": rev.action,
            **_version(row.instrument, answers=rev.answers, score=rev.score, band=rev.band),
            "reason": rev.reason, "changed_by": rev.changed_by, "role": rev.role,
            "changed_at": as_utc(rev.changed_at).isoformat()})
    # what each correction changed: version n's answers against version n + 1's
    versions = [*previous, {"answers": dict(row.answers or {})}]
    for older, newer in zip(previous, versions[1:], strict=False):
        older["changes"] = _changes(row.instrument, older["answers"], newer["answers"])
    return {
        "assessment_id": row.row_key, "person_key": row.person_key,
        "instrument": row.instrument, "instrument_title": instrument_title(row.instrument),
        "date": row.date.isoformat(), "stage": row.stage, "source": row.source,
        "unit_id": row.unit_id, "unit_name": info.name if info else None,
        "status": "voided" if void else ("corrected" if previous else "original"),
        "current": {"version": len(previous) + 1,
                    **_version(row.instrument, answers=row.answers, score=row.score,
                               band=row.band)},
        "previous": list(reversed(previous)),
        "void": None if void is None else {
            "reason": void.reason, "voided_by": void.voided_by, "role": void.role,
            "voided_at": as_utc(void.voided_at).isoformat()},
        "flags": flag_history(conn, assessment_id),
    }


def assessment_history(conn: Connection, actor: Actor, assessment_id: str
                       ) -> dict[str, Any]:
    """The current version of an assessment, every earlier version (newest first) with
    who changed it, when and why, its void (if any) and its flags. Access-checked (the
    assessment must be in the actor's scope: own organisation or consented) and audited.
    """
    from utfall.access.policy import access_scope, filter_entries, unit_organisations

    row = _load(conn, assessment_id)
    grant = access(conn, actor, row.person_key, "read",
                   {"what": "assessment_history", "assessment_id": assessment_id})
    scope = access_scope(conn, actor, row.person_key, emergency=bool(grant.emergency))
    if not filter_entries([row], scope, unit_organisations(conn),
                          category_of=lambda _r: "assessments"):
        raise _not_found()
    return _history(conn, assessment_id)
