"""Invitations and reminders through a real SMTP server on 127.0.0.1 (aiosmtpd) and the
SMS file sender: the invitation and one reminder arrive, no reminder after the answers,
no identity number or address in clear anywhere it should not be."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import socket
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select

from utfall.access.policy import AccessDenied
from utfall.care import (
    CareError,
    enrol,
    issue_self_report_link,
    register_person,
    submit_self_report,
)
from utfall.config import Settings, get_settings
from utfall.messaging.invitations import (
    LinkClosed,
    link_messages,
    link_qr_svg,
    remember_link,
    send_due_reminders,
    send_invitation,
)
from utfall.store.models import AuditEvent
from utfall.store.models_messages import MessageInvitation, MessageLink, MessageLog

from .conftest import CLINICIAN, PNR_WOMAN, SOCIAL, START

NOW = dt.datetime(2025, 7, 10, 8, 0, tzinfo=dt.UTC)  # 10:00 in Stockholm
CLOSES = NOW + dt.timedelta(days=14)
REMINDER_DUE = CLOSES - dt.timedelta(days=3)
WHO5 = {f"item_{i}": 3 for i in range(1, 6)}
BASE = "https://utfall.example.se"
ADDRESS = "Person.Test@Example.SE"
PNR_FORMS = (PNR_WOMAN, "19950615-2348", "950615-2348", "9506152348")


class Inbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content,
                                                       policy=email.policy.default)))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox(settings: Settings, monkeypatch: pytest.MonkeyPatch,
          tmp_path: Path) -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1 that the settings point at."""
    handler = Inbox()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("UTFALL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("UTFALL_SMTP_PORT", str(port))
    monkeypatch.setenv("UTFALL_SMTP_SECURITY", "none")
    monkeypatch.setenv("UTFALL_MAIL_FROM", "utfall@region.example.se")
    monkeypatch.setenv("UTFALL_SMS_FILE", str(tmp_path / "outbox" / "sms.jsonl"))
    get_settings.cache_clear()
    try:
        yield handler
    finally:
        controller.stop()
        get_settings.cache_clear()


def _link(engine: Engine, key: str | None = None) -> tuple[str, int, str]:
    with engine.begin() as conn:
        if key is None:
            key = register_person(conn, CLINICIAN, PNR_WOMAN)
            enrolment = enrol(conn, CLINICIAN, key, "vip-beroende", "R-LARO", START)
        else:
            from utfall.store.models import Enrolment

            enrolment = conn.execute(select(Enrolment.row_key).where(
                Enrolment.person_key == key)).scalar_one()
        token = issue_self_report_link(conn, CLINICIAN, enrolment, "month-6",
                                       instruments=["who-5"], now=NOW)
        link_id = remember_link(conn, CLINICIAN, token, BASE, now=NOW)
    return key, link_id, token


def _text(msg: Message) -> str:
    assert isinstance(msg, email.message.EmailMessage)
    return f"{msg['Subject']}\n{msg.get_content()}"


def _no_identity(text: str, key: str) -> None:
    for form in (*PNR_FORMS, key):
        assert form not in text
    for word in ("beroende", "opioid", "LARO programme", "vip", "AUDIT", "WHO-5"):
        assert word.lower() not in text.lower().replace("laro-mottagningen", "")


def test_invitation_and_one_reminder_then_none_after_answers(engine: Engine,
                                                             inbox: Inbox) -> None:
    key, link_id, token = _link(engine)
    with engine.begin() as conn:
        sent = send_invitation(conn, CLINICIAN, key, link_id, "email", ADDRESS, now=NOW)
    assert sent.status == "sent" and sent.to_masked == "P…@example.se"
    assert sent.reminders_at == [REMINDER_DUE]
    assert len(inbox.messages) == 1
    rcpt, msg = inbox.messages[0]
    assert rcpt == ["Person.Test@example.se"]
    body = _text(msg)
    assert msg["Subject"] == "Frågor från LARO-mottagningen"
    assert f"{BASE}/r/{token}" in body
    assert "24 juli 2025 klockan 10:00" in body  # closes 08:00 UTC = 10:00 Stockholm
    _no_identity(body, key)

    # not due yet: nothing sent, also not in a dry run
    assert send_due_reminders(engine, now=NOW + dt.timedelta(days=5)).due == []
    assert len(inbox.messages) == 1
    at = REMINDER_DUE + dt.timedelta(hours=1)
    dry = send_due_reminders(engine, now=at, dry_run=True)
    assert dry.due == [{"invitation_id": sent.invitation_id, "channel": "email",
                        "to": "P…@example.se", "days_before": 3}] and dry.sent == 0
    assert len(inbox.messages) == 1
    # at night nothing is sent even when due
    assert send_due_reminders(engine, now=REMINDER_DUE + dt.timedelta(hours=15)).sent == 0
    run = send_due_reminders(engine, now=at)
    assert (run.sent, run.failed) == (1, 0)
    assert len(inbox.messages) == 2
    reminder = _text(inbox.messages[1][1])
    assert reminder.startswith("Påminnelse: frågor från LARO-mottagningen")
    assert f"{BASE}/r/{token}" in reminder
    _no_identity(reminder, key)
    # exactly one reminder: the next runs send nothing more
    assert send_due_reminders(engine, now=at + dt.timedelta(hours=2)).sent == 0
    assert send_due_reminders(engine, now=CLOSES - dt.timedelta(hours=2)).sent == 0
    assert len(inbox.messages) == 2

    with engine.begin() as conn:
        log = conn.execute(select(MessageLog.__table__).order_by(MessageLog.id)).all()
        events = conn.execute(select(AuditEvent.__table__)).all()
    assert [(r.kind, r.status, r.slot, r.sent_by) for r in log] == [
        ("invitation", "sent", 0, "dr.a"), ("reminder", "sent", 3, "reminders")]
    for r in log:  # the log holds no content: no address, link or identity in clear
        flat = json.dumps([str(v) for v in r._mapping.values()])
        assert "Person.Test" not in flat and token not in flat
        assert not any(form in flat for form in PNR_FORMS)
    whats = [e.detail.get("what") for e in events]
    assert "self_report_invitation" in whats and "self_report_reminder" in whats
    assert not any(token in json.dumps(e.detail) or "Person.Test" in json.dumps(e.detail)
                   for e in events)


def test_no_reminder_after_submission(engine: Engine, inbox: Inbox) -> None:
    """REDCap's known bug: reminders after completion. Here the answers stop them."""
    key, link_id, token = _link(engine)
    with engine.begin() as conn:
        send_invitation(conn, CLINICIAN, key, link_id, "email", ADDRESS, now=NOW)
        send_invitation(conn, CLINICIAN, key, link_id, "sms", "070-123 45 67", now=NOW)
    assert len(inbox.messages) == 1
    with engine.begin() as conn:
        submit_self_report(conn, token, WHO5, now=NOW + dt.timedelta(days=2))
    run = send_due_reminders(engine, now=REMINDER_DUE + dt.timedelta(hours=1))
    assert (run.sent, run.stopped_answered, run.due) == (0, 2, [])
    assert len(inbox.messages) == 1  # the invitation only
    sms = Path(get_settings().sms_file or "").read_text().splitlines()
    assert len(sms) == 1  # the SMS invitation only
    with engine.begin() as conn:
        invs = conn.execute(select(MessageInvitation.__table__)).all()
        link = conn.execute(select(MessageLink.__table__)).one()
        # secrets erased once answered; nothing can be sent any more
        assert {(i.stop_reason, i.recipient_enc) for i in invs} == {("answered", None)}
        assert link.link_enc is None and link.closed_at is not None
        with pytest.raises(LinkClosed):
            send_invitation(conn, CLINICIAN, key, link_id, "email", ADDRESS,
                            now=NOW + dt.timedelta(days=3))
        view = link_messages(conn, CLINICIAN, key, link_id, now=NOW + dt.timedelta(days=3))
        assert view.state == "answered" and len(view.messages) == 2


def test_sms_file_sender_writes_the_record(engine: Engine, inbox: Inbox) -> None:
    key, link_id, token = _link(engine)
    with engine.begin() as conn:
        sent = send_invitation(conn, CLINICIAN, key, link_id, "sms", "070-123 45 67",
                               now=NOW)
    assert sent.status == "sent" and sent.to_masked == "+46 70 … 67"
    path = Path(get_settings().sms_file or "")
    assert os.stat(path).st_mode & 0o777 == 0o600
    [record] = [json.loads(line) for line in path.read_text().splitlines()]
    assert record["to"] == "+46701234567"
    assert record["text"] == (f"LARO-mottagningen ber dig svara på några frågor: {BASE}/r/"
                              f"{token} Länken gäller till 24 juli 2025 klockan 10:00. "
                              "Dela den inte.")
    _no_identity(record["text"], key)
    assert inbox.messages == []
    run = send_due_reminders(engine, now=REMINDER_DUE + dt.timedelta(hours=1))
    assert run.sent == 1
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["text"].startswith(
        "Påminnelse från LARO-mottagningen")


def test_bad_addresses_refused_with_the_field(engine: Engine, inbox: Inbox) -> None:
    key, link_id, _token = _link(engine)
    for channel, raw, code in (("email", "inte-en-adress", "invalid_email"),
                               ("email", "", "missing"),
                               ("sms", "12345", "invalid_phone"),
                               ("sms", "08-123 456 78", "invalid_phone")):
        with engine.begin() as conn, pytest.raises(CareError) as bad:
            send_invitation(conn, CLINICIAN, key, link_id, channel, raw, now=NOW)
        assert bad.value.issues[0].where == "address" and bad.value.issues[0].code == code
    with engine.begin() as conn:
        assert conn.execute(select(MessageInvitation.__table__)).all() == []
        assert conn.execute(select(MessageLog.__table__)).all() == []
    assert inbox.messages == []


def test_failed_hand_over_logged_without_address(engine: Engine, inbox: Inbox,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    key, link_id, _token = _link(engine)
    monkeypatch.setenv("UTFALL_SMTP_PORT", str(_free_port()))  # nobody listens
    get_settings.cache_clear()
    with engine.begin() as conn:
        sent = send_invitation(conn, CLINICIAN, key, link_id, "email", ADDRESS, now=NOW)
    assert sent.status == "failed" and sent.reminders_at == []
    with engine.begin() as conn:
        [log] = conn.execute(select(MessageLog.__table__)).all()
    assert log.status == "failed" and log.error and "Person" not in log.error
    assert send_due_reminders(engine, now=REMINDER_DUE + dt.timedelta(hours=1)).due == []


def test_expired_link_and_other_organisation(engine: Engine, inbox: Inbox) -> None:
    key, link_id, _token = _link(engine)
    with engine.begin() as conn, pytest.raises(AccessDenied):
        send_invitation(conn, SOCIAL, key, link_id, "email", ADDRESS, now=NOW)
    with engine.begin() as conn, pytest.raises(AccessDenied):
        link_qr_svg(conn, SOCIAL, key, link_id, now=NOW)
    with engine.begin() as conn:
        svg = link_qr_svg(conn, CLINICIAN, key, link_id, now=NOW)
        send_invitation(conn, CLINICIAN, key, link_id, "email", ADDRESS, now=NOW)
    assert svg.startswith("<svg") and "<title>QR-kod" in svg
    assert len(inbox.messages) == 1
    # closed without answers: nothing more is sent, reminders stop, secrets erased
    run = send_due_reminders(engine, now=CLOSES + dt.timedelta(hours=1))
    assert (run.sent, run.stopped_closed) == (0, 1)
    with engine.begin() as conn, pytest.raises(LinkClosed):
        send_invitation(conn, CLINICIAN, key, link_id, "email", ADDRESS,
                        now=CLOSES + dt.timedelta(minutes=1))
    with engine.begin() as conn, pytest.raises(LinkClosed):
        link_qr_svg(conn, CLINICIAN, key, link_id, now=NOW)
    with engine.begin() as conn:
        assert conn.execute(select(MessageLink.__table__.c.link_enc)).scalar_one() is None
        inv = conn.execute(select(MessageInvitation.__table__)).one()
        assert (inv.stop_reason, inv.recipient_enc) == ("closed", None)
    assert len(inbox.messages) == 1


def test_cli_reminders_send(engine: Engine, inbox: Inbox, sqlite_url: str) -> None:
    from typer.testing import CliRunner

    from utfall.cli import app

    key, link_id, _token = _link(engine)
    with engine.begin() as conn:
        send_invitation(conn, CLINICIAN, key, link_id, "email", ADDRESS, now=NOW)
    at = (REMINDER_DUE + dt.timedelta(hours=1)).isoformat()
    runner = CliRunner()
    dry = runner.invoke(app, ["reminders", "send", "--dry-run", "--now", at,
                              "--database", sqlite_url], catch_exceptions=False)
    assert dry.exit_code == 0 and "would send: email P…@example.se (3 d)" in dry.output
    assert "sent: 0" in dry.output and len(inbox.messages) == 1
    real = runner.invoke(app, ["reminders", "send", "--now", at, "--database", sqlite_url],
                         catch_exceptions=False)
    assert real.exit_code == 0 and "sent: 1" in real.output and len(inbox.messages) == 2
    assert "Person.Test" not in real.output
    bad = runner.invoke(app, ["reminders", "send", "--now", "2025-07-21T10:00"])
    assert bad.exit_code == 1


def test_saved_draft_is_not_an_answer(engine: Engine, inbox: Inbox) -> None:
    """Save-and-return keeps the reminders going; only the submitted answers stop them."""
    from utfall.care.selfreport import save_draft

    key, link_id, token = _link(engine)
    with engine.begin() as conn:
        send_invitation(conn, CLINICIAN, key, link_id, "email", ADDRESS, now=NOW)
        save_draft(conn, token, {"who-5": {"item_1": 3}}, 0, now=NOW + dt.timedelta(days=1))
    run = send_due_reminders(engine, now=REMINDER_DUE + dt.timedelta(hours=1))
    assert (run.sent, run.stopped_answered) == (1, 0) and len(inbox.messages) == 2


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    today = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(today - dt.timedelta(days=1))
            .not_valid_after(today + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_starttls_with_login_and_certificate_check(engine: Engine, settings: Settings,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    """STARTTLS required and a login; the server's certificate is verified (a CA the
    client does not trust makes the hand-over fail, logged without the address)."""
    import ssl

    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = _self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    logins: list[str] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login, auth_data.password) == (b"utfall", b"s3cret-smtp")
        if ok:
            logins.append(mechanism)
        return AuthResult(success=ok)

    handler = Inbox()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=server_tls,
                            require_starttls=True, authenticator=authenticator,
                            auth_required=True)
    controller.start()
    try:
        for name, value in (("HOST", "127.0.0.1"), ("PORT", str(port)),
                            ("SECURITY", "starttls"), ("USER", "utfall"),
                            ("PASSWORD", "s3cret-smtp")):
            monkeypatch.setenv(f"UTFALL_SMTP_{name}", value)
        get_settings.cache_clear()
        key_, link_id, token = _link(engine)
        with engine.begin() as conn:  # the system trust store does not know this CA
            refused = send_invitation(conn, CLINICIAN, key_, link_id, "email", ADDRESS,
                                      now=NOW)
        assert refused.status == "failed" and handler.messages == []
        monkeypatch.setenv("UTFALL_SMTP_CA_FILE", str(cert))
        get_settings.cache_clear()
        with engine.begin() as conn:
            sent = send_invitation(conn, CLINICIAN, key_, link_id, "email", ADDRESS, now=NOW)
        assert sent.status == "sent" and len(handler.messages) == 1 and logins
        assert f"/r/{token}" in _text(handler.messages[0][1])
        with engine.begin() as conn:
            errors = [r.error for r in conn.execute(select(MessageLog.__table__))]
        assert errors[0] and "SSL" in errors[0] and "Person" not in errors[0]
        assert errors[1] is None
    finally:
        controller.stop()
        get_settings.cache_clear()


@pytest.mark.postgres
def test_on_postgresql(settings: Settings, pg_url: str, inbox: Inbox) -> None:
    """The same flow on PostgreSQL (migration 0013, row locks of the reminder run)."""
    from utfall.store.db import get_engine

    from .conftest import seed

    engine = get_engine(pg_url)
    seed(engine)
    test_invitation_and_one_reminder_then_none_after_answers(engine, inbox)
    inbox.messages.clear()
    key, link_id, token = _link(engine, key=_person(engine))
    with engine.begin() as conn:
        send_invitation(conn, CLINICIAN, key, link_id, "email", ADDRESS, now=NOW)
        submit_self_report(conn, token, WHO5, now=NOW + dt.timedelta(days=1))
    run = send_due_reminders(engine, now=REMINDER_DUE + dt.timedelta(hours=1))
    assert (run.sent, run.stopped_answered) == (0, 1) and len(inbox.messages) == 1


def _person(engine: Engine) -> str:
    from utfall.store.models import Person

    with engine.connect() as conn:
        return str(conn.execute(select(Person.person_key)).scalars().first())
