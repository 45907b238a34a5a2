"""Store models of care relations and emergency accesses (migration 0005_care_relation).

A care relation (vårdrelation / SoL-ärende) is data: which unit has a relation with
which person, from when to when, on what basis and who recorded it. Emergency
accesses (PDL nödåtkomst) are stored with their reason and a fixed end.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from utfall.store.models import PERSON_KEY, Base


class CareRelation(Base):
    """A unit's care relation with a person for ``valid_from``..``valid_to``."""

    __tablename__ = "care_relation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, ForeignKey("person.person_key"),
                                            index=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("unit.unit_id"))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    # registration / enrolment / referral / sip / assignment / imported_contacts
    basis: Mapped[str] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_unit_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_by: Mapped[str | None] = mapped_column(String(100))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class EmergencyAccess(Base):
    """A time-boxed emergency access of one user to one person (PDL, health care)."""

    __tablename__ = "emergency_access"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, ForeignKey("person.person_key"),
                                            index=True)
    username: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(40))
    unit_id: Mapped[str] = mapped_column(String(64), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    reason: Mapped[str] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


Index("ix_care_relation_unit", CareRelation.unit_id, CareRelation.person_key)
