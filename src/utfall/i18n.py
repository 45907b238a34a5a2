"""User-facing texts, Swedish first with English (``UTFALL_LOCALE=en``).

Messages are data in ``content/messages/<locale>.yaml``; a missing English text
falls back to Swedish, a missing key to the key itself.
"""

from __future__ import annotations

from typing import Any

from utfall.config import get_settings
from utfall.content import load_yaml

LOCALES = ("sv", "en")


def t(key: str, /, locale: str | None = None, **values: Any) -> str:
    """The message ``key`` in ``locale`` (default: configured), formatted with ``values``
    (``key`` is positional-only, so a message may have a ``{key}`` placeholder)."""
    locale = locale or get_settings().locale
    text = load_yaml(f"messages/{locale}.yaml").get(key) or load_yaml("messages/sv.yaml").get(key)
    return (text or key).format(**values)
