"""Number formats of the web pages, in one place (Swedish first).

Swedish: decimal comma, a narrow no-break space (U+202F, the typographic thin space
that never breaks a line) between thousands, a true minus sign and ``6,1 %`` for
shares (one decimal, no-break space before ``%``). English: ``1,234`` and ``6.1 %``.
Protected display strings (``<5``, ``..``) pass through unchanged; digits among them
are formatted like numbers. Registered as Jinja filters by :func:`install`:
``num``, ``pct``, ``shown``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from jinja2 import pass_context

THIN = "\u202f"  # narrow no-break space: Swedish thousands separator
NBSP = "\u00a0"
MINUS = "\u2212"
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def number(value: Any, decimals: int = 0, locale: str = "sv") -> str:
    """``12345.6`` → ``12 345,6`` (sv) or ``12,345.6`` (en); None/NaN → ``–``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{abs(float(value)):,.{decimals}f}"
    negative = float(value) < 0 and text.strip("0.,") != ""
    if locale == "sv":
        text = text.replace(",", THIN).replace(".", ",")
        return (MINUS + text) if negative else text
    return ("-" + text) if negative else text


def percent(share: Any, locale: str = "sv", decimals: int = 1) -> str:
    """A proportion (0–1) as per cent with one decimal: ``0.0612`` → ``6,1 %``."""
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return "–"
    return f"{number(float(share) * 100, decimals, locale)}{NBSP}%"


def shown(display: Any, locale: str = "sv") -> str:
    """A protected display string: numbers formatted, masks (``<5``, ``..``) kept."""
    if display is None or display == "":
        return "–"
    text = str(display)
    if _NUMBER.match(text):
        decimals = len(text.split(".")[1]) if "." in text else 0
        return number(float(text), decimals, locale)
    return text


def install(env: Any) -> None:
    """Register the filters ``num``, ``pct`` and ``shown`` (locale from the context)."""

    @pass_context
    def num(ctx: Any, value: Any, decimals: int = 0) -> str:
        return number(value, decimals, ctx.get("locale", "sv"))

    @pass_context
    def pct(ctx: Any, value: Any, decimals: int = 1) -> str:
        return percent(value, ctx.get("locale", "sv"), decimals)

    @pass_context
    def shown_filter(ctx: Any, value: Any) -> str:
        return shown(value, ctx.get("locale", "sv"))

    env.filters.update(num=num, pct=pct, shown=shown_filter)


_MONTHS = {"sv": ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti",
                  "september", "oktober", "november", "december"),
           "en": ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")}


def long_date(value: Any, locale: str = "sv", *, with_time: bool = False) -> str:
    """An ISO date or UTC timestamp as ``12 mars 2026`` (``kl. 14:05`` in
    Europe/Stockholm with ``with_time``); unparsable values as they are."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    try:
        if isinstance(value, dt.datetime | dt.date):
            when: Any = value
        elif with_time or "T" in str(value):
            when = dt.datetime.fromisoformat(str(value))
        else:
            when = dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        when = when.astimezone(ZoneInfo("Europe/Stockholm"))
    months = _MONTHS["en" if locale == "en" else "sv"]
    day = f"{when.day} {months[when.month - 1]} {when.year}"
    if with_time and isinstance(when, dt.datetime):
        return f"{day} {'at' if locale == 'en' else 'kl.'} {when:%H:%M}"
    return day
