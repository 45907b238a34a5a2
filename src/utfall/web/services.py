"""Glue between the web layer and the service layers (care, instruments, analytics).

Nothing here decides access: the care services call the access policy; this module
only adds the consent filter to what they return and shapes data for templates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, select

from utfall.access.audit import Actor
from utfall.instruments import InstrumentDefinition, default_registry, enabled_items
from utfall.store.models import Organisation, Unit


def today() -> dt.date:
    """Today in Sweden."""
    from utfall.followup import local_today

    return local_today()


def plain(value: Any) -> Any:
    """``value`` as JSON-able data (pydantic models, dataclasses, dates)."""
    if hasattr(value, "model_dump"):
        return plain(value.model_dump())
    if hasattr(value, "__dataclass_fields__"):
        return {k: plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def person_timeline(conn: Connection, actor: Actor, person_key: str, *,
                    emergency_reason: str | None = None) -> tuple[Any, list[Any], int]:
    """The care timeline, already filtered by consent in the care service (which calls
    :func:`utfall.access.policy.filter_timeline`): ``(timeline, entries, hidden count)``."""
    from utfall.care import timeline

    tl = timeline(conn, actor, person_key, emergency_reason=emergency_reason or None)
    return tl, tl.entries(), tl.hidden


_CHARTS: OrderedDict[str, str | None] = OrderedDict()
_CHARTS_MAX = 512
_charts_lock = threading.Lock()


def cached_svg(key: str, draw: Callable[[], str | None]) -> str | None:
    """``draw()`` once per ``key`` (an in-process LRU); None when drawing fails."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    with _charts_lock:
        if digest in _CHARTS:
            _CHARTS.move_to_end(digest)
            return _CHARTS[digest]
    try:
        svg = draw()
    except Exception:  # a chart must never break the page
        import logging

        logging.getLogger("utfall.web").exception("chart failed")
        return None
    with _charts_lock:
        _CHARTS[digest] = svg
        while len(_CHARTS) > _CHARTS_MAX:
            _CHARTS.popitem(last=False)
    return svg


CHART_TEXTS = {
    "sv": {"table": "Visa diagrammets värden som tabell", "date": "Datum", "measure": "Mått",
           "value": "Värde", "band": "Nivå"},
    "en": {"table": "Show the chart's values as a table", "date": "Date", "measure": "Measure",
           "value": "Value", "band": "Band"},
}


def chart_svg(tl: Any, locale: str) -> str | None:
    """The progress chart as HTML: one plain-SVG panel per instrument (own scale, bands
    shaded) and the life-situation profile, then the same values as a text table.

    Drawing is pure Python string building (~1 ms, no chart library); the result is
    still kept in the in-process LRU keyed by the profile, the sex and the language,
    so an unchanged profile is not drawn twice. None when there is nothing to draw.
    """
    import json
    from html import escape

    from utfall.care.chart import chart_panels, chart_table

    if not tl.profile:
        return None
    locale = "en" if locale == "en" else "sv"
    key = json.dumps([locale, tl.sex, [[p.date.isoformat(), p.instrument, p.measure, p.value,
                                        p.band] for p in tl.profile]])

    def draw() -> str:
        texts = CHART_TEXTS[locale]
        panels = chart_panels(tl.profile, tl.sex, locale)
        rows = "".join(
            f"<tr><td>{escape(r['date'])}</td><td>{escape(r['measure'])}</td>"
            f"<td class=\"num\">{escape(r['value'])}</td><td>{escape(r['band'])}</td></tr>"
            for r in chart_table(tl.profile, locale))
        table = (f'<details class="chart-table"><summary>{escape(texts["table"])}</summary>'
                 f'<div class="table-wrap"><table><thead><tr>'
                 f'<th scope="col">{escape(texts["date"])}</th>'
                 f'<th scope="col">{escape(texts["measure"])}</th>'
                 f'<th scope="col">{escape(texts["value"])}</th>'
                 f'<th scope="col">{escape(texts["band"])}</th></tr></thead>'
                 f'<tbody>{rows}</tbody></table></div></details>')
        return ('<div class="chart-grid">' + "".join(
            f'<div class="chart-panel">{panel}</div>' for panel in panels) + "</div>" + table)

    return cached_svg(key, draw)


def organisations(conn: Connection) -> list[dict[str, Any]]:
    """All organisations (id, name, principal type)."""
    return [{"id": o.id, "name": o.name, "principal_type": o.principal_type}
            for o in conn.execute(select(Organisation).order_by(Organisation.name))]


