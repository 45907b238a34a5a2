"""Store models of staff training records per unit (migration 0015_training).

A record says that a staff member (a pseudonymous staff reference chosen by the region,
never a personal identity number) works at a unit and, optionally, completed a course
of the training catalogue (``content/training/courses.yaml``) on a date. Staff without
any course have one row without ``course_id``: the unit's staff count is the number of
distinct staff references.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from utfall.store.models import Base


class TrainingRecord(Base):
    """One staff member at a unit, with one completed course (or none)."""

    __tablename__ = "training_record"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("unit.unit_id"), index=True)
    staff_ref: Mapped[str] = mapped_column(String(64))
    course_id: Mapped[str | None] = mapped_column(String(40))
    completed_on: Mapped[dt.date | None] = mapped_column(Date)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(255))
