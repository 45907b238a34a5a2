"""Dates, times and numbers the way Swedish (and English) readers expect them.

Swedish: "12 mars 2026", "14:05" (Europe/Stockholm), decimal comma and a thin space as
thousands separator ("1 234,5"). English: "12 March 2026", "14:05", "1,234.5".
Pure functions (the web filters and the CLI use the same ones).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")
THIN_SPACE = "\u202f"  # narrow no-break space: thousands separator in Swedish

MONTHS = {
    "sv": ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti",
           "september", "oktober", "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}
MONTHS_SHORT = {
    "sv": ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def _lang(locale: str | None) -> str:
    return "en" if locale == "en" else "sv"


def as_date(value: Any) -> dt.date | None:
    """A date from a date, a datetime (in Stockholm time) or an ISO string."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return local_datetime(value).date()
    if isinstance(value, dt.date):
        return value
    text = str(value)
    try:
        return local_datetime(dt.datetime.fromisoformat(text)).date() if "T" in text \
            or len(text) > 10 else dt.date.fromisoformat(text)
    except ValueError:
        return None


def local_datetime(value: dt.datetime | str) -> dt.datetime:
    """``value`` in Europe/Stockholm (a naive value is taken as UTC, as stored)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(STOCKHOLM)


def format_date(value: Any, locale: str = "sv") -> str:
    """"12 mars 2026" / "12 March 2026"; "" for nothing; the value itself if unparsable."""
    day = as_date(value)
    if day is None:
        return "" if value in (None, "") else str(value)
    return f"{day.day} {MONTHS[_lang(locale)][day.month - 1]} {day.year}"


def format_month(value: Any, locale: str = "sv") -> str:
    """"mar 2026" (short month and year, for chart axes)."""
    day = as_date(value)
    if day is None:
        return ""
    return f"{MONTHS_SHORT[_lang(locale)][day.month - 1]} {day.year}"


def format_time(value: Any, locale: str = "sv") -> str:
    """"14:05" in Stockholm time."""
    if value in (None, ""):
        return ""
    try:
        return local_datetime(value).strftime("%H:%M")
    except (TypeError, ValueError):
        return str(value)


def format_datetime(value: Any, locale: str = "sv") -> str:
    """"12 mars 2026 14:05" in Stockholm time."""
    if value in (None, ""):
        return ""
    try:
        local = local_datetime(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{format_date(local.date(), locale)} {local.strftime('%H:%M')}"


def format_number(value: Any, decimals: int | None = None, locale: str = "sv") -> str:
    """Decimal comma and thin-space thousands in Swedish ("1 234,5"); integers stay
    integers unless ``decimals`` is given; "" for nothing."""
    if value is None or value == "":
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if decimals is None:
        decimals = 0 if number.is_integer() else 1
    text = f"{number:,.{decimals}f}"
    if _lang(locale) == "en":
        return text
    return text.replace(",", THIN_SPACE).replace(".", ",").replace("-", "−")