def units(conn: Connection, principal: str | None = None) -> list[dict[str, Any]]:
    """Units with organisation and principal type."""
    query = (select(Unit.unit_id, Unit.name, Unit.care_level, Organisation.name,
                    Organisation.principal_type, Organisation.id)
             .join(Organisation, Organisation.id == Unit.organisation_id)
             .order_by(Unit.name))
    if principal:
        query = query.where(Organisation.principal_type == principal)
    return [{"unit_id": r[0], "name": r[1], "care_level": r[2], "organisation": r[3],
             "principal_type": r[4], "organisation_id": r[5]} for r in conn.execute(query)]


def unit_names(conn: Connection) -> dict[str, str]:
    """Unit id → name."""
    return dict(conn.execute(select(Unit.unit_id, Unit.name)).all())


def instruments() -> list[InstrumentDefinition]:
    """All instrument definitions."""
    return list(default_registry())


def form_items(definition: InstrumentDefinition, answers: Mapping[str, Any]) -> list[Any]:
    """Items of the form; all are rendered, those disabled by the answers so far marked."""
    try:
        enabled = set(enabled_items(definition, answers))
    except Exception:
        enabled = {i.linkId for i in definition.items}
    return [(item, item.linkId in enabled or not item.enableWhen) for item in definition.items]


def answer_problems(definition: InstrumentDefinition, answers: Mapping[str, Any],
                    locale: str) -> dict[str, str]:
    """Field-level errors of the instrument engine (item linkId → message)."""
    from utfall.instruments import validate_answers

    out: dict[str, str] = {}
    for p in validate_answers(definition, answers):
        if p.severity == "error":
            text = p.en if locale == "en" else p.sv
            key = p.link_id or "_"
            out[key] = f"{out[key]}; {text}" if key in out else text
    return out


def parse_answers(definition: InstrumentDefinition, form: Mapping[str, Any]
                  ) -> tuple[dict[str, Any], dict[str, str]]:
    """Answers from a posted form: ints for numeric items, text for text items.
    Returns ``(answers, field errors)``; blanks are left out (the engine decides)."""
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in definition.items:
        raw = form.get(item.linkId)
        if isinstance(raw, list):
            raw = raw[-1]
        if raw is None or str(raw).strip() == "":
            continue
        if item.numeric:
            try:
                answers[item.linkId] = int(str(raw).strip())
            except ValueError:
                errors[item.linkId] = "number"
        else:
            answers[item.linkId] = str(raw)[: item.maxLength or 2000]
    return answers, errors


# ------------------------------------------------------------------ aggregates


class ResultCache:
    """Indicator results computed once per interval from the canonical tables (DESIGN:
    precompute, serve stored results). Only disclosure-controlled tables leave it."""

    def __init__(self, ttl_seconds: float = 900) -> None:
        self.ttl = ttl_seconds
        self._lock = threading.Lock()
        self._at = 0.0
        self._value: dict[str, Any] | None = None

    def get(self, engine: Engine) -> dict[str, Any]:
        """``{"results": disclosed indicator results, "regional": regional table}``."""
        with self._lock:
            if self._value is None or time.monotonic() - self._at > self.ttl:
                self._value = compute_aggregates(engine)
                self._at = time.monotonic()
            return self._value

    def warm(self, engine: Engine) -> None:
        """Start computing in the background unless fresh results exist (called when
        a manager or analyst logs in, so their first page does not wait as long)."""
        fresh = self._value is not None and time.monotonic() - self._at <= self.ttl
        if not fresh and not self._lock.locked():
            def run() -> None:
                try:
                    self.get(engine)
                except Exception:  # pragma: no cover - the page computes again
                    import logging

                    logging.getLogger("utfall.web").exception("warming aggregates failed")

            threading.Thread(target=run, daemon=True, name="utfall-aggregates").start()

    def clear(self) -> None:
        with self._lock:
            self._value = None


def compute_aggregates(engine: Engine) -> dict[str, Any]:
    """Indicator catalogue and regional table: one protected release (same masks)."""
    from utfall.analytics.runs import latest_release

    out: dict[str, Any] = {"results": None, "regional": None, "errors": []}
    try:  # the latest stored run; computed and stored once when the data has changed
        release = latest_release(engine)
        if release is not None:
            out["results"], out["regional"] = release
    except Exception as exc:  # pragma: no cover - reported on the page
        out["errors"].append(f"indicators: {type(exc).__name__}")
    return out


def indicator_titles() -> dict[str, Any]:
    """Indicator id → title ({sv, en})."""
    from utfall.analytics.semantics.catalogue import load_catalogue

    try:
        return {i.id: i.title for i in load_catalogue().every}
    except Exception:
        return {}


def indicator_kinds() -> dict[str, str]:
    """Indicator id → kind (proportion, count, rate…)."""
    from utfall.analytics.semantics.catalogue import load_catalogue

    try:
        return {i.id: i.kind for i in load_catalogue().indicators}
    except Exception:
        return {}
