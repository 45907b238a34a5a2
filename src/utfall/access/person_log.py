"""A person's access log as a file to hand over (CSV or JSON).

The rows are those of ``review.person_access_extract`` (time, user, role, unit,
action, emergency; no details), with times in Europe/Stockholm. CSV cells are
neutralised against formula injection (``utfall.reports.safe_cells``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any
from zoneinfo import ZoneInfo

COLUMNS = ("at", "user", "role", "unit_id", "unit", "action", "emergency")
FORMATS = ("csv", "json")
_TZ = ZoneInfo("Europe/Stockholm")


def _local(row: dict[str, Any]) -> dict[str, Any]:
    at = dt.datetime.fromisoformat(row["at"]).astimezone(_TZ)
    return {**{c: row.get(c) for c in COLUMNS}, "at": at.isoformat(timespec="seconds")}


def render_person_log(rows: list[dict[str, Any]], fmt: str) -> str:
    """The extract rows as ``csv`` (header row, one line per access) or ``json``."""
    from utfall.reports.safe_cells import neutralise_row

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    local = [_local(r) for r in rows]
    if fmt == "json":
        return json.dumps(local, ensure_ascii=False, indent=1) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in local:
        r["emergency"] = 1 if r["emergency"] else 0
        writer.writerow(neutralise_row("" if r[c] is None else r[c] for c in COLUMNS))
    return buffer.getvalue()


def media_type(fmt: str) -> str:
    """HTTP content type of a rendered extract."""
    return "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
