"""Tables of invitations and reminders (``utfall.messaging``).

``message_link`` keeps, for a self-report link that may be sent, its URL encrypted
(Fernet, the identity-number key): a reminder must carry the link, and the store
otherwise keeps only its hash. ``message_invitation`` is one recipient of a link (the
address encrypted, for reminders; a keyed hash and a masked form for the log).
``message_log`` records every message sent or attempted, without content: no
identity number, no answers, no link, no address in clear. Secrets are erased as
soon as the link is answered or has closed.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from utfall.store.models import PERSON_KEY, Base


class MessageLink(Base):
    """A self-report link that can be shown as a QR code or sent (URL encrypted)."""

    __tablename__ = "message_link"
    token_id: Mapped[int] = mapped_column(ForeignKey("care_self_report_token.id"),
                                          primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    unit_id: Mapped[str] = mapped_column(String(64))
    link_enc: Mapped[str | None] = mapped_column(Text)  # None once closed
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class MessageInvitation(Base):
    """One recipient of a link by e-mail or SMS; reminders follow until answered."""

    __tablename__ = "message_invitation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("care_self_report_token.id"), index=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    unit_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(10))  # email / sms
    recipient_enc: Mapped[str | None] = mapped_column(Text)  # None once closed
    recipient_hash: Mapped[str] = mapped_column(String(64))
    recipient_masked: Mapped[str] = mapped_column(String(80))
    locale: Mapped[str] = mapped_column(String(5))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    stop_reason: Mapped[str | None] = mapped_column(String(20))  # answered / closed


class MessageLog(Base):
    """One message sent or attempted: what kind, when, to whom (hashed/masked), outcome."""

    __tablename__ = "message_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("message_invitation.id"), index=True)
    token_id: Mapped[int] = mapped_column(Integer, index=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    unit_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # invitation / reminder
    slot: Mapped[int] = mapped_column(Integer)  # reminder: days before closing; invitation 0
    channel: Mapped[str] = mapped_column(String(10))
    recipient_hash: Mapped[str] = mapped_column(String(64))
    recipient_masked: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(10))  # sent / failed
    error: Mapped[str | None] = mapped_column(String(200))
    sent_by: Mapped[str] = mapped_column(String(100))
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
