"""Explorer, funnel, dashboard and runs pages in process: role checks, 'no run yet',
downloads equal the page table, Swedish number formats."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient

from tests.web.analytics_support import PLANTED_NAME, copy_region
from tests.web.conftest import page_login
from utfall.web.formats import long_date, number, percent, shown


def test_swedish_number_formats() -> None:
    assert number(1234567) == "1\u202f234\u202f567"
    assert number(-3.917, 1) == "\u22123,9"
    assert percent(0.0612) == "6,1\u00a0%" and percent(0.0612, "en") == "6.1\u00a0%"
    assert shown("<5") == "<5" and shown("1234") == "1\u202f234" and shown(None) == "–"
    assert long_date("2026-03-12") == "12 mars 2026"


def test_no_run_says_so(app, login) -> None:  # the small web world: nothing stored
    with TestClient(app) as client:
        page_login(client, "ana")
        page = client.get("/analytics")
        assert page.status_code == 200 and "Inga indikatorer är beräknade ännu" in page.text
        assert client.get("/analytics/download.csv?indicator=kva_au119").status_code == 404
    with TestClient(app) as client:
        page_login(client, "root")
        page = client.get("/admin/runs")
        assert page.status_code == 200 and "Starta en körning nu" in page.text


@pytest.fixture(scope="module")
def region_app(tmp_path_factory: pytest.TempPathFactory):
    env = copy_region(tmp_path_factory.mktemp("explorer"))
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    from utfall.config import get_settings
    from utfall.web.app import create_app

    get_settings.cache_clear()
    yield create_app(get_settings())
    mp.undo()
    get_settings.cache_clear()


def _client(app, user: str) -> TestClient:
    client = TestClient(app)
    client.__enter__()
    page_login(client, user)
    return client


def test_roles_of_the_new_routes(region_app) -> None:
    expect = {"ana": {"/analytics": 200, "/analytics/funnel": 200, "/admin/runs": 403,
                      "/dashboard": 403, "/api/analytics/funnel?indicator=kva_au119": 200},
              "boss": {"/analytics": 200, "/dashboard": 200, "/admin/runs": 403},
              "clin": {"/analytics": 403, "/analytics/funnel": 403, "/dashboard": 200,
                       "/analytics/download.csv?indicator=kva_au119": 403,
                       "/api/analytics/explore?indicator=kva_au119": 403},
              "root": {"/admin/runs": 200, "/analytics": 403, "/dashboard": 403}}
    for user, pages in expect.items():
        client = _client(region_app, user)
        for path, status in pages.items():
            assert client.get(path).status_code == status, (user, path)
        client.__exit__(None, None, None)
    anon = TestClient(region_app)
    assert anon.get("/analytics/download.csv?indicator=kva_au119",
                    follow_redirects=False).status_code == 303


def test_csv_equals_the_page_and_filters_narrow_levels(region_app) -> None:
    client = _client(region_app, "ana")
    query = "indicator=kva_au119&breakdown=unit_id&year=2019&principal=region"
    page = client.get(f"/analytics?{query}").text
    names = re.findall(r'<th scope="row">([^<]+)</th>', page.split('id="explorer-table"')[1]
                       .split("</table>")[0])
    assert PLANTED_NAME in names and "Läkarhuset" not in " ".join(names)  # a private unit
    data = client.get(f"/analytics/download.csv?{query}")
    assert data.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.reader(io.StringIO(data.content.decode("utf-8-sig")), delimiter=";"))
    assert [r[0] for r in rows[1:]] == [n.replace("&amp;", "&") for n in names]
    api = client.get(f"/api/analytics/explore?{query}").json()
    assert api["rows"] == rows[1:] and api["header"] == rows[0]
    # a filter on another dimension than the breakdown is reported, never computed
    page = client.get("/analytics?indicator=kva_au119&breakdown=sex&unit=ber-hbg").text
    assert "Gäller inte indelningen kön" in page
    client.__exit__(None, None, None)


def test_admin_starts_a_run_in_the_background(region_app) -> None:
    client = _client(region_app, "root")
    csrf = client.get("/api/me").json()["csrf_token"]
    answer = client.post("/admin/runs", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and "started=" in answer.headers["location"]
    job = region_app.state.runs
    assert job.status()["trigger"] == "admin"
    assert job.wait(600) and job.status()["state"] == "done", job.status()
    page = client.get("/admin/runs").text
    assert "Klar" in page and job.status()["run_id"] in page
    client.__exit__(None, None, None)


