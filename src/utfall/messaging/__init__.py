"""Invitations and reminders of self-report links: QR codes (``qr``), e-mail over SMTP
(``mail``), SMS through a pluggable sender (``sms``), the use cases and reminder
scheduling (``invitations``) and recipient handling (``addresses``)."""
