"""Tables of clinical flags and assessment corrections (``utfall.care.flags``,
``utfall.care.corrections``).

* ``care_flag`` – one flag an instrument raised on one assessment (e.g. PHQ-9 item 9
  answered > 0), open until a clinician acknowledges it with a note, or withdrawn when
  a correction or void removes it.
* ``care_self_report_seen`` – a self-report a care worker has marked as seen (inbox).
* ``care_assessment_revision`` – the previous version of a corrected or voided
  assessment (answers, score, band, result), with who, when and why.
* ``care_assessment_void`` – voided assessments (excluded from indicators and
  schedules; still shown, marked, in the history).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from utfall.store.models import PERSON_KEY, Base

ROW_KEY = String(40)


class CareFlag(Base):
    """A clinical flag raised by an assessment; open until acknowledged."""

    __tablename__ = "care_flag"
    __table_args__ = (UniqueConstraint("assessment_id", "flag_id", name="uq_care_flag"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assessment_id: Mapped[str] = mapped_column(ROW_KEY, ForeignKey("assessment.row_key"),
                                               index=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    unit_id: Mapped[str | None] = mapped_column(String(64), index=True)
    instrument: Mapped[str] = mapped_column(String(40))
    flag_id: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20), index=True)  # open/acknowledged/withdrawn
    raised_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(100))
    closed_role: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)


class SelfReportSeen(Base):
    """A self-reported assessment marked as seen by a care worker (leaves the inbox)."""

    __tablename__ = "care_self_report_seen"
    assessment_id: Mapped[str] = mapped_column(ROW_KEY, ForeignKey("assessment.row_key"),
                                               primary_key=True)
    seen_by: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(40))
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AssessmentRevision(Base):
    """The version of an assessment before a correction or void."""

    __tablename__ = "care_assessment_revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assessment_id: Mapped[str] = mapped_column(ROW_KEY, ForeignKey("assessment.row_key"),
                                               index=True)
    version: Mapped[int] = mapped_column(Integer)  # 1 = as first recorded
    action: Mapped[str] = mapped_column(String(10))  # correct / void
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    subscores: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    band: Mapped[str | None] = mapped_column(String(40))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(40))
    unit_id: Mapped[str | None] = mapped_column(String(64))
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AssessmentVoid(Base):
    """A voided assessment: kept, shown as voided, left out of indicators and schedules."""

    __tablename__ = "care_assessment_void"
    assessment_id: Mapped[str] = mapped_column(ROW_KEY, ForeignKey("assessment.row_key"),
                                               primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    voided_by: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(40))
    voided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
