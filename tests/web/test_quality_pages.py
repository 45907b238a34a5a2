"""/analytics/quality: gaps to target, data quality and training beside the indicators,
read from the stored run of the synthetic region (never computed on a page load)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.web.analytics_support import copy_region
from tests.web.conftest import page_login


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    folder = tmp_path_factory.mktemp("quality-region")
    env = copy_region(folder)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        from utfall.config import get_settings
        from utfall.web.app import create_app

        get_settings.cache_clear()
        app = create_app(get_settings())
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, folder
        get_settings.cache_clear()


def _rows(html: str, table_id: str) -> list[list[str]]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    out = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
        out.append([unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return out[1:]


def test_gaps_and_quality_for_analyst_and_manager(region: tuple[TestClient, Path]) -> None:
    client, folder = region
    from utfall.analytics.runs import compute_and_store, read_stored_run
    from utfall.store.db import get_engine

    page_login(client, "ana")
    run = read_stored_run(folder / "data" / "indicator-runs")
    assert run is not None
    if not (folder / "data" / "indicator-runs" / run.run_id / "quality.parquet").exists():
        # a region built before runs kept their data quality: store a new run once
        run = compute_and_store(get_engine(f"sqlite:///{folder / 'region.db'}"),
                                folder / "data" / "indicator-runs")
    page = client.get("/analytics/quality?indicator=kva_au119")
    assert page.status_code == 200, page.text
    html = page.text
    # the region's sentence, in Swedish, from the published counts of the latest year
    totals = [r for r in run.rows("kva_au119", "total")]
    # the page's default year: the latest with a published regional row
    latest = max(str(r["period"]) for r in totals if r["numerator"] is not None)
    total = next(r for r in totals if str(r["period"]) == latest)
    assert f"{latest}</h2>" in html
    expected = max(0, math.ceil(0.5 * total["denominator"] - total["numerator"]))
    summary = unescape(html.split('id="gap-summary"', 1)[1].split("</p>", 1)[0])
    number = f"{expected:,}".replace(",", "\u202f")
    assert f"{number} fler personer behöver få AU119 för att nå målet 50\u00a0%" in summary
    # one row per unit with its name (never a code), masked cells give no gap
    rows = _rows(html, "gap-table")
    assert rows[0][0] == "Hela regionen"
    names = {r[0] for r in rows[1:]}
    assert "Beroendemottagning Helsingborg" in names and "ber-hbg" not in names
    published = {str(r["level"]): r for r in run.rows("kva_au119", "unit_id")
                 if str(r["period"]) == latest}
    by_name = {r[0]: r for r in rows[1:]}
    masked = [lvl for lvl, r in published.items() if r["numerator"] is None]
    for r in rows[1:]:
        if "röjandekontroll" in r[5]:
            assert r[4] == ".." and r[3] == ".."
    assert all(re.fullmatch(r"\d[\d\u202f]*|\.\.", r[4]) for r in rows)
    assert len(by_name) == len(published)
    if masked:
        assert any("röjandekontroll" in r[5] for r in rows[1:])
    # data quality beside it: under-coding, missing fields, drops between years
    assert "Datakvalitet som påverkar indikatorn" in html
    for check in ("dq_uncoded_persons", "dq_missing_main_dx", "dq_volume_drop"):
        assert f'data-check="{check}"' in html
    assert "underregistrering" in html
    # Swedish formats: decimal comma percentages, no English decimals in the tables
    assert re.search(r"\d,\d\u00a0%", html)
    assert not re.search(r">\s*\d+\.\d+\s*%", html)
    # training beside AU119 (MI, MET); nothing imported yet
    assert "Motiverande samtal (MI)" in html and "Inga utbildningsuppgifter" in html
    # the unit manager sees the same page; a clinician may not
    client.cookies.clear()
    page_login(client, "boss")
    assert client.get("/analytics/quality?indicator=kva_du119").status_code == 200
    client.cookies.clear()
    page_login(client, "clin")
    assert client.get("/analytics/quality").status_code in (403, 404)
    client.cookies.clear()


def test_training_next_to_du119(region: tuple[TestClient, Path], tmp_path: Path) -> None:
    client, folder = region
    from utfall.analytics.training import import_training
    from utfall.store.db import ensure_schema, get_engine

    engine = get_engine(f"sqlite:///{folder / 'region.db'}")
    ensure_schema(engine)
    csv = tmp_path / "training.csv"
    csv.write_text("unit_id;staff_ref;course_id;completed_on\n"
                   "ber-hbg;S1;ap;2024-02-01\nber-hbg;S2;;\nber-hbg;S3;ap;2023-05-05\n"
                   "ber-hbg;S4;mi;2022-01-10\n", encoding="utf-8")
    assert import_training(engine, csv) == 4
    page_login(client, "ana")
    html = client.get("/analytics/quality?indicator=kva_du119").text
    rows = {r[0]: r for r in _rows(html, "training-table")}
    # 4 staff at the unit, 2 of them trained in ÅP
    assert rows["Beroendemottagning Helsingborg"][2] == "2 av 4 (50,0\u00a0%)"
    assert "Återfallsprevention (ÅP)" in html
    client.cookies.clear()
