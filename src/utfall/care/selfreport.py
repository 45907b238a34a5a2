"""Single-use, signed, expiring self-report links for the person in care.

The token is an itsdangerous signature (secret key, own salt) over a random nonce
and the expiry; it carries no identity. The store keeps only its SHA-256 hash with
the enrolment, stage, instruments, expiry and ``used_at``. Submitting marks the row
used in the same transaction as the answers (an ``UPDATE … WHERE used_at IS NULL``,
so two concurrent submissions cannot both succeed).

Answers given step by step are kept server-side with the link
(``care_self_report_draft``: :func:`save_draft`, :func:`load_draft`) so the person can
leave and come back while the link is valid; the draft is deleted when the answers are
sent. :func:`is_submitted` tells other services (reminders) whether a link's answers
have arrived.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Connection, Row, delete, select, update

from utfall.access.audit import Actor
from utfall.care._common import (
    CareError,
    Issue,
    access,
    as_utc,
    get_enrolment,
    now_utc,
    person_actor,
)
from utfall.care.capture import check_answers, instrument_of, record_assessment
from utfall.care.enrolment import programme_of
from utfall.care.scheduling import base_stage, resolve_stage
from utfall.config import get_settings
from utfall.followup import STOCKHOLM
from utfall.instruments import InstrumentDefinition
from utfall.instruments.models import LocalText
from utfall.store.models_care import SelfReportToken
from utfall.store.models_goals import SelfReportDraft

SALT = "utfall.self-report.v1"
LOCALES = ("sv", "en")


class SelfReportRefused(CareError):
    """The link cannot be used (tampered, unknown, expired or already used)."""


_REFUSALS = {
    "tampered": ("Länken är ogiltig.", "The link is not valid."),
    "unknown": ("Länken är ogiltig.", "The link is not valid."),
    "expired": ("Länken har gått ut. Be din kontakt om en ny länk.",
                "The link has expired. Ask your contact for a new link."),
    "used": ("Formuläret är redan inskickat med den här länken.",
             "The questionnaire has already been sent with this link."),
}


def _refuse(code: str) -> SelfReportRefused:
    sv, en = _REFUSALS[code]
    return SelfReportRefused(f"self_report_{code}", sv, en)


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().effective_secret_key, salt=SALT)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_self_report_link(conn: Connection, actor: Actor, enrolment_id: str, stage: str, *,
                           valid_days: int = 14, instruments: list[str] | None = None,
                           locale: str = "sv", now: dt.datetime | None = None) -> str:
    """A signed single-use token for the person to answer ``stage`` (default: its
    instruments) within ``valid_days``. Show it to the person as a link or QR code."""
    if not 1 <= valid_days <= 90:
        raise CareError("invalid_validity", "giltighet ska vara 1–90 dagar",
                        "validity must be 1–90 days",
                        [Issue("valid_days", "out_of_range", str(valid_days), str(valid_days))])
    if locale not in LOCALES:
        raise CareError("invalid_locale", "språk ska vara sv eller en", "locale must be sv or en")
    from utfall.access.policy import require_person_access
    from utfall.care._common import require_own_organisation

    enrolment = get_enrolment(conn, enrolment_id)
    # relation to the person and the enrolment's own organisation, before anything else
    require_person_access(conn, actor, enrolment.person_key, "create")
    require_own_organisation(conn, actor, enrolment.unit_id)
    prog = programme_of(enrolment.programme)
    issued = now_utc(now)
    on_date = issued.astimezone(STOCKHOLM).date()
    resolved = resolve_stage(prog, enrolment.start_date, enrolment.end_date, stage, on_date)
    if resolved is None:
        ids = ", ".join(s.id for s in prog.stages)
        raise CareError("unknown_stage", f"okänt steg {stage!r} i {prog.id}",
                        f"unknown stage {stage!r} of {prog.id}",
                        [Issue("stage", "unknown_stage", f"tillåtna: {ids}", f"allowed: {ids}")])
    chosen = list(instruments or prog.stage(base_stage(resolved, prog)).instruments)
    if not chosen:
        raise CareError("no_instruments", "steget har inga formulär",
                        "the stage has no questionnaires")
    for instrument in chosen:
        instrument_of(instrument)
    expires = issued + dt.timedelta(days=valid_days)
    token = _serializer().dumps({"n": secrets.token_urlsafe(18),
                                 "x": int(expires.timestamp())})
    with conn.begin_nested():
        access(conn, actor, enrolment.person_key, "create",
               {"what": "self_report_link", "enrolment_id": enrolment_id, "stage": resolved,
                "instruments": chosen, "expires": expires.isoformat()})
        conn.execute(SelfReportToken.__table__.insert().values(
            token_hash=_hash(token), enrolment_id=enrolment_id,
            person_key=enrolment.person_key, stage=resolved, instruments=chosen,
            unit_id=enrolment.unit_id, locale=locale, issued_by=actor.user, issued_at=issued,
            expires_at=expires, used_at=None))
    return token


def _load(conn: Connection, token: str, now: dt.datetime) -> Row[Any]:
    """The token row of a valid, unexpired, unused token (else :class:`SelfReportRefused`)."""
    try:
        payload = _serializer().loads(token)
    except BadSignature:
        raise _refuse("tampered") from None
    if not isinstance(payload, dict) or "x" not in payload:
        raise _refuse("tampered")
    table = SelfReportToken.__table__
    row = conn.execute(select(table).where(table.c.token_hash == _hash(token))).first()
    if row is None:
        raise _refuse("unknown")
    if row.used_at is not None:
        raise _refuse("used")
    if now >= as_utc(row.expires_at) or now.timestamp() >= payload["x"]:
        raise _refuse("expired")
    return row


@dataclass(frozen=True)
class SelfReportForm:
    """What the person sees: the questionnaires and the language, no identity."""

    stage: str
    stage_title: LocalText
    programme_title: LocalText
    instruments: list[InstrumentDefinition]
    locale: str
    expires_at: dt.datetime
    token_id: int = 0
    unit_id: str = ""
    unit_name: str = ""
    municipality_code: str | None = None
    intake: bool = False  # the programme's first stage: goals are set, not reviewed


def open_self_report(conn: Connection, token: str, *, now: dt.datetime | None = None
                     ) -> SelfReportForm:
    """The form behind a token (audited as the person reading their own form)."""
    row = _load(conn, token, now_utc(now))
    enrolment = get_enrolment(conn, row.enrolment_id)
    prog = programme_of(enrolment.programme)
    access(conn, person_actor(row.person_key, row.unit_id), row.person_key, "read",
           {"what": "self_report_open", "token_id": row.id, "stage": row.stage})
    from utfall.store.models import Unit

    unit = conn.execute(select(Unit.name, Unit.municipality_code)
                        .where(Unit.unit_id == row.unit_id)).first()
    base = base_stage(row.stage, prog)
    return SelfReportForm(
        stage=row.stage, stage_title=prog.stage(base).title,
        programme_title=prog.title, instruments=[instrument_of(i) for i in row.instruments],
        locale=row.locale, expires_at=as_utc(row.expires_at), token_id=row.id,
        unit_id=row.unit_id, unit_name=unit[0] if unit else "",
        municipality_code=unit[1] if unit else None,
        intake=bool(prog.stages) and base == prog.stages[0].id)


def is_submitted(conn: Connection, token_or_id: str | int) -> bool:
    """Have the answers behind a link (signed token or ``care_self_report_token.id``)
    arrived? False for unknown links. For reminders: no audit, no personal data."""
    table = SelfReportToken.__table__
    if isinstance(token_or_id, int):
        cond = table.c.id == token_or_id
    else:
        cond = table.c.token_hash == _hash(token_or_id)
    used = conn.execute(select(table.c.used_at).where(cond)).first()
    return used is not None and used[0] is not None


def load_draft(conn: Connection, token: str, *, now: dt.datetime | None = None
               ) -> tuple[dict[str, dict[str, Any]], int]:
    """Answers saved so far behind a valid link (per instrument, plus ``_goals``) and
    the step reached; ``({}, 0)`` when nothing is saved. Raises :class:`SelfReportRefused`."""
    row = _load(conn, token, now_utc(now))
    table = SelfReportDraft.__table__
    draft = conn.execute(select(table).where(table.c.token_id == row.id)).first()
    if draft is None:
        return {}, 0
    return dict(draft.answers or {}), int(draft.step or 0)


def save_draft(conn: Connection, token: str, answers: Mapping[str, Any], step: int, *,
               now: dt.datetime | None = None) -> None:
    """Keep the answers given so far (not validated: errors are shown, nothing is lost)
    and the step reached, audited as the person writing their own data."""
    instant = now_utc(now)
    row = _load(conn, token, instant)
    text = str(dict(answers))
    if len(text) > 200_000:
        raise CareError("too_large", "för många eller för långa svar",
                        "too many or too long answers")
    table = SelfReportDraft.__table__
    with conn.begin_nested():
        access(conn, person_actor(row.person_key, row.unit_id), row.person_key, "create",
               {"what": "self_report_draft", "token_id": row.id, "step": step})
        done = conn.execute(update(table).where(table.c.token_id == row.id).values(
            answers=dict(answers), step=step, updated_at=instant))
        if done.rowcount == 0:
            conn.execute(table.insert().values(token_id=row.id, answers=dict(answers),
                                               step=step, updated_at=instant))


def raised_flags(answers: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Clinical flags the instrument engine raises for answers per instrument
    (instrument id → flag ids; instruments without flags left out)."""
    from utfall.instruments import score

    out: dict[str, list[str]] = {}
    for instrument, values in answers.items():
        try:
            flags = score(instrument_of(instrument), values).flags
        except Exception:  # invalid answers are refused elsewhere
            continue
        if flags:
            out[instrument] = list(flags)
    return out


