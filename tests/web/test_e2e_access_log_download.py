"""Chromium: the access-log page offers the person's log as CSV and JSON downloads."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.e2e_support import CHROMIUM, LiveServer, chromium, live_server, shot
from tests.web.factory import PASSWORD

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("e2e-log")) as live:
        yield live


def test_access_log_downloads(server: LiveServer) -> None:
    key = server.keys["region"]
    with chromium() as browser:
        page = browser.new_context(accept_downloads=True).new_page()
        page.goto(server.url + "/login")
        page.get_by_label("Användarnamn").fill("clin")
        page.get_by_label("Lösenord").fill(PASSWORD)
        page.get_by_role("button", name="Logga in").click()
        page.wait_for_load_state()
        page.goto(f"{server.url}/persons/{key}")
        page.goto(f"{server.url}/persons/{key}/access-log")
        assert page.get_by_role("heading", level=1).is_visible()
        shot(page, "access-log-download")
        with page.expect_download() as info:
            page.get_by_role("link", name="CSV").click()
        download = info.value
        assert download.suggested_filename.endswith(".csv")
        rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
        assert any(r["user"] == "clin" and r["action"] == "read" for r in rows)
        with page.expect_download() as info:
            page.get_by_role("link", name="JSON").click()
        data = json.loads(Path(info.value.path()).read_text())
        assert len(data) == len(rows) + 1  # the CSV download was itself logged
