"""Small server-drawn SVG charts of the analytics pages (trend with confidence
intervals, funnel plot with every unit named). Plain SVG, no script: each point has a
``<title>`` (hover) and is focusable with an ``aria-label`` (keyboard, screen readers);
the page shows the same numbers in a table beside the chart."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from utfall.web.formats import number, percent

PALETTE = ("#1f5f99", "#b3541e", "#2e7d32", "#6a3d9a", "#8c6d1f", "#c2185b", "#00796b",
           "#5d4037", "#455a64")
MARKERS = ("circle", "square", "diamond", "triangle")


def _marker(kind: str, x: float, y: float, colour: str, attrs: str) -> str:
    if kind == "square":
        return (f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}" '
                f'{attrs}>')
    if kind == "diamond":
        return (f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} '
                f'{x - 5:.1f},{y:.1f}" fill="{colour}" {attrs}>')
    if kind == "triangle":
        return (f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} '
                f'{x - 5:.1f},{y + 4:.1f}" fill="{colour}" {attrs}>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{colour}" {attrs}>'


def _close(kind: str) -> str:
    return {"square": "</rect>", "diamond": "</polygon>", "triangle": "</polygon>"
            }.get(kind, "</circle>")


def trend_svg(series: Sequence[dict[str, Any]], periods: Sequence[str], title: str,
              locale: str, label: Callable[[str | None], str], *, share: bool = True) -> str:
    """Lines over years with 95 % confidence intervals as whiskers; one colour and
    marker shape per series (never colour alone), legend with names."""
    w, h, left, right, top, bottom = 720, 320, 56, 16, 28, 40
    values = [v for s in series for p in s["points"]
              for v in (p["value"], p["ci_low"], p["ci_high"]) if v is not None]
    if not values or not periods:
        return ""
    lo, hi = min(values), max(values)
    lo = 0.0 if share or lo >= 0 else lo
    hi = hi if hi > lo else lo + 1
    hi += (hi - lo) * 0.05
    xs = {p: left + (w - left - right) * (i + 0.5) / len(periods) for i, p in enumerate(periods)}

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - (v - lo) / (hi - lo))

    def fmt(v: float) -> str:
        return percent(v, locale) if share else number(v, 1, locale)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h + 24 * len(series)}" '
           f'role="img" aria-labelledby="trend-title" class="chart-svg">',
           f'<title id="trend-title">{escape(title)}</title>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="#ddd"/><text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                   f'font-size="11">{escape(fmt(v))}</text>')
    for p, x in xs.items():
        out.append(f'<text x="{x:.1f}" y="{h - bottom + 18}" text-anchor="middle" '
                   f'font-size="12">{escape(p)}</text>')
    for i, s in enumerate(series):
        colour, kind = PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]
        name = label(s["level"])
        pts = [(xs[p["period"]], p) for p in s["points"]
               if p["value"] is not None and p["period"] in xs]
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y(p['value']):.1f}" for x, p in pts)
            dash = ' stroke-dasharray="6 3"' if i % 2 else ""
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                       f'stroke-width="2"{dash}/>')
        for x, p in pts:
            if p["ci_low"] is not None and p["ci_high"] is not None:
                out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(p["ci_low"]):.1f}" '
                           f'y2="{y(p["ci_high"]):.1f}" stroke="{colour}" stroke-width="1.5"/>')
            text = f"{name} {p['period']}: {fmt(p['value'])}"
            if p["ci_low"] is not None and p["ci_high"] is not None:
                text += f" (95 %: {fmt(p['ci_low'])}–{fmt(p['ci_high'])})"
            attrs = f'tabindex="0" aria-label="{escape(text)}"'
            out.append(_marker(kind, x, y(p["value"]), colour, attrs)
                       + f"<title>{escape(text)}</title>" + _close(kind))
        ly = h + 8 + 24 * i
        out.append(_marker(kind, left + 6, ly, colour, 'aria-hidden="true"') + _close(kind))
        out.append(f'<text x="{left + 18}" y="{ly + 4}" font-size="12">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def funnel_svg(points: Sequence[dict[str, Any]], curves: Sequence[dict[str, Any]],
               target: float, title: str, locale: str, label: Callable[[str], str],
               verdict: Callable[[str], str]) -> str:
    """Funnel plot: value against size (log scale), 95 % and 99.8 % limits around the
    regional value; every point named in its title, outliers also labelled in text."""
    w, h, left, right, top, bottom = 720, 380, 56, 150, 28, 44
    if not points:
        return ""
    ns = [int(p["denominator"]) for p in points] + [int(c["n"]) for c in curves]
    n_lo, n_hi = max(1, min(ns)), max(max(ns), 2)
    ys = [float(p["value"]) for p in points] + [float(target)] + [
        float(c[k]) for c in curves for k in ("low_998", "high_998")]
    lo, hi = max(0.0, min(ys) - 0.02), min(1.0, max(ys) + 0.02)
    hi = hi if hi > lo else lo + 0.01

    def x(n: float) -> float:
        if n_hi == n_lo:
            return (left + w - right) / 2
        return left + (w - left - right) * (math.log(n) - math.log(n_lo)) / (
            math.log(n_hi) - math.log(n_lo))

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - (v - lo) / (hi - lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
           f'aria-labelledby="funnel-title" class="chart-svg">',
           f'<title id="funnel-title">{escape(title)}</title>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="#eee"/><text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                   f'font-size="11">{escape(percent(v, locale))}</text>')
    for n in _ticks(n_lo, n_hi):
        out.append(f'<text x="{x(n):.1f}" y="{h - bottom + 16}" text-anchor="middle" '
                   f'font-size="11">{n}</text>')
    out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
               f'stroke="#333" stroke-width="1.5"/>')
    for key, dash in (("95", ' stroke-dasharray="5 4"'), ("998", "")):
        for side in ("low", "high"):
            pts = " ".join(f"{x(c['n']):.1f},{y(c[f'{side}_{key}']):.1f}" for c in curves)
            if pts:
                out.append(f'<polyline points="{pts}" fill="none" stroke="#777" '
                           f'stroke-width="1.2"{dash}/>')
    for p in sorted(points, key=lambda p: -int(p["denominator"])):
        name = label(str(p["level"]))
        words = verdict(str(p["flag"] or ""))
        text = (f"{name}: {percent(p['value'], locale)} ({p['numerator']} av "
                f"{p['denominator']}) – {words}")
        outlier = str(p["flag"] or "").endswith("998")
        colour = "#b00020" if outlier else ("#c77700" if p["flag"] else "#1f5f99")
        kind = "diamond" if outlier else ("square" if p["flag"] else "circle")
        px, py = x(int(p["denominator"])), y(float(p["value"]))
        out.append(_marker(kind, px, py, colour,
                           f'tabindex="0" aria-label="{escape(text)}" class="pt"')
                   + f"<title>{escape(text)}</title>" + _close(kind))
        if p["flag"]:
            out.append(f'<text x="{px + 8:.1f}" y="{py + 4:.1f}" font-size="11" '
                       f'fill="{colour}">{escape(name)}</text>')
    out.append(f'<text x="{(left + w - right) / 2:.1f}" y="{h - 6}" text-anchor="middle" '
               f'font-size="11">n</text>')
    out.append("</svg>")
    return "".join(out)


def _ticks(lo: int, hi: int) -> list[int]:
    out = []
    for base in (1, 2, 5):
        k = 1
        while base * k <= hi:
            if base * k >= lo:
                out.append(base * k)
            k *= 10
    return sorted(out)
