"""The access layer's clock: the current instant, replaceable in tests.

Relations and emergency accesses are time-boxed; every check asks :func:`now` (or
takes an explicit ``now``), so tests can move time with :func:`use_clock` instead of
sleeping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")
_source: Callable[[], dt.datetime] | None = None


def now() -> dt.datetime:
    """The current instant (aware, UTC)."""
    value = _source() if _source is not None else dt.datetime.now(dt.UTC)
    return value.astimezone(dt.UTC)


def today(instant: dt.datetime | None = None) -> dt.date:
    """The date in Sweden at ``instant`` (default: now)."""
    return (instant or now()).astimezone(STOCKHOLM).date()


def set_clock(source: Callable[[], dt.datetime] | None) -> None:
    """Replace the clock (None: the system clock)."""
    global _source
    _source = source


@contextmanager
def use_clock(source: Callable[[], dt.datetime]) -> Iterator[None]:
    """Use ``source`` as the clock inside the block."""
    previous = _source
    set_clock(source)
    try:
        yield
    finally:
        set_clock(previous)
