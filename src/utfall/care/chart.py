"""The progress chart of a person, drawn as plain SVG (no chart library, ~1 ms).

One panel per instrument with a total score: raw scores on the instrument's own scale
with its interpretation bands shaded and named (bands from the instrument YAML), dates
as "mar 2026", every point marked and its value written next to it. One panel for the
life-situation domains as a profile: each domain on its own scale, the first
measurement (hollow square) and the latest (filled circle) with their values, and
which way is better. Nothing depends on colour; text is at least 14 units in a 400-unit
wide panel, so ≥ 12 px on a 390 px phone. :func:`chart_table` gives the same data as
rows for the text table shown with the chart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from typing import Any

from utfall.domain.formats import format_date, format_month, format_number

W = 400  # panel width in SVG units (the page scales it to the column)
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
INK = "#1b1b1b"
MUTED = "#4a4a4a"
BAND_FILLS = ("#f2f2f2", "#dedede")  # alternate, with names: bands never rely on colour
LIFE_SITUATION = "life-situation"

TEXTS = {
    "sv": {"lower": "lägre är bättre", "higher": "högre är bättre", "first": "första",
           "latest": "senaste", "domains": "Livssituation – profil",
           "empty": "Inga mätningar ännu", "scale": "skala", "one": "en mätning"},
    "en": {"lower": "lower is better", "higher": "higher is better", "first": "first",
           "latest": "latest", "domains": "Life situation – profile",
           "empty": "No measurements yet", "scale": "scale", "one": "one measurement"},
}


def _t(locale: str, key: str) -> str:
    return TEXTS["en" if locale == "en" else "sv"][key]


def _text(locale: str, value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "sv"):
        return str(getattr(value, "en" if locale == "en" else "sv") or value.sv)
    return str(value)


def _num(value: float, locale: str) -> str:
    return format_number(value, None if float(value).is_integer() else 1, locale)


def _svg(height: float, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height:.0f}" '
            f'width="{W}" height="{height:.0f}" role="img" aria-label="{escape(label)}" '
            f'font-family="{FONT}" font-size="14" fill="{INK}">'
            + "".join(body) + "</svg>")


def _bands(definition: Any, sex: str | None) -> list[Any]:
    """The band set of the total score that applies to ``sex`` (else the first)."""
    fallback: list[Any] = []
    for band_set in definition.bands:
        if band_set.measure != "total":
            continue
        when = band_set.when
        if when.sex is None and not fallback:
            fallback = list(band_set.bands)
        if when.sex is not None and when.sex == sex:
            return list(band_set.bands)
    return fallback


def _date_ticks(first: dt.date, last: dt.date, x: Any, locale: str) -> list[str]:
    """Up to four month-and-year labels that do not overlap."""
    out: list[str] = []
    if first == last:
        return [f'<text x="{x(first):.1f}" y="{0:.0f}" text-anchor="middle">'
                f'{escape(format_month(first, locale))}</text>']
    days = (last - first).days
    picks = [first + dt.timedelta(days=round(days * k / 3)) for k in range(4)]
    seen: list[float] = []
    for day in picks:
        px = x(day)
        if any(abs(px - s) < 80 for s in seen):
            continue
        seen.append(px)
        anchor = "start" if day == first else "end" if day == last else "middle"
        out.append(f'<text x="{px:.1f}" y="0" text-anchor="{anchor}">'
                   f'{escape(format_month(day, locale))}</text>')
    return out


def instrument_panel(definition: Any, points: Sequence[Any], sex: str | None,
                     locale: str) -> str:
    """Total scores of one instrument over time on its own scale, bands shaded."""
    scoring = definition.scoring
    lo, hi = definition.scale_range(scoring.total)
    direction = scoring.total.direction or scoring.direction
    top, left, right, plot_h, bottom = 52, 36, 14, 150, 44
    height = top + plot_h + bottom
    x0, x1 = left, W - right
    dates = [p.date for p in points]
    first, last = min(dates), max(dates)
    span = max((last - first).days, 1)

    def x(day: dt.date) -> float:
        if first == last:
            return (x0 + x1) / 2
        return x0 + 12 + (x1 - x0 - 24) * (day - first).days / span

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - lo) / (hi - lo if hi > lo else 1))

    title = _text(locale, definition.title)
    better = _t(locale, "lower" if direction == "lower_is_better" else "higher")
    arrow = "↓" if direction == "lower_is_better" else "↑"
    body = [f'<text x="0" y="18" font-weight="600" font-size="15">{escape(title)}</text>',
            f'<text x="0" y="38" fill="{MUTED}">{escape(_t(locale, "scale"))} '
            f'{_num(lo, locale)}–{_num(hi, locale)} · {arrow} {escape(better)}</text>']
    for i, band in enumerate(_bands(definition, sex)):
        # integer scores: a band 5–9 covers 4.5–9.5, so a point never sits on a border
        b_lo = lo if band.min is None else max(lo, float(band.min) - (
            0.5 if float(band.min).is_integer() else 0))
        b_hi = hi if band.max is None else min(hi, float(band.max) + (
            0.5 if float(band.max).is_integer() else 0))
        if b_hi <= b_lo:
            continue
        y_top, y_bottom = y(b_hi), y(b_lo)
        body.append(f'<rect x="{x0}" y="{y_top:.1f}" width="{x1 - x0}" '
                    f'height="{y_bottom - y_top:.1f}" fill="{BAND_FILLS[i % 2]}">'
                    f'<title>{escape(_text(locale, band.label))}</title></rect>')
        body.append(f'<line x1="{x0}" x2="{x1}" y1="{y_top:.1f}" y2="{y_top:.1f}" '
                    f'stroke="#9a9a9a" stroke-dasharray="3 3"/>')
        if y_bottom - y_top >= 15:
            body.append(f'<text x="{x1 - 4}" y="{y_top + 14:.1f}" text-anchor="end" '
                        f'font-size="13" fill="{MUTED}" paint-order="stroke" stroke="#fff" '
                        f'stroke-width="3">{escape(_text(locale, band.label))}</text>')
    body.append(f'<rect x="{x0}" y="{top}" width="{x1 - x0}" height="{plot_h}" fill="none" '
                f'stroke="#6b6b6b"/>')
    for value in (lo, hi):
        body.append(f'<text x="{x0 - 5}" y="{y(value) + 5:.1f}" text-anchor="end" '
                    f'font-size="13">{_num(value, locale)}</text>')
    ordered = sorted(points, key=lambda p: p.date)
    if len(ordered) > 1:
        path = " ".join(f"{x(p.date):.1f},{y(p.value):.1f}" for p in ordered)
        body.append(f'<polyline points="{path}" fill="none" stroke="{INK}" '
                    f'stroke-width="2.5"/>')
    label_all = len(ordered) <= 8
    for i, p in enumerate(ordered):
        px, py = x(p.date), y(p.value)
        band = p.band_label if hasattr(p, "band_label") else None
        tip = f"{format_date(p.date, locale)}: {_num(p.value, locale)}"
        if band:
            tip += f" – {_text(locale, band)}"
        body.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{INK}" stroke="#fff" '
                    f'stroke-width="1.5"><title>{escape(tip)}</title></circle>')
        if label_all or i == len(ordered) - 1:
            ty = py - 10 if py - 10 > top + 12 else py + 20
            body.append(f'<text x="{px:.1f}" y="{ty:.1f}" text-anchor="middle" '
                        f'font-weight="600" paint-order="stroke" stroke="#fff" '
                        f'stroke-width="3">{_num(p.value, locale)}</text>')
    ticks = _date_ticks(first, last, x, locale)
    body.append(f'<g transform="translate(0 {top + plot_h + 22})" font-size="13">'
                + "".join(ticks) + "</g>")
    if len(ordered) == 1:
        body.append(f'<text x="{(x0 + x1) / 2:.0f}" y="{top + plot_h + 40}" '
                    f'text-anchor="middle" font-size="13" fill="{MUTED}">'
                    f'{escape(_t(locale, "one"))}: {escape(format_date(first, locale))}</text>')
    return _svg(height, body, f"{title}: {better}")


def domains_panel(definition: Any, points: Sequence[Any], locale: str) -> str:
    """The life-situation domains as a profile: first and latest value on each
    domain's own scale, with which way is better."""
    by_measure: dict[str, list[Any]] = {}
    for p in points:
        by_measure.setdefault(p.measure, []).append(p)
    subs = [s for s in definition.scoring.subscales if s.id in by_measure]
    dates = sorted({p.date for p in points})
    first_day, last_day = dates[0], dates[-1]
    x0, x1 = 26, W - 34
    row_h, top = 80, 96
    body = [f'<text x="0" y="18" font-weight="600" font-size="15">'
            f'{escape(_t(locale, "domains"))}</text>']
    legend = (f'<rect x="1" y="31" width="14" height="14" fill="#fff" stroke="{INK}" '
              f'stroke-width="2.5"/><text x="22" y="43">{escape(_t(locale, "first"))} '
              f'{escape(format_date(first_day, locale))}</text>')
    if last_day != first_day:
        legend += (f'<circle cx="8" cy="60" r="6" fill="{INK}"/><text x="22" y="65">'
                   f'{escape(_t(locale, "latest"))} {escape(format_date(last_day, locale))}'
                   f'</text>')
    body.append(legend)
    for i, sub in enumerate(subs):
        lo, hi = definition.scale_range(sub)
        series = sorted(by_measure[sub.id], key=lambda p: p.date)
        first, latest = series[0], series[-1]
        direction = sub.direction or definition.scoring.direction
        arrow = "↑" if direction == "higher_is_better" else "↓"
        better = _t(locale, "lower" if direction == "lower_is_better" else "higher")
        y_label = top + i * row_h
        y_bar = y_label + 38

        def x(value: float, lo: float = lo, hi: float = hi) -> float:
            return x0 + (x1 - x0) * (value - lo) / (hi - lo if hi > lo else 1)

        title, note = _text(locale, sub.title), ""
        if len(title) > 36 and " (" in title:  # the explanation goes on the second line
            title, note = title.split(" (", 1)
            note = note.rstrip(")") + " · "
        body.append(f'<text x="0" y="{y_label}" font-weight="600">{escape(title)}</text>'
                    f'<text x="0" y="{y_label + 18}" font-size="13" '
                    f'fill="{MUTED}">{escape(note)}{arrow} {escape(better)}</text>')
        body.append(f'<line x1="{x0}" x2="{x1}" y1="{y_bar}" y2="{y_bar}" stroke="#bdbdbd" '
                    f'stroke-width="8" stroke-linecap="round"/>')
        body.append(f'<text x="{x0 - 6}" y="{y_bar + 5}" text-anchor="end" font-size="13">'
                    f'{_num(lo, locale)}</text><text x="{x1 + 6}" y="{y_bar + 5}" '
                    f'font-size="13">{_num(hi, locale)}</text>')
        tip_first = f"{_t(locale, 'first')} {format_date(first.date, locale)}: " \
                    f"{_num(first.value, locale)}"
        if latest is not first and latest.date != first.date:
            fx, lx = x(first.value), x(latest.value)
            tip = f"{_t(locale, 'latest')} {format_date(latest.date, locale)}: " \
                  f"{_num(latest.value, locale)}"
            body.append(f'<circle cx="{lx:.1f}" cy="{y_bar}" r="6" fill="{INK}">'
                        f'<title>{escape(tip)}</title></circle>')
            body.append(f'<rect x="{fx - 8:.1f}" y="{y_bar - 8}" width="16" height="16" '
                        f'fill="none" stroke="{INK}" stroke-width="2.5">'
                        f'<title>{escape(tip_first)}</title></rect>')
            if abs(lx - fx) >= 30:
                body.append(f'<text x="{fx:.1f}" y="{y_bar + 24}" text-anchor="middle" '
                            f'font-size="13">{_num(first.value, locale)}</text>')
                body.append(f'<text x="{lx:.1f}" y="{y_bar + 24}" text-anchor="middle" '
                            f'font-weight="600">{_num(latest.value, locale)}</text>')
            else:
                body.append(f'<text x="{(fx + lx) / 2:.1f}" y="{y_bar + 24}" '
                            f'text-anchor="middle" font-size="13">'
                            f'{_num(first.value, locale)} → '
                            f'<tspan font-weight="600">{_num(latest.value, locale)}</tspan>'
                            f'</text>')
        else:
            fx = x(first.value)
            body.append(f'<rect x="{fx - 6:.1f}" y="{y_bar - 6}" width="12" height="12" '
                        f'fill="#fff" stroke="{INK}" stroke-width="2.5">'
                        f'<title>{escape(tip_first)}</title></rect>'
                        f'<text x="{fx:.1f}" y="{y_bar + 24}" text-anchor="middle" '
                        f'font-size="13">{_num(first.value, locale)}</text>')
    height = top + len(subs) * row_h - 8
    return _svg(height, body, _t(locale, "domains"))


