"""E-mail through the configured SMTP server (``UTFALL_SMTP_*``).

``UTFALL_SMTP_SECURITY``: ``starttls`` (default, port 587), ``tls`` (implicit TLS, port
465) or ``none`` (a local relay only). Certificates are verified with the system's
trust store, or against ``UTFALL_SMTP_CA_FILE`` (a region's own CA). The password
comes from the environment (``UTFALL_SMTP_PASSWORD``).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from utfall.config import Settings


class MailError(RuntimeError):
    """The message could not be handed to the SMTP server."""


def send_mail(settings: Settings, to: str, subject: str, body: str) -> str:
    """Send a plain-text message; returns its Message-ID."""
    if not settings.smtp_host:
        raise MailError("no SMTP server configured (UTFALL_SMTP_HOST)")
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    domain = settings.mail_from.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    tls = ssl.create_default_context(
        cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)
    try:
        if settings.smtp_security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout,
                context=tls)
        else:
            client = smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                                  timeout=settings.smtp_timeout)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=tls)
            if settings.smtp_user:
                client.login(settings.smtp_user, settings.smtp_password or "")
            client.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}"[:200]) from exc
    return str(msg["Message-ID"])
