"""Invitations and reminders of self-report links: QR code, e-mail, SMS.

A link issued on a page or through the API is *remembered* (its URL encrypted) so it
can be shown as a QR code and sent. Sending an invitation stores the recipient
encrypted (for reminders) and logs the message without content. Reminders fall due
``UTFALL_REMINDER_DAYS_BEFORE`` days before the link closes and are sent by
``utfall reminders send`` (cron); none is sent once the answers have arrived, after
the link has closed, or outside 08–20 Stockholm time. Answered or closed links have
their URL and recipients erased.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import Connection, Engine, Row, select, update

from utfall.access.audit import Actor
from utfall.care._common import CareError, Issue, NotFound, access, as_utc, now_utc, unit_info
from utfall.config import Settings, get_settings
from utfall.domain.formats import format_date, format_time
from utfall.followup import STOCKHOLM
from utfall.i18n import t
from utfall.messaging.addresses import AddressError, mask, normalise, recipient_hash
from utfall.store.models_care import SelfReportToken
from utfall.store.models_messages import MessageInvitation, MessageLink, MessageLog

CHANNELS = ("email", "sms")
REMINDER_ACTOR = Actor("reminders", "system")
QUIET_BEFORE, QUIET_AFTER = 8, 20  # send reminders between 08:00 and 20:00 Stockholm time
MIN_HOURS_AFTER_INVITATION = 12  # a reminder falling due sooner after the invitation is skipped
MAX_FAILURES = 3  # attempts per reminder before giving up


class LinkClosed(CareError):
    """The link is answered or has closed (or was never remembered): nothing is sent."""


def _fernet(settings: Settings | None = None) -> Fernet:
    return Fernet((settings or get_settings()).effective_encryption_key)


def _encrypt(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode()


def _decrypt(text: str) -> str:
    return _fernet().decrypt(text.encode()).decode()


# ------------------------------------------------------------------ link state


def link_answered(conn: Connection, token_id: int) -> bool:
    """Whether the person's answers behind the link have arrived.

    Uses the self-report service's own answer (``care.selfreport.is_submitted``:
    a saved draft is not an answer); failing that, a submitted link is one marked used.
    """
    from utfall.care import selfreport

    helper = getattr(selfreport, "is_submitted", None)
    if callable(helper):
        return bool(helper(conn, token_id))
    table = SelfReportToken.__table__
    used = conn.execute(select(table.c.used_at).where(table.c.id == token_id)).first()
    return used is not None and used.used_at is not None


def _token_row(conn: Connection, token_id: int) -> Row[Any]:
    table = SelfReportToken.__table__
    row = conn.execute(select(table).where(table.c.id == token_id)).first()
    if row is None:
        raise NotFound("link_not_found", "länken finns inte", "no such link")
    return row


def link_state(conn: Connection, token_id: int, now: dt.datetime | None = None) -> str:
    """``open``, ``answered`` or ``closed`` (expired)."""
    row = _token_row(conn, token_id)
    if link_answered(conn, token_id):
        return "answered"
    if now_utc(now) >= as_utc(row.expires_at):
        return "closed"
    return "open"


def remember_link(conn: Connection, actor: Actor, token: str, base_url: str,
                  *, now: dt.datetime | None = None) -> int:
    """Keep the URL of a just-issued link (encrypted) so it can be shown as a QR code
    and sent; returns the link id. Called in the transaction that issued it."""
    table = SelfReportToken.__table__
    digest = hashlib.sha256(token.encode()).hexdigest()  # as care.selfreport stores it
    row = conn.execute(select(table.c.id, table.c.person_key, table.c.unit_id)
                       .where(table.c.token_hash == digest)).one()
    url = base_url.rstrip("/") + f"/r/{token}"
    conn.execute(MessageLink.__table__.insert().values(
        token_id=row.id, person_key=row.person_key, unit_id=row.unit_id,
        link_enc=_encrypt(url), created_by=actor.user, created_at=now_utc(now)))
    return int(row.id)


def _link(conn: Connection, person_key: str, link_id: int) -> Row[Any]:
    table = MessageLink.__table__
    row = conn.execute(select(table).where(table.c.token_id == link_id,
                                           table.c.person_key == person_key)).first()
    if row is None:
        raise NotFound("link_not_found", "länken finns inte", "no such link")
    return row


def _checked_link(conn: Connection, actor: Actor, person_key: str, link_id: int) -> Row[Any]:
    """The link, for an actor with a relation to the person (checked first, so unknown
    and foreign links look alike) acting for the link's own organisation."""
    from utfall.access.policy import require_person_access
    from utfall.care._common import require_own_organisation

    require_person_access(conn, actor, person_key, "create")
    link = _link(conn, person_key, link_id)
    require_own_organisation(conn, actor, link.unit_id)
    return link


