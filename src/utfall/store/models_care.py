"""Tables of the follow-up service layer (``utfall.care``).

They extend the foundation tables without changing them: an enrolment made in
Utfall gets a ``care_enrolment`` row (responsible worker, municipal unit), its
phase changes (``care_phase_event``), who owns each stage
(``care_stage_owner``), capture metadata of an assessment (``care_assessment``)
and single-use self-report links (``care_self_report_token``). Enrolments and
assessments imported from extracts have none of these rows; the services treat
that as "no history recorded".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from utfall.store.models import PERSON_KEY, Base

ROW_KEY = String(40)


class CareEnrolment(Base):
    """Service-layer data of an enrolment made in Utfall (not of imported ones)."""

    __tablename__ = "care_enrolment"
    enrolment_id: Mapped[str] = mapped_column(ROW_KEY, ForeignKey("enrolment.row_key"),
                                              primary_key=True)
    responsible_worker: Mapped[str | None] = mapped_column(String(100))
    municipal_unit_id: Mapped[str | None] = mapped_column(ForeignKey("unit.unit_id"), index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CarePhaseEvent(Base):
    """One phase change of an enrolment: who, when, why and the facts given."""

    __tablename__ = "care_phase_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enrolment_id: Mapped[str] = mapped_column(ROW_KEY, ForeignKey("enrolment.row_key"),
                                              index=True)
    from_phase: Mapped[str | None] = mapped_column(String(40))
    to_phase: Mapped[str] = mapped_column(String(40))
    on_date: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(40))
    unit_id: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CareStageOwner(Base):
    """Who is responsible for one stage of an enrolment: principal, unit and worker."""

    __tablename__ = "care_stage_owner"
    __table_args__ = (UniqueConstraint("enrolment_id", "stage", name="uq_care_stage_owner"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enrolment_id: Mapped[str] = mapped_column(ROW_KEY, ForeignKey("enrolment.row_key"),
                                              index=True)
    stage: Mapped[str] = mapped_column(String(40))
    responsible: Mapped[str] = mapped_column(String(40))  # region_unit / municipal_… / person
    principal_type: Mapped[str] = mapped_column(String(20))  # region / municipality / private
    unit_id: Mapped[str | None] = mapped_column(ForeignKey("unit.unit_id"), index=True)
    worker: Mapped[str | None] = mapped_column(String(100))
    assigned_by: Mapped[str] = mapped_column(String(100))
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CareAssessment(Base):
    """Capture metadata of an assessment recorded in Utfall."""

    __tablename__ = "care_assessment"
    assessment_id: Mapped[str] = mapped_column(ROW_KEY, ForeignKey("assessment.row_key"),
                                               primary_key=True)
    enrolment_id: Mapped[str | None] = mapped_column(ROW_KEY, ForeignKey("enrolment.row_key"),
                                                     index=True)
    instrument_version: Mapped[str] = mapped_column(String(20))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)  # prorated, missing, flags, transformed
    recorded_by: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("care_self_report_token.id"))


class SelfReportToken(Base):
    """A single-use self-report link; only a hash of the signed token is stored."""

    __tablename__ = "care_self_report_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    enrolment_id: Mapped[str] = mapped_column(ROW_KEY, ForeignKey("enrolment.row_key"),
                                              index=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    stage: Mapped[str] = mapped_column(String(40))
    instruments: Mapped[list[Any]] = mapped_column(JSON)
    unit_id: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(5))
    issued_by: Mapped[str] = mapped_column(String(100))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
