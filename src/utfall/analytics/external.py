"""External indicators (``external_indicators`` in the catalogue): defined as data, but
computed by their source over the operational store rather than by the engine over the
analysis tables. Their rows join the engine's results *before* disclosure control, so
they are protected in the same release as everything else.
"""

from __future__ import annotations

import datetime as dt
from importlib import import_module
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine

# source name → "module:function(conn, indicators, as_of) -> pa.Table" (RESULT_SCHEMA)
SOURCES = {"register_coverage": "utfall.interop.register.coverage:external_rows",
           "goal_review": "utfall.care.goals_indicator:external_rows"}


def external_results(engine: Engine, catalogue: Any, as_of: dt.date) -> pa.Table | None:
    """Raw result rows of every external indicator of ``catalogue`` (None if it has none)."""
    from utfall.analytics.schema import RESULT_SCHEMA

    by_source: dict[str, list[Any]] = {}
    for ind in getattr(catalogue, "external", ()):
        by_source.setdefault(ind.source, []).append(ind)
    if not by_source:
        return None
    parts = []
    with engine.connect() as conn:
        for source, indicators in sorted(by_source.items()):
            module, function = SOURCES[source].split(":")
            parts.append(getattr(import_module(module), function)(conn, indicators, as_of)
                         .cast(RESULT_SCHEMA))
    return pa.concat_tables(parts)


__all__ = ["SOURCES", "external_results"]
