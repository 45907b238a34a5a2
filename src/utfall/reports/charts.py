"""Charts for reports: small hand-drawn SVG (no browser, no JavaScript, no Vega runtime).

Altair + vl-convert took about 0.8 s of CPU per chart and produced SVG that WeasyPrint
needed another 0.9 s per chart to draw; the report has ~40 charts, so the charts alone
cost more than the whole budget of a report (docs/performance.md). These two chart
types are simple enough to draw directly.

Charts only ever receive disclosure-controlled rows (masked values are null and are
left out). Nothing here computes counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

PALETTE = (
    "#1f5f99", "#b3541e", "#2e7d32", "#6a3d9a", "#8c6d1f", "#c2185b", "#00796b", "#5d4037",
    "#455a64", "#e08a00", "#3949ab", "#7cb342",
)
DASHES = ("", "5 3", "2 2", "8 3 2 3")


def binomial_limit(p0: float, n: int, q: float) -> float:
    """Funnel limit from :func:`utfall.analytics.stats.funnel_limit`."""
    from utfall.analytics.stats import funnel_limit

    return funnel_limit(p0, n, q)


def _num(v: float, decimals: int, locale: str) -> str:
    text = f"{v:,.{decimals}f}"
    return text.replace(",", "\u00a0").replace(".", ",") if locale == "sv" else text


def _pct(v: float, locale: str, decimals: int = 0) -> str:
    return _num(v * 100, decimals, locale) + ("\u00a0%" if locale == "sv" else "%")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo or 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out, v = [], first
    while v <= hi + 1e-12:
        out.append(round(v, 12))
        v += step
    return out


def _svg_open(w: int, h: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" font-family="DejaVu Sans, sans-serif" '
        f'font-size="10">',
        f"<title>{escape(title)}</title>",
        f'<text x="4" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]


def trend_chart(
    points: Sequence[dict[str, Any]],
    *,
    title: str,
    y_title: str,
    percent: bool,
    locale: str = "sv",
    target: float | None = None,
) -> str | None:
    """Lines of ``value`` by ``period``: the region (first series) thick and black, every
    unit as a thin grey line (the unit × year table beside it names them: sixteen
    colours would repeat and a legend of sixteen names costs the PDF renderer more than
    the rest of the chart), the target dashed.

    ``points``: dicts with ``period``, ``series``, ``value`` (published values only).
    """
    rows = [p for p in points if p.get("value") is not None]
    periods = sorted({str(p["period"]) for p in rows})
    if len(periods) < 2:
        return None
    series: list[str] = []
    for p in rows:
        if p["series"] not in series:
            series.append(p["series"])
    values = [float(p["value"]) for p in rows] + ([target] if target is not None else [])
    lo = min(0.0, min(values))
    hi = max(values) or 1.0
    hi += (hi - lo) * 0.05
    w, plot_h, left, right, top = 900, 200, 62, 16, 26
    h = top + plot_h + 40
    xs = {p: left + (w - left - right) * (i + 0.5) / len(periods) for i, p in enumerate(periods)}

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    def fmt(v: float) -> str:
        return _pct(v, locale) if percent else _num(v, 1 if abs(v) < 100 else 0, locale)

    out = _svg_open(w, h, title)
    for tick in _ticks(lo, hi, 4):
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{left - 4}" y="{y(tick) + 3:.1f}" text-anchor="end">'
                   f"{escape(fmt(tick))}</text>")
    for period, x in xs.items():
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
                   f"{period}</text>")
    if target is not None:
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(target):.1f}" '
                   f'y2="{y(target):.1f}" stroke="#b3541e" stroke-dasharray="6 3"/>')
    for name in series[1:] + series[:1]:  # the region last, on top
        region = name == series[0]
        pts = sorted((str(p["period"]), float(p["value"])) for p in rows if p["series"] == name)
        path = " ".join(f"{xs[p]:.1f},{y(v):.1f}" for p, v in pts)
        out.append(f'<polyline points="{path}" fill="none" '
                   f'stroke="{"#000" if region else "#9aa5b1"}" '
                   f'stroke-width="{2.5 if region else 1}"/>')
    key = ("— hela regionen (svart)   — enheter (grå, namngivna i tabellen)"
           if locale == "sv" else "— whole region (black)   — units (grey, named in the table)")
    if target is not None:
        key += ("   - - målnivå" if locale == "sv" else "   - - target")
    out.append(f'<text x="{left}" y="{top + plot_h + 32}" fill="#444">{key}</text>')
    out.append("</svg>")
    return "".join(out)


def funnel_chart(
    units: Sequence[dict[str, Any]],
    p0: float,
    *,
    title: str,
    locale: str = "sv",
) -> str | None:
    """Funnel plot: unit proportions against their denominators with 95 % / 99,8 % limits.

    ``units``: dicts with ``series`` (unit label), ``denominator``, ``value`` (published
    values only); ``p0`` the region's proportion. Every point carries a number that the
    key below the plot names (never colour alone).
    """
    pts = [u for u in units if u.get("value") is not None and u.get("denominator")]
    if len(pts) < 2 or p0 is None or not 0 <= p0 <= 1:
        return None
    pts = sorted(pts, key=lambda u: str(u["series"]))
    n_max = max(int(u["denominator"]) for u in pts) * 1.1
    # 24 points, denser where the limits bend (small n); the exact limit is ~1 ms each
    grid = sorted({max(1, round(n_max * (k / 24) ** 2)) for k in range(1, 25)})
    curves = {
        q: [(n, binomial_limit(p0, n, q)) for n in grid] for q in (0.001, 0.025, 0.975, 0.999)
    }
    values = [float(u["value"]) for u in pts] + [p0]
    lo = max(0.0, min(values) - 0.1)
    hi = min(1.0, max(values) + 0.1)
    w, plot_h, left, right, top = 900, 240, 62, 16, 26
    legend_cols = 3
    h = top + plot_h + 34 + 16 * (math.ceil(len(pts) / legend_cols) + 1)

    def x(n: float) -> float:
        return left + (w - left - right) * n / n_max

    def y(v: float) -> float:
        v = min(max(v, lo), hi)
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    out = _svg_open(w, h, title)
    for tick in _ticks(lo, hi):
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                   f'stroke="#eee"/><text x="{left - 4}" y="{y(tick) + 3:.1f}" '
                   f'text-anchor="end">{escape(_pct(tick, locale))}</text>')
    for tick in _ticks(0, n_max):
        out.append(f'<text x="{x(tick):.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
                   f"{escape(_num(tick, 0, locale))}</text>")
    n_title = "Antal i nämnaren" if locale == "sv" else "Denominator"
    out.append(f'<text x="{(left + w) / 2:.0f}" y="{top + plot_h + 28}" '
               f'text-anchor="middle">{n_title}</text>')
    for q, curve in curves.items():
        dash = "2 2" if q in (0.001, 0.999) else "6 3"
        path = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in curve if not math.isnan(v))
        out.append(f'<polyline points="{path}" fill="none" stroke="#888" '
                   f'stroke-dasharray="{dash}"/>')
    out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(p0):.1f}" y2="{y(p0):.1f}" '
               f'stroke="#333"/>')
    for i, u in enumerate(pts, start=1):
        px, py = x(float(u["denominator"])), y(float(u["value"]))
        colour = PALETTE[(i - 1) % len(PALETTE)]
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}">'
                   f'<title>{escape(str(u["series"]))}</title></circle>'
                   f'<text x="{px + 6:.1f}" y="{py - 4:.1f}" font-size="9">{i}</text>')
        lx = left + ((i - 1) % legend_cols) * (w - left) / legend_cols
        ly = top + plot_h + 46 + 16 * ((i - 1) // legend_cols)
        out.append(f'<circle cx="{lx + 4:.0f}" cy="{ly - 3}" r="4" fill="{colour}"/>'
                   f'<text x="{lx + 12:.0f}" y="{ly}">{i}. {escape(str(u["series"]))}</text>')
    ly = top + plot_h + 46 + 16 * math.ceil(len(pts) / legend_cols)
    key = ("– – 95 %-gräns   ··· 99,8 %-gräns   — regionens värde" if locale == "sv"
           else "– – 95% limit   ··· 99.8% limit   — regional value")
    out.append(f'<text x="{left}" y="{ly}" fill="#444">{key}</text>')
    out.append("</svg>")
    return "".join(out)