def _closed() -> LinkClosed:
    return LinkClosed("link_closed", t("invitations.closed", "sv"), t("invitations.closed", "en"))


def _open_url(conn: Connection, link: Row[Any], now: dt.datetime | None) -> str:
    if link.link_enc is None:
        raise _closed()
    state = link_state(conn, link.token_id, now)
    if state != "open":
        _close(conn, link.token_id, state, now_utc(now))
        raise _closed()
    return _decrypt(link.link_enc)


def link_url(conn: Connection, actor: Actor, person_key: str, link_id: int, *,
             what: str = "self_report_qr", now: dt.datetime | None = None) -> str:
    """The link's URL (to show it or its QR code) for a user who may send it; audited."""
    link = _checked_link(conn, actor, person_key, link_id)
    url = _open_url(conn, link, now)
    access(conn, actor, person_key, "read", {"what": what, "token_id": link_id})
    return url


def link_qr_svg(conn: Connection, actor: Actor, person_key: str, link_id: int, *,
                locale: str = "sv", now: dt.datetime | None = None) -> str:
    """The QR code (SVG) of an open link; checked and audited like :func:`link_url`."""
    from utfall.messaging.qr import qr_svg

    url = link_url(conn, actor, person_key, link_id, now=now)
    return qr_svg(url, title=t("invitations.qr_alt", locale))


# ------------------------------------------------------------------ texts


def _when(instant: dt.datetime, locale: str) -> str:
    local = as_utc(instant).astimezone(STOCKHOLM)
    return t("invitations.at_time", locale, date=format_date(local.date(), locale),
             time=format_time(local, locale))


def compose(kind: str, channel: str, locale: str, unit: str, url: str,
            expires_at: dt.datetime) -> tuple[str, str]:
    """Subject and text of an invitation or reminder: the unit, the link, when it
    closes. Nothing else (no diagnosis, programme, identity or answers)."""
    values = {"unit": unit, "link": url, "valid_to": _when(expires_at, locale)}
    if channel == "sms":
        return "", t(f"invitations.sms.{kind}", locale, **values)
    prefix = "invitations.email" if kind == "invitation" else "invitations.reminder"
    return (t(f"{prefix}.subject", locale, **values), t(f"{prefix}.body", locale, **values))


def _deliver(settings: Settings, channel: str, to: str, subject: str, body: str) -> None:
    if channel == "email":
        from utfall.messaging.mail import send_mail

        send_mail(settings, to, subject, body)
    else:
        from utfall.messaging.sms import sms_sender

        sms_sender(settings).send(to, body)


def _safe_error(exc: Exception) -> str:
    """The failure without the address: class name and SMTP code only."""
    cause = exc.__cause__ or exc
    code = getattr(cause, "smtp_code", None)
    return f"{type(cause).__name__}{f' {code}' if code else ''}"[:200]


# ------------------------------------------------------------------ invitations


@dataclass(frozen=True)
class Sent:
    """Outcome of an invitation: the invitation id, masked recipient, status."""

    invitation_id: int
    channel: str
    to_masked: str
    status: str  # sent / failed
    reminders_at: list[dt.datetime] = field(default_factory=list)


def _log(conn: Connection, inv: Any, kind: str, slot: int, status: str, error: str | None,
         actor: Actor, at: dt.datetime) -> None:
    conn.execute(MessageLog.__table__.insert().values(
        invitation_id=inv.id, token_id=inv.token_id, person_key=inv.person_key,
        unit_id=inv.unit_id, kind=kind, slot=slot, channel=inv.channel,
        recipient_hash=inv.recipient_hash, recipient_masked=inv.recipient_masked,
        status=status, error=error, sent_by=actor.user, sent_at=at))


def reminder_times(expires_at: dt.datetime, created_at: dt.datetime,
                   settings: Settings | None = None) -> list[tuple[int, dt.datetime]]:
    """(days before closing, due instant) of each reminder an invitation will get."""
    settings = settings or get_settings()
    out = []
    for days in sorted(set(settings.reminder_days_before), reverse=True):
        due = as_utc(expires_at) - dt.timedelta(days=days)
        if days > 0 and due >= as_utc(created_at) + dt.timedelta(hours=MIN_HOURS_AFTER_INVITATION):
            out.append((days, due))
    return out


