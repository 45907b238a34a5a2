"""The person's own view behind a separate, revocable personal link.

Staff issue the link (:func:`issue_own_view_link`) and revoke every link of the person
(:func:`revoke_own_view_links`) through the access policy and the audit. Opening it
(:func:`open_own_view`) is a read audited with the person as the actor. It shows the
person's questionnaire results over time on each instrument's own scale with the bands
in plain words, the life-situation profile, and their own goals with status — only what
the issuing unit's organisation recorded, plus what the person lets it see from other
principals (consent); never enrolments, contacts, diagnoses or programme names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Connection, select, update

from utfall.access.audit import Actor
from utfall.care._common import CareError, Issue, access, as_utc, now_utc, person_actor
from utfall.care.goals import GoalView, visible_goals
from utfall.config import get_settings
from utfall.store.models_goals import OwnViewLink

SALT = "utfall.own-view.v1"


class OwnViewRefused(CareError):
    """The own-view link cannot be used (tampered, unknown, revoked or expired)."""


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().effective_secret_key, salt=SALT)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_own_view_link(conn: Connection, actor: Actor, person_key: str, *,
                        valid_days: int = 365, now: dt.datetime | None = None) -> str:
    """A new personal link for the person's own view (staff at their unit)."""
    if not 1 <= valid_days <= 730:
        raise CareError("invalid_validity", "giltighet ska vara 1–730 dagar",
                        "validity must be 1–730 days",
                        [Issue("valid_days", "out_of_range", str(valid_days), str(valid_days))])
    issued = now_utc(now)
    expires = issued + dt.timedelta(days=valid_days)
    token = _serializer().dumps({"n": secrets.token_urlsafe(18), "v": 1})
    with conn.begin_nested():
        access(conn, actor, person_key, "create",
               {"what": "own_view_link", "expires": expires.isoformat()})
        conn.execute(OwnViewLink.__table__.insert().values(
            token_hash=_hash(token), person_key=person_key, unit_id=actor.unit_id or "",
            issued_by=actor.user, issued_at=issued, expires_at=expires))
    return token


def own_view_links(conn: Connection, actor: Actor, person_key: str) -> list[dict[str, Any]]:
    """The person's own-view links (no tokens: only when issued, expiry, revoked)."""
    access(conn, actor, person_key, "read", {"what": "own_view_links"})
    t = OwnViewLink.__table__
    return [{"id": r.id, "issued_at": as_utc(r.issued_at), "expires_at": as_utc(r.expires_at),
             "revoked_at": as_utc(r.revoked_at) if r.revoked_at else None,
             "issued_by": r.issued_by, "unit_id": r.unit_id}
            for r in conn.execute(select(t).where(t.c.person_key == person_key)
                                  .order_by(t.c.issued_at.desc()))]


def revoke_own_view_links(conn: Connection, actor: Actor, person_key: str, *,
                          now: dt.datetime | None = None) -> int:
    """Revoke every active own-view link of the person at once; returns how many."""
    instant = now_utc(now)
    t = OwnViewLink.__table__
    with conn.begin_nested():
        access(conn, actor, person_key, "change", {"what": "own_view_link_revoke"})
        done = conn.execute(update(t).where(t.c.person_key == person_key,
                                            t.c.revoked_at.is_(None))
                            .values(revoked_at=instant, revoked_by=actor.user))
    return int(done.rowcount or 0)


@dataclass
class Series:
    """One instrument's results over time on its own scale."""

    instrument: str
    title: dict[str, str]
    low: float
    high: float
    direction: str
    points: list[dict[str, Any]]  # {date, value, band, band_label, percent}
    bands: list[dict[str, Any]]  # {id, min, max, label}


@dataclass
class OwnView:
    """What the person sees in their own view."""

    unit_name: str
    municipality_code: str | None
    series: list[Series] = field(default_factory=list)
    profile: list[dict[str, Any]] = field(default_factory=list)
    goals: list[GoalView] = field(default_factory=list)


