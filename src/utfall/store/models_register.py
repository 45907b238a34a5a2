"""Store models of register exports and the delivery log (migration 0008_register)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from utfall.store.models import Base


class RegisterExport(Base):
    """One export to a register: its manifest hash and, later, the receipt."""

    __tablename__ = "register_export"
    export_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    register: Mapped[str] = mapped_column(String(40))
    mapping_version: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(20))  # full / incremental / since
    since: Mapped[dt.date | None] = mapped_column(Date)
    as_of: Mapped[dt.date] = mapped_column(Date)
    format: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    forms: Mapped[int] = mapped_column(Integer)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    receipt_status: Mapped[str | None] = mapped_column(String(20))
    receipt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    receipt_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class RegisterDelivery(Base):
    """One form sent: which, for whom, when, with which content hash."""

    __tablename__ = "register_delivery"
    __table_args__ = (Index("ix_register_delivery_form", "register", "form_key"),
                      Index("ix_register_delivery_export", "export_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    export_id: Mapped[str] = mapped_column(ForeignKey("register_export.export_id"))
    register: Mapped[str] = mapped_column(String(40))
    form_key: Mapped[str] = mapped_column(String(64))
    form: Mapped[str] = mapped_column(String(40))
    person_key: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[str] = mapped_column(String(64))
    trigger_date: Mapped[dt.date] = mapped_column(Date)
    content_hash: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(10))
    delivered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    rejected: Mapped[bool] = mapped_column(Boolean, default=False)