def chart_panels(profile: Sequence[Any], sex: str | None, locale: str) -> list[str]:
    """One SVG per instrument with total scores, then the domain profile."""
    from utfall.instruments import UnknownInstrumentError, get_instrument

    totals: dict[str, list[Any]] = {}
    domains: list[Any] = []
    for p in profile:
        if p.instrument == LIFE_SITUATION and p.measure != "total":
            domains.append(p)
        elif p.measure == "total":
            totals.setdefault(p.instrument, []).append(p)
    panels = []
    for instrument, points in sorted(totals.items()):
        try:
            definition = get_instrument(instrument)
        except UnknownInstrumentError:
            continue
        if definition.scoring.total is None:
            continue
        panels.append(instrument_panel(definition, points, sex, locale))
    if domains:
        panels.append(domains_panel(get_instrument(LIFE_SITUATION), domains, locale))
    return panels


def combined_svg(panels: list[str], locale: str) -> str:
    """All panels stacked in one SVG document (for ``utfall timeline --svg``)."""
    if not panels:
        return _svg(40, [f'<text x="0" y="24">{escape(_t(locale, "empty"))}</text>'],
                    _t(locale, "empty"))
    y, parts = 0.0, []
    for panel in panels:
        height = float(panel.split('height="', 1)[1].split('"', 1)[0])
        parts.append(panel.replace("<svg ", f'<svg y="{y:.0f}" ', 1))
        y += height + 24
    return _svg(y - 24, parts, _t(locale, "domains"))


def chart_table(profile: Sequence[Any], locale: str) -> list[dict[str, str]]:
    """The chart's data as rows (date, measure, value, band) for the text table."""
    rows = []
    for p in sorted(profile, key=lambda p: (p.instrument, p.measure, p.date)):
        band = getattr(p, "band_label", None)
        rows.append({"date": format_date(p.date, locale), "measure": _text(locale, p.label),
                     "value": _num(p.value, locale), "band": _text(locale, band)})
    return rows
