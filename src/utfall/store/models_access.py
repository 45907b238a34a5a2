"""Store models of the access layer: accounts, unit memberships, consents, SIP,
web sessions, login attempts and documented audit-log reviews (migration 0003)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from utfall.store.models import PERSON_KEY, Base


class UserAccount(Base):
    """A user. ``password_hash`` is argon2 for local accounts, None for external (OIDC)
    accounts, which are matched on ``(identity_provider, external_subject)``."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(40))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    identity_provider: Mapped[str] = mapped_column(String(100), default="local")
    external_subject: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # migration 0006_accounts
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class UserUnit(Base):
    """A user's membership of a unit (users act within their units only)."""

    __tablename__ = "app_user_unit"
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("unit.unit_id"), primary_key=True)


class Consent(Base):
    """A person's consent that data of ``categories`` may pass from one organisation
    (principal) to another, valid ``valid_from``..``valid_to`` until revoked."""

    __tablename__ = "consent"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, ForeignKey("person.person_key"),
                                            index=True)
    from_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    to_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    categories: Mapped[list[Any]] = mapped_column(JSON)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    form: Mapped[str] = mapped_column(String(20), default="written")  # written / oral
    sip_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_unit_id: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(100))


class SipPlan(Base):
    """A coordinated individual plan (SIP): interventions per principal and who holds
    overall responsibility. Sharing under it still needs a :class:`Consent`."""

    __tablename__ = "sip_plan"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, ForeignKey("person.person_key"),
                                            index=True)
    responsible_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    interventions: Mapped[list[Any]] = mapped_column(JSON)  # [{organisation_id, text}]
    goals: Mapped[str | None] = mapped_column(Text)
    meeting_date: Mapped[dt.date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(100))
    created_unit_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A login session; the cookie holds a random token, the table only its hash."""

    __tablename__ = "web_session"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(token)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    unit_id: Mapped[str | None] = mapped_column(String(64))
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginAttempt(Base):
    """Every login attempt (for rate limiting, lock-out and review)."""

    __tablename__ = "login_attempt"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    client: Mapped[str | None] = mapped_column(String(100), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    success: Mapped[bool] = mapped_column(Boolean)
    # migration 0006_accounts: ok / invalid / backoff / rate_limited; hashed device cookie
    outcome: Mapped[str | None] = mapped_column(String(20))
    device: Mapped[str | None] = mapped_column(String(64), index=True)


class AuditReview(Base):
    """A documented review of a sample of the access log (HSLF-FS 2016:40)."""

    __tablename__ = "audit_review"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    reviewer_unit_id: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    period_from: Mapped[dt.date] = mapped_column(Date)
    period_to: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"every_k":..,"random":..,"seed":..}
    event_ids: Mapped[list[Any]] = mapped_column(JSON)
    findings: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(20))  # ok / remarks / incident


Index("ix_consent_orgs", Consent.from_organisation_id, Consent.to_organisation_id)