def send_invitation(conn: Connection, actor: Actor, person_key: str, link_id: int,
                    channel: str, address: str, *, locale: str | None = None,
                    now: dt.datetime | None = None, settings: Settings | None = None) -> Sent:
    """Send the link to ``address`` by ``channel`` (``email``/``sms``) and plan its
    reminders. Refuses a bad address (``CareError`` with the field ``address``) and a
    link that is answered or closed (:class:`LinkClosed`). A failed hand-over is
    logged and returned with status ``failed`` (no reminders then)."""
    settings = settings or get_settings()
    instant = now_utc(now)
    link = _checked_link(conn, actor, person_key, link_id)
    if channel not in CHANNELS:
        raise CareError("invalid_channel", "välj e-post eller sms", "choose e-mail or SMS",
                        [Issue("channel", "invalid_channel", "Välj e-post eller sms.",
                               "Choose e-mail or SMS.")])
    try:
        to = normalise(channel, address)
    except AddressError as exc:
        raise CareError("invalid_address", exc.sv, exc.en,
                        [Issue("address", exc.code, exc.sv, exc.en)]) from None
    if channel == "email" and not settings.smtp_host:
        sv, en = t("invitations.no_smtp", "sv"), t("invitations.no_smtp", "en")
        raise CareError("email_not_configured", sv, en,
                        [Issue("address", "email_not_configured", sv, en)])
    url = _open_url(conn, link, instant)
    token = _token_row(conn, link_id)
    lang = locale or token.locale
    info = unit_info(conn, token.unit_id)
    subject, body = compose("invitation", channel, lang, info.name if info else "",
                            url, token.expires_at)
    table = MessageInvitation.__table__
    with conn.begin_nested():
        access(conn, actor, person_key, "create",
               {"what": "self_report_invitation", "token_id": link_id, "channel": channel})
        inserted = conn.execute(table.insert().values(
            token_id=link_id, person_key=person_key, unit_id=token.unit_id, channel=channel,
            recipient_enc=_encrypt(to), recipient_hash=recipient_hash(to),
            recipient_masked=mask(channel, to), locale=lang, created_by=actor.user,
            created_at=instant)).inserted_primary_key
        assert inserted is not None
        inv_id = int(inserted[0])
        inv = conn.execute(select(table).where(table.c.id == inv_id)).one()
        try:
            _deliver(settings, channel, to, subject, body)
        except Exception as exc:  # any hand-over failure is logged, not raised
            _log(conn, inv, "invitation", 0, "failed", _safe_error(exc), actor, instant)
            conn.execute(update(table).where(table.c.id == inv_id).values(
                stopped_at=instant, stop_reason="failed", recipient_enc=None))
            return Sent(inv_id, channel, inv.recipient_masked, "failed")
        _log(conn, inv, "invitation", 0, "sent", None, actor, instant)
    return Sent(inv_id, channel, inv.recipient_masked, "sent",
                [due for _d, due in reminder_times(token.expires_at, instant, settings)])


@dataclass(frozen=True)
class LinkMessages:
    """What was sent for a link (no addresses in clear) and whether it is still open."""

    state: str
    expires_at: dt.datetime
    messages: list[dict[str, Any]]
    invitations: list[dict[str, Any]]


def link_messages(conn: Connection, actor: Actor, person_key: str, link_id: int, *,
                  now: dt.datetime | None = None) -> LinkMessages:
    """The message log and invitations of a link, for a user who may send it; audited."""
    _checked_link(conn, actor, person_key, link_id)
    access(conn, actor, person_key, "read", {"what": "self_report_messages", "token_id": link_id})
    state = link_state(conn, link_id, now)
    token = _token_row(conn, link_id)
    log = MessageLog.__table__
    msgs = [{"kind": r.kind, "channel": r.channel, "to": r.recipient_masked,
             "status": r.status, "sent_at": as_utc(r.sent_at)}
            for r in conn.execute(select(log).where(log.c.token_id == link_id)
                                  .order_by(log.c.sent_at, log.c.id))]
    inv = MessageInvitation.__table__
    invitations = [{"id": r.id, "channel": r.channel, "to": r.recipient_masked,
                    "stopped": r.stop_reason or ("answered" if state == "answered" else
                                                 "closed" if state == "closed" else None)}
                   for r in conn.execute(select(inv).where(inv.c.token_id == link_id)
                                         .order_by(inv.c.id))]
    return LinkMessages(state, as_utc(token.expires_at), msgs, invitations)


# ------------------------------------------------------------------ reminders


