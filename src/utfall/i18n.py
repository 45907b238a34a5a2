"""User-facing texts, Swedish first with English (``UTFALL_LOCALE=en``).

Messages are data in ``content/messages/<locale>.yaml`` plus one file per area in
``content/messages/<locale>/*.yaml`` (a key may be defined only once per locale); a
missing English text falls back to Swedish, a missing key to the key itself.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from utfall.content import list_content, load_yaml

LOCALES = ("sv", "en")


def t(key: str, /, locale: str | None = None, **values: Any) -> str:
    """The message ``key`` in ``locale`` (default: configured), formatted with ``values``
    (``key`` is positional-only, so a message may have a ``{key}`` placeholder)."""
    if not locale:
        from utfall.config import get_settings  # lazily: keeps `utfall --help` fast

        locale = get_settings().locale
    text = messages(locale).get(key) or messages("sv").get(key)
    return (text or key).format(**values)


@cache
def messages(locale: str) -> dict[str, str]:
    """All messages of ``locale``: the main file plus the area files (cached)."""
    merged: dict[str, str] = dict(load_yaml(f"messages/{locale}.yaml") or {})
    folder = f"messages/{locale}"
    if resources.files("utfall.content").joinpath(folder).is_dir():
        for relative in list_content(folder):
            for key, text in (load_yaml(relative) or {}).items():
                if key in merged:
                    raise ValueError(f"message {key!r} defined twice ({relative})")
                merged[key] = text
    return merged