def _load(conn: Connection, token: str, now: dt.datetime) -> Any:
    try:
        _serializer().loads(token)
    except BadSignature:
        raise OwnViewRefused("own_view_invalid", "Länken är ogiltig.",
                             "The link is not valid.") from None
    t = OwnViewLink.__table__
    row = conn.execute(select(t).where(t.c.token_hash == _hash(token))).first()
    if row is None:
        raise OwnViewRefused("own_view_invalid", "Länken är ogiltig.", "The link is not valid.")
    if row.revoked_at is not None or now >= as_utc(row.expires_at):
        raise OwnViewRefused("own_view_closed", "Länken gäller inte längre.",
                             "The link is no longer valid.")
    return row


@cache
def _plain() -> dict[str, dict[str, dict[str, str]]]:
    text = resources.files("utfall.content").joinpath("own_view/bands.yaml").read_text("utf-8")
    data: dict[str, dict[str, dict[str, str]]] = yaml.safe_load(text) or {}
    return data


def plain_band(instrument: str, band: str | None) -> dict[str, str] | None:
    """The band in plain words for the person (None: no plain text, nothing shown —
    clinical band labels are never shown on a link's screen)."""
    if band is None:
        return None
    return _plain().get(instrument, {}).get(str(band))


def _bands(definition: Any, sex: str | None, age: int | None) -> list[dict[str, Any]]:
    for band_set in definition.bands:
        if band_set.when.matches(sex, age):
            low, high = (definition.scale_range(definition.scoring.total)
                         if band_set.measure == "total" else (0.0, 100.0))
            return [{"id": b.id, "min": low if b.min is None else b.min,
                     "max": high if b.max is None else b.max,
                     "label": plain_band(definition.id, b.id),
                     "ranged": band_set.measure == "total"}
                    for b in band_set.bands if plain_band(definition.id, b.id)]
    return []


def open_own_view(conn: Connection, token: str, *, now: dt.datetime | None = None) -> OwnView:
    """The person's own view behind a valid link (audited, the person as actor)."""
    from utfall.access.policy import (
        AccessScope,
        filter_entries,
        shared_categories,
        unit_organisations,
    )
    from utfall.care.timeline import LIFE_SITUATION, domain_profile, timeline
    from utfall.instruments import get_instrument
    from utfall.store.models import Unit

    instant = now_utc(now)
    row = _load(conn, token, instant)
    actor = person_actor(row.person_key, row.unit_id)
    tl = timeline(conn, actor, row.person_key)  # audited: the person reads their own data
    access(conn, actor, row.person_key, "read", {"what": "own_view", "link_id": row.id})
    orgs = unit_organisations(conn)
    org = orgs.get(row.unit_id)
    scope = AccessScope(row.person_key, org,
                        shared=shared_categories(conn, row.person_key, org) if org else {})
    assessments = filter_entries(tl.assessments, scope, orgs)
    unit = conn.execute(select(Unit.name, Unit.municipality_code)
                        .where(Unit.unit_id == row.unit_id)).first()
    view = OwnView(unit_name=unit[0] if unit else "",
                   municipality_code=unit[1] if unit else None)
    age = instant.year - tl.birth_year
    by_instrument: dict[str, list[Any]] = {}
    for a in assessments:
        if a.score is not None:
            by_instrument.setdefault(a.instrument, []).append(a)
    for instrument, entries in by_instrument.items():
        definition = get_instrument(instrument)
        total = definition.scoring.total
        if total is None:
            continue
        low, high = definition.scale_range(total)
        points = [{"date": a.date, "value": a.score, "band": a.band,
                   "band_label": plain_band(instrument, a.band),
                   "percent": round(100 * (a.score - low) / (high - low), 1) if high > low
                   else 0.0} for a in entries]
        view.series.append(Series(
            instrument=instrument, title=definition.title.model_dump(), low=low, high=high,
            direction=total.direction or definition.scoring.direction, points=points,
            bands=_bands(definition, tl.sex, age)))
    latest: dict[str, Any] = {}
    for p in domain_profile(assessments):
        if p.instrument == LIFE_SITUATION and p.measure != "total":
            previous = latest.get(p.measure)
            latest[p.measure] = {"measure": p.measure, "label": p.label.model_dump(),
                                 "value": p.value, "percent": p.percent, "date": p.date,
                                 "direction": p.direction,
                                 "previous": previous["value"] if previous else None}
    view.profile = list(latest.values())
    view.goals = visible_goals(conn, scope, row.person_key)
    return view