def _split(instruments: list[str], answers: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    if set(answers) and set(answers) <= set(instruments) and all(
        isinstance(v, Mapping) for v in answers.values()
    ):
        return {i: answers.get(i, {}) for i in instruments}
    if len(instruments) == 1:
        return {instruments[0]: answers}
    raise CareError("answers_per_instrument", "ange svaren per formulär",
                    "give the answers per questionnaire",
                    [Issue(None, "answers_per_instrument", ", ".join(instruments),
                           ", ".join(instruments))])


def submit_self_report(conn: Connection, token: str, answers: Mapping[str, Any], *,
                       goals: Mapping[str, Any] | None = None,
                       now: dt.datetime | None = None) -> list[str]:
    """Validate, score and store the person's answers; the token is then used up.

    ``answers`` maps item linkIds to values (one questionnaire) or instrument ids to
    such maps. ``goals`` (optional) are the person's new goals and reviews of earlier
    ones (see :func:`utfall.care.goals.check_self_report_goals`), stored in the same
    transaction. Invalid answers raise :class:`CareError` and leave the token usable.
    """
    from utfall.care.goals import check_self_report_goals, record_self_report_goals

    instant = now_utc(now)
    row = _load(conn, token, instant)
    per_instrument = _split(list(row.instruments), answers)
    for instrument, values in per_instrument.items():
        check_answers(instrument_of(instrument), values)
    checked_goals = check_self_report_goals(conn, row.person_key, goals or {})
    actor = person_actor(row.person_key, row.unit_id)
    on_date = instant.astimezone(STOCKHOLM).date()
    table = SelfReportToken.__table__
    ids: list[str] = []
    with conn.begin_nested():
        claimed = conn.execute(update(table).where(table.c.id == row.id,
                                                   table.c.used_at.is_(None))
                               .values(used_at=instant))
        if claimed.rowcount != 1:
            raise _refuse("used")
        for instrument, values in per_instrument.items():
            ids.append(record_assessment(
                conn, actor, row.person_key, instrument, values, stage=row.stage,
                enrolment_id=row.enrolment_id, unit_id=row.unit_id, on_date=on_date,
                source="self_report", token_id=row.id))
        record_self_report_goals(conn, actor, row.person_key, row.unit_id, row.enrolment_id,
                                 row.stage, checked_goals, now=instant)
        conn.execute(delete(SelfReportDraft.__table__).where(
            SelfReportDraft.__table__.c.token_id == row.id))
    return ids
