"""Recipient addresses: validation, normalisation, masking and keyed hashing.

An address is used to send and for reminders (encrypted at rest); the message log
holds only its keyed hash and a masked form (``a…@example.se``, ``+46 70 … 45``).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from utfall.config import get_settings

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MAX_EMAIL = 254


class AddressError(ValueError):
    """An address or number that cannot be used; ``sv``/``en`` say why."""

    def __init__(self, code: str, sv: str, en: str) -> None:
        self.code = code
        self.sv = sv
        self.en = en
        super().__init__(f"{sv} / {en}")


def normalise_email(raw: str) -> str:
    """A plausible e-mail address, trimmed, domain in lower case."""
    value = raw.strip()
    if not value:
        raise AddressError("missing", "Skriv en e-postadress.", "Enter an e-mail address.")
    if len(value) > MAX_EMAIL or not _EMAIL.match(value) or ".." in value:
        raise AddressError("invalid_email",
                           "Skriv e-postadressen som namn@exempel.se.",
                           "Write the e-mail address as name@example.com.")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def normalise_phone(raw: str) -> str:
    """A mobile number in E.164 (``+46701234567``); Swedish numbers may start with 0."""
    value = re.sub(r"[\s\-()]", "", raw.strip())
    if not value:
        raise AddressError("missing", "Skriv ett mobilnummer.", "Enter a mobile number.")
    if value.startswith("00"):
        value = "+" + value[2:]
    elif value.startswith("0"):
        value = "+46" + value[1:]
    bad = AddressError("invalid_phone",
                       "Skriv mobilnumret som 070-123 45 67 eller +46 70 123 45 67.",
                       "Write the mobile number as 070-123 45 67 or +46 70 123 45 67.")
    if not re.fullmatch(r"\+[1-9]\d{7,14}", value):
        raise bad
    if value.startswith("+46") and not re.fullmatch(r"\+467[02369]\d{7}", value):
        raise bad  # Swedish mobile numbers: 070, 072, 073, 076, 079
    return value


def normalise(channel: str, raw: str) -> str:
    """The normalised recipient of ``channel`` (``email`` or ``sms``)."""
    if channel == "email":
        return normalise_email(raw)
    if channel == "sms":
        return normalise_phone(raw)
    raise AddressError("channel", "Välj e-post eller sms.", "Choose e-mail or SMS.")


def mask(channel: str, address: str) -> str:
    """Enough to recognise the recipient, not to contact them."""
    if channel == "email":
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}…@{domain}"
    return f"{address[:3]} {address[3:5]} … {address[-2:]}"


def recipient_hash(address: str) -> str:
    """Keyed hash (HMAC-SHA256 with the secret key) of a normalised address."""
    key = get_settings().effective_secret_key
    return hmac.new(key, b"recipient:" + address.encode(), hashlib.sha256).hexdigest()
