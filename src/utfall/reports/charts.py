"""Charts for reports: Altair specs rendered to inline SVG on the server (vl-convert).

Charts only ever receive disclosure-controlled rows (masked values are null and are
left out). Nothing here computes counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import altair as alt
import pandas as pd
import vl_convert as vlc

LOCALES: dict[str, Literal["sv-SE", "en-GB"]] = {"sv": "sv-SE", "en": "en-GB"}


def to_svg(chart: alt.TopLevelMixin, locale: str = "sv") -> str:
    """Render an Altair chart to an SVG string (no browser, no network)."""
    svg = vlc.vegalite_to_svg(chart.to_json(), format_locale=LOCALES.get(locale, "en-GB"))
    # drop the XML prolog if any, so the SVG can sit inline in HTML
    return svg[svg.find("<svg") :]


def binomial_limit(p0: float, n: int, q: float) -> float:
    """Funnel limit: :func:`utfall.analytics.stats.funnel_limit` if present, else normal approx."""
    try:
        from utfall.analytics.stats import funnel_limit
    except ImportError:  # pragma: no cover - the indicator engine ships it
        from statistics import NormalDist

        if n <= 0:
            return math.nan
        z = NormalDist().inv_cdf(q)
        return min(1.0, max(0.0, p0 + z * math.sqrt(p0 * (1 - p0) / n)))
    return funnel_limit(p0, n, q)


def trend_chart(
    points: Sequence[dict[str, Any]],
    *,
    title: str,
    y_title: str,
    percent: bool,
    locale: str = "sv",
    target: float | None = None,
) -> str | None:
    """Lines of ``value`` by ``period`` per ``series`` (units, plus the region as a whole).

    ``points``: dicts with ``period``, ``series``, ``value`` (published values only).
    """
    rows = [p for p in points if p.get("value") is not None]
    if len({p["period"] for p in rows}) < 2:
        return None
    df = pd.DataFrame(rows)
    axis = alt.Axis(format=".0%" if percent else ",.4~g", title=y_title)
    lines = (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "period:O",
                title="År" if locale == "sv" else "Year",
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y("value:Q", axis=axis, scale=alt.Scale(zero=True)),
            color=alt.Color("series:N", title="Enhet" if locale == "sv" else "Unit", sort=None),
            strokeDash=alt.condition(alt.datum.is_total, alt.value([1, 0]), alt.value([4, 2]))
            if "is_total" in df.columns
            else alt.value([1, 0]),
        )
    )
    layers: list[Any] = [lines]
    if target is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"target": [target]}))
            .mark_rule(color="#777", strokeDash=[6, 3])
            .encode(y="target:Q")
        )
    chart = alt.layer(*layers).properties(width=520, height=220, title=title)
    return to_svg(chart, locale)


def funnel_chart(
    units: Sequence[dict[str, Any]],
    p0: float,
    *,
    title: str,
    locale: str = "sv",
) -> str | None:
    """Funnel plot: unit proportions against their denominators with 95 % / 99.8 % limits.

    ``units``: dicts with ``series`` (unit label), ``denominator``, ``value`` (published
    values only); ``p0`` the region's proportion.
    """
    pts = [u for u in units if u.get("value") is not None and u.get("denominator")]
    if len(pts) < 2 or p0 is None or not 0 <= p0 <= 1:
        return None
    n_max = max(int(u["denominator"]) for u in pts)
    grid = sorted({max(1, round(n_max * 1.1 * k / 60)) for k in range(1, 61)})
    limits = []
    for level, q in (("95 %", 0.025), ("99,8 %" if locale == "sv" else "99.8%", 0.001)):
        for n in grid:
            limits.append({"n": n, "limit": binomial_limit(p0, n, q), "level": level, "side": "lo"})
            limits.append(
                {"n": n, "limit": binomial_limit(p0, n, 1 - q), "level": level, "side": "hi"}
            )
    lim = pd.DataFrame(limits)
    lim["key"] = lim["level"] + lim["side"]
    n_title = "Antal i nämnaren" if locale == "sv" else "Denominator"
    p_title = "Andel" if locale == "sv" else "Proportion"
    curves = (
        alt.Chart(lim)
        .mark_line(strokeWidth=1)
        .encode(
            x=alt.X("n:Q", title=n_title),
            y=alt.Y("limit:Q", axis=alt.Axis(format=".0%", title=p_title)),
            detail="key:N",
            strokeDash=alt.StrokeDash(
                "level:N", title="Kontrollgräns" if locale == "sv" else "Control limit"
            ),
            color=alt.value("#888"),
        )
    )
    centre = alt.Chart(pd.DataFrame({"p0": [p0]})).mark_rule(color="#333").encode(y="p0:Q")
    dots = (
        alt.Chart(pd.DataFrame(pts))
        .mark_point(filled=True, size=60)
        .encode(
            x="denominator:Q",
            y="value:Q",
            color=alt.Color("series:N", title="Enhet" if locale == "sv" else "Unit"),
        )
    )
    chart = alt.layer(curves, centre, dots).properties(width=520, height=260, title=title)
    return to_svg(chart, locale)