@dataclass
class ReminderRun:
    """What one run of :func:`send_due_reminders` did (or would do, dry run)."""

    sent: int = 0
    failed: int = 0
    stopped_answered: int = 0
    stopped_closed: int = 0
    due: list[dict[str, Any]] = field(default_factory=list)


def _close(conn: Connection, token_id: int, reason: str, at: dt.datetime) -> int:
    """Stop the link's reminders and erase its URL and recipients; returns how many
    invitations were stopped."""
    inv = MessageInvitation.__table__
    stopped = conn.execute(update(inv).where(inv.c.token_id == token_id,
                                             inv.c.stopped_at.is_(None))
                           .values(stopped_at=at, stop_reason=reason)).rowcount
    conn.execute(update(inv).where(inv.c.token_id == token_id).values(recipient_enc=None))
    link = MessageLink.__table__
    conn.execute(update(link).where(link.c.token_id == token_id, link.c.closed_at.is_(None))
                 .values(link_enc=None, closed_at=at))
    return int(stopped or 0)


def _due_slot(conn: Connection, inv: Any, expires_at: dt.datetime, now: dt.datetime,
              settings: Settings) -> int | None:
    """The reminder (days before closing) due now for ``inv``, if any."""
    due = [days for days, at in reminder_times(expires_at, inv.created_at, settings)
           if at <= now]
    if not due:
        return None
    slot = min(due)  # the latest one due; missed earlier ones are not sent any more
    log = MessageLog.__table__
    rows = conn.execute(select(log.c.slot, log.c.status).where(
        log.c.invitation_id == inv.id, log.c.kind == "reminder")).all()
    if any(r.status == "sent" and r.slot <= slot for r in rows):
        return None
    if sum(1 for r in rows if r.slot == slot) >= MAX_FAILURES:
        return None
    return slot


def quiet(now: dt.datetime) -> bool:
    """Outside the hours reminders are sent (08–20 Stockholm time)."""
    hour = now.astimezone(STOCKHOLM).hour
    return not QUIET_BEFORE <= hour < QUIET_AFTER


def send_due_reminders(engine: Engine, *, now: dt.datetime | None = None,
                       dry_run: bool = False, settings: Settings | None = None) -> ReminderRun:
    """Send every reminder that is due (one transaction per invitation).

    Invitations whose link is answered or has closed are stopped first (and their
    secrets erased), so no reminder ever follows the answers. A dry run changes nothing
    and lists what would be sent (masked recipients).
    """
    settings = settings or get_settings()
    instant = now_utc(now)
    run = ReminderRun()
    inv = MessageInvitation.__table__
    with engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(inv.c.id).where(inv.c.stopped_at.is_(None))
                                          .order_by(inv.c.id))]
    for inv_id in ids:
        with engine.begin() as conn:
            row = conn.execute(select(inv).where(inv.c.id == inv_id).with_for_update()).one()
            if row.stopped_at is not None:
                continue
            state = link_state(conn, row.token_id, instant)
            if state != "open":
                stopped = 1 if dry_run else _close(conn, row.token_id, state, instant)
                if state == "answered":
                    run.stopped_answered += stopped
                else:
                    run.stopped_closed += stopped
                continue
            if quiet(instant):
                continue
            token = _token_row(conn, row.token_id)
            slot = _due_slot(conn, row, as_utc(token.expires_at), instant, settings)
            if slot is None:
                continue
            run.due.append({"invitation_id": row.id, "channel": row.channel,
                            "to": row.recipient_masked, "days_before": slot})
            if dry_run:
                continue
            link = conn.execute(select(MessageLink.__table__).where(
                MessageLink.__table__.c.token_id == row.token_id)).one()
            if link.link_enc is None or row.recipient_enc is None:
                continue
            access(conn, REMINDER_ACTOR, row.person_key, "read",
                   {"what": "self_report_reminder", "token_id": row.token_id,
                    "channel": row.channel, "days_before": slot})
            info = unit_info(conn, row.unit_id)
            subject, body = compose("reminder", row.channel, row.locale,
                                    info.name if info else "", _decrypt(link.link_enc),
                                    token.expires_at)
            try:
                _deliver(settings, row.channel, _decrypt(row.recipient_enc), subject, body)
            except Exception as exc:  # logged; retried on the next run
                _log(conn, row, "reminder", slot, "failed", _safe_error(exc),
                     REMINDER_ACTOR, instant)
                run.failed += 1
                continue
            _log(conn, row, "reminder", slot, "sent", None, REMINDER_ACTOR, instant)
            run.sent += 1
    return run
