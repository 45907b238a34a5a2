"""Store models of the person's own side (migration 0012_selfreport_goals).

* ``care_self_report_draft`` – answers saved step by step behind a self-report link
  (save-and-return within the link's validity); deleted when the answers are sent.
* ``care_goal`` / ``care_goal_review`` – the person's own goals (free text + life
  domain) and their review at each follow-up (achieved / partly / not / changed).
* ``care_own_view_link`` – a revocable personal link to the person's own view; only a
  hash of the signed token is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from utfall.store.models import PERSON_KEY, Base


class SelfReportDraft(Base):
    """Answers given so far behind one self-report link, and the step reached."""

    __tablename__ = "care_self_report_draft"
    token_id: Mapped[int] = mapped_column(Integer, ForeignKey("care_self_report_token.id"),
                                          primary_key=True)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    step: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Goal(Base):
    """One of the person's own goals."""

    __tablename__ = "care_goal"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    unit_id: Mapped[str] = mapped_column(String(64))
    enrolment_id: Mapped[str | None] = mapped_column(String(40))
    domain: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))  # staff / self_report
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class GoalReview(Base):
    """A goal's status at a follow-up, by the person or the clinician."""

    __tablename__ = "care_goal_review"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    goal_id: Mapped[int] = mapped_column(Integer, ForeignKey("care_goal.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))  # achieved / partly / not / changed
    stage: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))  # staff / self_report
    unit_id: Mapped[str] = mapped_column(String(64))
    reviewed_by: Mapped[str] = mapped_column(String(100))
    reviewed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class OwnViewLink(Base):
    """A revocable personal link to the person's own view."""

    __tablename__ = "care_own_view_link"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    unit_id: Mapped[str] = mapped_column(String(64))
    issued_by: Mapped[str] = mapped_column(String(100))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(100))
