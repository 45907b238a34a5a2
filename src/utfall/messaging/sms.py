"""SMS through a pluggable sender.

A sender is any object with ``send(to, text) -> str`` (the provider's message id);
``UTFALL_SMS_SENDER`` names it: ``file`` (development: appends a JSON line to
``UTFALL_SMS_FILE``, default ``<data_dir>/sms-outbox.jsonl``, mode 0600) or the name
of an entry point in the group ``utfall.sms_senders`` whose object is a factory
``(settings) -> sender``. No real SMS provider ships with Utfall.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path
from typing import Protocol

from utfall.config import Settings, private_dir


class SmsSender(Protocol):
    """Sends one SMS; raises on failure, returns the provider's message id."""

    def send(self, to: str, text: str) -> str: ...


class SmsError(RuntimeError):
    """The SMS could not be handed over."""


class FileSmsSender:
    """Development sender: every message becomes one JSON line in a private file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, to: str, text: str) -> str:
        message_id = uuid.uuid4().hex
        private_dir(self.path.parent)
        record = {"id": message_id, "to": to, "text": text,
                  "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return message_id


def sms_sender(settings: Settings) -> SmsSender:
    """The configured sender (``file`` or an installed entry point)."""
    name = settings.sms_sender
    if name == "file":
        return FileSmsSender(settings.sms_file or settings.data_dir / "sms-outbox.jsonl")
    from importlib.metadata import entry_points

    for entry in entry_points(group="utfall.sms_senders"):
        if entry.name == name:
            sender: SmsSender = entry.load()(settings)
            return sender
    raise SmsError(f"unknown SMS sender {name!r} (UTFALL_SMS_SENDER)")
