"""MeasureReports of a synthetic demo region (the demo's generator, 1,500 persons): every
report validates, no count 1–4 is published, masked cells carry a data-absent reason,
and every published count equals the stored protected release (one set of numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from utfall.config import Settings
from utfall.interop.fhir.common import EXT_DATA_ABSENT, model_class

pytestmark = pytest.mark.slow  # a demo-scale region: the slow lane (make test-slow)


def test_demo_measure_reports(settings: Settings, sqlite_url: str, tmp_path: Path,
                              monkeypatch) -> None:
    from utfall.analytics.runs import compute_and_store
    from utfall.config import get_settings
    from utfall.interop.extract_load import import_extract
    from utfall.store.db import get_engine
    from utfall.synth import generate
    from utfall.web.app import create_app
    from utfall.web.demo import create_demo_accounts

    monkeypatch.setenv("UTFALL_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    generate(tmp_path / "extract", 1500, 11, "csv")
    engine = get_engine(sqlite_url)
    import_extract(tmp_path / "extract", engine)
    accounts = {row[2]: row for row in create_demo_accounts(engine)}
    run = compute_and_store(engine)
    published = {(r["indicator_id"], r["period"], r["breakdown"], r["level"]):
                 (r["numerator_display"], r["denominator_display"])
                 for r in run.results.to_pylist()}

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        user, password = accounts["analyst"][0], accounts["analyst"][1]
        token = client.post("/api/session", json={"username": user, "password": password}
                            ).json()["token"]
        r = client.get("/fhir/MeasureReport", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["total"] >= 28  # at least one report per indicator
    counts = {"shown": 0, "masked": 0, "compared": 0}

    def check(pop: dict) -> None:
        if "count" in pop:
            assert pop["count"] == 0 or pop["count"] >= 5, pop
            counts["shown"] += 1
        else:
            assert pop["_count"]["extension"][0] == {"url": EXT_DATA_ABSENT,
                                                     "valueCode": "masked"}
            counts["masked"] += 1

    for entry in bundle["entry"]:
        report = entry["resource"]
        model_class("MeasureReport").model_validate(report)
        indicator = report["measure"].rsplit("/", 1)[-1]
        year = report["period"]["start"][:4]
        for group in report["group"]:
            for pop in group.get("population", []):
                check(pop)
                role = pop["code"]["coding"][0]["code"]
                column = {"numerator": 0, "denominator": 1}.get(role)
                shown = published.get((indicator, year, "total", ""))
                if column is not None and shown is not None and "count" in pop:
                    assert str(pop["count"]) == shown[column].replace("\u202f", "").replace(
                        " ", ""), (indicator, year, role)
                    counts["compared"] += 1
            for strat in group.get("stratifier", []):
                for stratum in strat["stratum"]:
                    for pop in stratum.get("population", []):
                        check(pop)
    assert counts["shown"] > 500 and counts["masked"] > 0 and counts["compared"] > 100, counts
