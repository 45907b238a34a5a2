"""The progress chart: dates with month and year, raw scores on each instrument's own
scale with its bands, the life-situation domains as a profile, markers and direct
labels (not colour alone), text ≥ 12 px at phone width, a text table; and a look in
real Chromium at desktop and 390 px (screenshots in test-artifacts/chart/)."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from utfall.care.chart import chart_panels, chart_table, combined_svg
from utfall.care.timeline import AssessmentEntry, domain_profile
from utfall.instruments import get_instrument, score
from utfall.instruments.models import LocalText

DAYS = [dt.date(2025, 11, 4), dt.date(2026, 1, 20), dt.date(2026, 3, 17)]
LIFE = {"item_1": 20, "item_2": 0, "item_3": 12, "item_4": 0, "item_5": 3, "item_6": 0,
        "item_7": 0, "item_8": False, "item_9": 2, "item_10": 6, "item_11": 8, "item_12": 4,
        "item_13": 0, "item_14": 1, "item_15": False, "item_16": True, "item_17": 9,
        "item_18": 7, "item_19": 3}


def _entry(instrument: str, answers: dict, day: dt.date, n: int) -> AssessmentEntry:
    definition = get_instrument(instrument)
    result = score(definition, answers, sex="F", age=40)
    band = None
    for band_set in definition.bands:
        for b in band_set.bands:
            if b.id == result.band:
                band = b.label
    return AssessmentEntry(
        date=day, assessment_id=f"a{instrument}{n}", instrument=instrument, stage=None,
        score=result.total, subscores=dict(result.subscales), band=result.band,
        band_label=band, source="capture", unit_id="u", title=LocalText(sv="x", en="x"))


def _profile() -> list:
    entries = []
    for n, day in enumerate(DAYS):
        entries.append(_entry("phq-9", {f"item_{i}": (3 - n) if i < 6 else 1
                                        for i in range(1, 10)}, day, n))
        entries.append(_entry("audit", {f"item_{i}": max(0, 3 - n) for i in range(1, 9)}
                              | {"item_9": 2 if n == 0 else 0, "item_10": 2}, day, n))
        life = dict(LIFE, item_1=20 - 8 * n, item_18=7 + n)
        entries.append(_entry("life-situation", life, day, n))
    return domain_profile(entries)


def _visible_text(svg: str) -> str:
    """The text a reader sees: <text> contents, tooltips left out."""
    svg = re.sub(r"<title>.*?</title>", "", svg)
    return " ".join(re.findall(r">([^<>]+)<", svg))


def test_panels_use_own_scales_bands_and_swedish_dates() -> None:
    panels = chart_panels(_profile(), "F", "sv")
    assert len(panels) == 3  # audit, phq-9, life-situation profile
    audit, phq, life = panels
    text = _visible_text(phq)
    assert "PHQ-9" in text
    assert "skala 0–27" in text and "lägre är bättre" in text  # its own scale, raw
    for band in ("Minimala symtom", "Lindriga symtom", "Måttliga symtom"):
        assert band in text  # bands shaded and named
    assert phq.count("<rect") >= 5  # one shaded area per band (plus the frame)
    assert "nov 2025" in text and "mar 2026" in text  # month and year, Swedish
    assert not re.search(r"\b(Mon|Tue|Tis|Ons|Tor|Fre)\b", text)
    assert "%" not in text  # raw scores, not "% of scale"
    scores = [p.value for p in _profile() if p.instrument == "phq-9"]
    for value in scores:  # every point marked and labelled with its value
        assert re.search(rf">{int(value)}<", phq)
    assert phq.count("<circle") == len(scores)
    assert "Riskabel" in _visible_text(audit) or "Zon" in _visible_text(audit) \
        or len(re.findall(r"<rect", audit)) >= 4
    life_text = _visible_text(life)
    for domain in ("Substansbruk", "Hälsa", "Sysselsättning", "Boende", "Brottslighet",
                   "Relationer", "Livskvalitet", "Egna mål"):
        assert domain in life_text, domain
    assert "första 4 november 2025" in life_text and "senaste 17 mars 2026" in life_text
    assert life.count("<rect") >= 8 and life.count("<circle") >= 8  # two marker shapes


def test_text_is_large_enough_at_phone_width() -> None:
    """Panels are 400 units wide: at a 358 px column (390 px phone minus margins) any
    font size of 13.5 units or more is at least 12 px."""
    for panel in chart_panels(_profile(), "F", "sv"):
        assert 'viewBox="0 0 400 ' in panel
        sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', panel)]
        assert sizes and min(sizes) >= 13
        assert min(sizes) * 358 / 400 >= 11.6
    # the browser test below measures the rendered size in Chromium


def test_english_chart_and_table_and_single_svg() -> None:
    profile = _profile()
    en = _visible_text("".join(chart_panels(profile, "F", "en")))
    assert "Nov 2025" in en and "lower is better" in en and "Moderate" in en
    rows = chart_table(profile, "sv")
    assert len(rows) == len(profile)
    assert any(r["date"] == "17 mars 2026" and r["band"] for r in rows)
    whole = combined_svg(chart_panels(profile, "F", "sv"), "sv")
    assert whole.startswith("<svg") and whole.count("<svg") == 4
    assert combined_svg([], "sv").startswith("<svg") and "Inga mätningar" in \
        combined_svg([], "sv")


def test_chart_is_drawn_without_a_chart_library() -> None:
    """The page's chart is string building, not Altair/vl-convert (which cost ~270 ms)."""
    import subprocess
    import sys

    probe = ("import sys\n"
             "from tests.web.test_chart import _profile\n"
             "from utfall.care.chart import chart_panels\n"
             "chart_panels(_profile(), 'F', 'sv')\n"
             "print(sorted(m for m in ('altair', 'vl_convert', 'matplotlib') "
             "if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


# ------------------------------------------------------------------ in Chromium

@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[object]:
    from tests.web.e2e_support import live_server

    with live_server(tmp_path_factory.mktemp("chart")) as live:
        saved = {k: os.environ.get(k) for k in live.env}
        os.environ.update(live.env)
        try:
            from utfall.access.audit import Actor
            from utfall.care import record_assessment
            from utfall.config import get_settings
            from utfall.store.db import get_engine

            get_settings.cache_clear()
            system = Actor("test", "system")
            engine = get_engine(live.env["UTFALL_DATABASE_URL"])
            with engine.begin() as conn:
                key = live.keys["region"]
                for n, day in enumerate(DAYS):
                    record_assessment(conn, system, key, "phq-9",
                                      {f"item_{i}": (3 - n) if i < 6 else 1
                                       for i in range(1, 10)},
                                      unit_id="reg-ber", on_date=day)
                    record_assessment(conn, system, key, "life-situation",
                                      dict(LIFE, item_1=20 - 8 * n, item_18=7 + n,
                                           goal_text="Eget boende"),
                                      unit_id="reg-ber", on_date=day)
            engine.dispose()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            get_settings.cache_clear()
        yield live


@pytest.mark.browser
def test_chart_in_chromium_desktop_and_phone(server) -> None:
    from tests.web.e2e_support import ARTIFACTS, CHROMIUM, chromium
    from tests.web.factory import PASSWORD

    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian chromium")
    folder = ARTIFACTS / "chart"
    folder.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        for name, width in (("desktop", 1280), ("phone-390", 390)):
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(server.url + "/login")
            page.get_by_label("Användarnamn").fill("clin")
            page.get_by_label("Lösenord").fill(PASSWORD)
            page.get_by_role("button", name="Logga in").click()
            page.wait_for_load_state()
            page.goto(f"{server.url}/persons/{server.keys['region']}")
            chart = page.locator(".chart-grid")
            chart.scroll_into_view_if_needed()
            assert page.locator(".chart-panel svg").count() == 3
            # the smallest rendered chart text, in CSS pixels
            smallest = page.evaluate("""() => Math.min(...[...document.querySelectorAll(
                '.chart-panel svg text')].map(t => t.getBoundingClientRect().height)
                .filter(h => h > 0))""")
            assert smallest >= 12, f"{name}: chart text {smallest:.1f} px"
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name}: {overflow} px sideways scrolling"
            text = chart.inner_text()
            assert "mar 2026" in text and "Måttliga symtom" in text
            page.locator(".chart-table summary").click()
            assert "17 mars 2026" in page.locator(".chart-table").inner_text()
            page.locator("#chart-h").scroll_into_view_if_needed()
            section = page.locator("#timeline")
            section.screenshot(path=str(folder / f"{name}.png"))
            page.close()
