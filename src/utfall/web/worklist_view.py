"""What the worklist page and the worklist API share: query parameters and the CSV file.

The CSV export (``text/csv``) is UTF-8 with a byte-order mark and ``;`` between fields,
so a double-click opens it in Swedish Excel with å/ä/ö and one column per field. Headers
are in the user's language. Persons appear only as ``YYYYMMDD-****`` with sex and age:
full identity numbers never leave in a file, whoever exports (a saved file is outside
the access log); each exported person is logged with action ``export``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, Literal

from utfall.care.worklist import WorklistFilter, WorklistItem
from utfall.domain.formats import format_date
from utfall.i18n import t

StatusParam = Literal["open", "overdue", "due", "upcoming", "missed", "done", "all"]
SortParam = Literal["due", "-due", "status", "-status", "programme", "-programme", "stage",
                    "-stage", "person", "-person", "worker", "-worker"]
STATUS_CHOICES = ("open", "overdue", "due", "upcoming", "missed", "done", "all")
SORT_CHOICES = ("status", "due", "programme", "stage", "worker")
PAGE_SIZES = (25, 50, 100, 200)
CSV_COLUMNS = ("status", "person", "sex", "age", "programme", "stage", "due", "window_start",
               "window_end", "worker", "unit", "missing")


def make_filter(status: str = "open", programme: str | None = None, stage: str | None = None,
                worker: str | None = None, mine: bool = False, person: str | None = None,
                sort: str = "status") -> WorklistFilter:
    """A filter from query parameters (empty strings mean "any")."""
    return WorklistFilter(status=status or "open", programme=programme or None,
                          stage=stage or None, worker=worker or None, mine=bool(mine),
                          person_key=person or None, sort=sort or "status")


def query_of(flt: WorklistFilter, **extra: Any) -> dict[str, str]:
    """Query parameters reproducing ``flt`` (for links that keep the filters)."""
    params = {"status": flt.status, "programme": flt.programme or "", "stage": flt.stage or "",
              "worker": flt.worker or "", "mine": "1" if flt.mine else "",
              "person": flt.person_key or "", "sort": flt.sort}
    params.update({k: str(v) for k, v in extra.items()})
    return {k: v for k, v in params.items() if v not in ("", None)}


def sex_text(sex: str | None, locale: str) -> str:
    """"kvinna"/"man" (the label table), "" when unknown."""
    from utfall.domain import labels

    return labels.label("sex", sex, locale) if sex else ""


def _text(value: Any, locale: str) -> str:
    if value is None:
        return ""
    return str(getattr(value, locale, None) or value.sv)


def csv_text(items: Iterable[WorklistItem], locale: str) -> str:
    """The CSV file (BOM, ``;``, CRLF) with headers in ``locale``."""
    from utfall.domain import labels

    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([t(f"worklist.csv.{c}", locale) for c in CSV_COLUMNS])
    for item in items:
        r = item.row
        missing = [labels.label("instrument", i, locale) for i in r.instruments
                   if i not in r.instruments_done]
        writer.writerow([
            t(f"web.status.{r.status}", locale), item.person, sex_text(item.sex, locale),
            "" if item.age is None else item.age, _text(r.programme_title, locale),
            _text(r.title, locale), format_date(r.due_date, locale),
            format_date(r.window_start, locale), format_date(r.window_end, locale),
            item.worker_name or "", item.unit_name or "", ", ".join(missing)])
    return out.getvalue()


def csv_name(unit_id: str | None, day: Any) -> str:
    """``arbetslista-<unit>-<date>.csv`` (ASCII, no person data)."""
    safe = "".join(c for c in str(unit_id or "enhet") if c.isalnum() or c in "-_")
    return f"arbetslista-{safe}-{day.isoformat()}.csv"
