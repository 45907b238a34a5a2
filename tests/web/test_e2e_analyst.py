"""Real Chromium on the synthetic region: the analyst explores an indicator by unit and
year and downloads exactly what is shown (CSV, XLSX); the funnel plot names the planted
outlier unit; the manager's dashboard uses Swedish number formats. Screenshots in
``test-artifacts/analytics/`` (desktop and 390 px)."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.analytics_support import PLANTED_NAME, copy_region
from tests.web.e2e_support import ARTIFACTS, chromium, free_port
from tests.web.factory import PASSWORD

pytestmark = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no chromium")
SHOTS = ARTIFACTS / "analytics"
THIN = "\u202f"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("analyst-e2e")
    env = copy_region(folder)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "utfall.web.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def _login(page, url: str, user: str, target: str) -> None:
    page.goto(f"{url}/login?next={target}")
    page.get_by_label("Användarnamn").fill(user)
    page.get_by_label("Lösenord").fill(PASSWORD)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_url(re.compile(".*" + re.escape(target.split("?")[0]) + ".*"))


def _screen_table(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{selector} tr", "rows => rows.map(r => Array.from(r.children).map(c => "
                          "c.innerText.trim()))")


def test_analyst_explores_downloads_and_finds_the_outlier(server: str, browser) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    _login(page, server, "ana", "/analytics")
    assert page.get_by_text("Data till och med 31 december 2024").is_visible()
    # pick the indicator, the unit breakdown and two years in the form
    page.get_by_label("Indikator", exact=True).select_option("kva_au119")
    page.get_by_label("Indelning", exact=True).select_option("unit_id")
    page.get_by_role("button", name="Visa").click()
    page.wait_for_url(re.compile(r".*breakdown=unit_id.*"))
    for box in page.locator("input[name=year]:checked").all():
        box.uncheck()  # the default: the latest year
    for year in ("2019", "2020"):
        page.get_by_label(year, exact=True).check()
    page.get_by_role("button", name="Visa").click()
    page.wait_for_url(re.compile(r".*year=2019.*year=2020.*"))
    assert "indicator=kva_au119" in page.url  # shareable state in the query string
    table = _screen_table(page, "#explorer-table")
    header, rows = table[0], table[1:]
    assert header[0] == "Enhet" and "Värde" in header
    assert {r[1] for r in rows} == {"2019", "2020"}
    names = {r[0] for r in rows}
    assert PLANTED_NAME in names and not any(re.fullmatch(r"[a-z]+-[a-z]+", n) for n in names)
    assert any(re.fullmatch(r"\d+,\d %", r[4].replace("\xa0", " ")) for r in rows)  # 6,1 %
    assert page.locator("svg[aria-labelledby='trend-title']").count() == 1
    page.screenshot(path=str(SHOTS / "explorer-desktop.png"), full_page=True)

    # downloads: exactly the rows on the screen
    with page.expect_download() as got:
        page.get_by_role("link", name="Ladda ner tabellen (CSV)").click()
    csv_path = Path(got.value.path())
    text = csv_path.read_text(encoding="utf-8-sig")
    assert list(csv.reader(io.StringIO(text), delimiter=";")) == table
    with page.expect_download() as got:
        page.get_by_role("link", name="Ladda ner tabellen (Excel)").click()
    xlsx_path = SHOTS / "explorer.xlsx"
    shutil.copyfile(got.value.path(), xlsx_path)
    from openpyxl import load_workbook

    sheet = load_workbook(xlsx_path).worksheets[0]
    cells = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    assert [str(c) for c in cells[0]] == header
    assert len(cells) - 1 == len(rows)
    for got_row, shown_row in zip(cells[1:], rows, strict=True):
        assert got_row[0] == shown_row[0] and str(got_row[1]) == shown_row[1]
        for value, screen in zip(got_row[2:4], shown_row[2:4], strict=True):
            assert (f"{value:,}".replace(",", THIN) if isinstance(value, int) else value) \
                == screen
        if isinstance(got_row[4], int | float):  # a share: the same per cent, one decimal
            assert f"{got_row[4] * 100:.1f}".replace(".", ",") + "\xa0%" == shown_row[4]
        else:
            assert got_row[4] == shown_row[4]  # a mask as text
    if shutil.which("libreoffice") or shutil.which("soffice"):
        office = shutil.which("libreoffice") or shutil.which("soffice")
        done = subprocess.run([str(office), "--headless", "--convert-to", "csv", "--outdir",
                               str(SHOTS), str(xlsx_path)], capture_output=True, timeout=120)
        assert done.returncode == 0 and (SHOTS / "explorer.csv").exists()

    # phone width: the same page is usable
    phone = context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(page.url)
    assert phone.locator("#explorer-table").is_visible()
    phone.screenshot(path=str(SHOTS / "explorer-390.png"), full_page=True)
    width = phone.evaluate("document.documentElement.scrollWidth")
    wide = phone.evaluate("Array.from(document.querySelectorAll('body *')).filter(e => "
                          "e.getBoundingClientRect().right > 400).slice(0, 5).map(e => "
                          "e.tagName + '.' + e.className + '#' + e.id)")
    assert width <= 400, (width, wide)
    phone.screenshot(path=str(SHOTS / "explorer-390.png"), full_page=True)

    # funnel: year chosen explicitly and shown; the planted unit named, in words
    page.goto(f"{server}/analytics/funnel?indicator=kva_au119&by=unit_id")
    page.get_by_label("År", exact=True).select_option("2019")
    page.get_by_role("button", name="Visa").click()
    page.wait_for_url(re.compile(r".*year=2019.*"))
    assert page.get_by_role("heading", name=re.compile("år 2019")).is_visible()
    funnel = _screen_table(page, "#funnel-table")
    planted = next(r for r in funnel if r[0] == PLANTED_NAME)
    assert planted[-1] == "under 99,8 %-gränsen"
    point = page.locator(f"svg[aria-labelledby='funnel-title'] [aria-label^='{PLANTED_NAME}:']")
    assert point.count() == 1
    assert "under 99,8 %-gränsen" in (point.get_attribute("aria-label") or "")
    assert page.locator("svg[aria-labelledby='funnel-title'] text",
                        has_text=PLANTED_NAME).count() == 1  # outliers labelled in the plot
    page.screenshot(path=str(SHOTS / "funnel-desktop.png"), full_page=True)
    phone.goto(page.url)
    phone.screenshot(path=str(SHOTS / "funnel-390.png"), full_page=True)
    # like with like: among the specialist outpatient clinics it is the one outlier
    page.get_by_label("Vårdnivå", exact=True).select_option("specialist_outpatient")
    page.get_by_role("button", name="Visa").click()
    page.wait_for_url(re.compile(r".*care_level=specialist_outpatient.*"))
    outliers = {r[0] for r in _screen_table(page, "#funnel-table")[1:]
                if r[-1] == "under 99,8 %-gränsen"}
    assert outliers == {PLANTED_NAME}
    # the same for organisations and principals
    page.goto(f"{server}/analytics/funnel?indicator=kva_au119&by=organisation&year=2019")
    assert page.locator("#funnel-table th[scope=row]", has_text="Region Skåne").count() == 1
    page.goto(f"{server}/analytics/funnel?indicator=kva_au119&by=principal_type&year=2019")
    assert page.locator("#funnel-table th[scope=row]", has_text="region").count() >= 1
    context.close()


def test_manager_dashboard_in_swedish_formats(server: str, browser) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, server, "boss", "/dashboard")
    assert page.get_by_role("heading", name=f"Enhetens översikt: {PLANTED_NAME}").is_visible()
    assert page.get_by_text("Data till och med 31 december 2024").is_visible()
    rows = _screen_table(page, "#unit-indicators")
    assert len(rows) > 5
    text = page.inner_text("#unit-indicators")
    assert re.search(r"\d+,\d\xa0%", text) or re.search(r"\d+,\d %", text)
    assert not re.search(r"\d\.\d %", text)  # no English decimal points
    au119 = next(r for r in rows if r[0].startswith("Strukturerad bedömning"))
    assert len(au119) == 7  # indicator, year, numerator, denominator, unit, region, verdict
    assert au119[6].startswith("under ") and au119[6].endswith("%-gränsen")  # planted finding
    kpi = page.locator(".kpi .big").inner_text()
    assert kpi == "–" or re.fullmatch(r"\d+,\d\xa0%", kpi)
    page.screenshot(path=str(SHOTS / "dashboard-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.screenshot(path=str(SHOTS / "dashboard-390.png"), full_page=True)
    context.close()
