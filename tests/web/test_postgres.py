"""The web app on PostgreSQL: consent flow, and concurrent audited requests keep the
hash chain intact (appends at commit under an advisory lock, ``utfall.access.audit``)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.web.conftest import api_login
from tests.web.factory import build_world
from utfall.access.review import verify_all
from utfall.store.models import AuditEvent

pytestmark = pytest.mark.postgres


def test_postgres_consent_and_concurrent_audit(settings, pg_url: str, monkeypatch) -> None:
    monkeypatch.setenv("UTFALL_DATABASE_URL", pg_url)
    from utfall.config import get_settings

    get_settings.cache_clear()
    world = build_world(pg_url)
    from utfall.web.app import create_app

    app = create_app(get_settings())
    key = world.keys["region"]
    with TestClient(app) as client:
        clin, soc = api_login(client, "clin"), api_login(client, "soc")
        # not yours answers like unknown (404); a consent and a care relation open it
        assert client.get(f"/api/persons/{key}/timeline", headers=soc).status_code == 404
        r = client.post(f"/api/persons/{key}/consents", headers=clin, json={
            "to_organisation_id": world.org["Malmö stad"], "categories": ["assessments"],
            "valid_from": dt.date.today().isoformat()})
        assert r.status_code == 201
        assert client.post(f"/api/persons/{key}/relations", headers=clin, json={
            "unit_id": "soc-malmo", "basis": "sip"}).status_code == 201
        shared = client.get(f"/api/persons/{key}/timeline", headers=soc)
        assert shared.status_code == 200 and len(shared.json()["assessments"]) == 1
        assert client.post(f"/api/consents/{r.json()['consent_id']}/revoke",
                           headers=clin).status_code == 200
        after = client.get(f"/api/persons/{key}/timeline", headers=soc)
        assert after.status_code == 200 and after.json()["assessments"] == []
        with world.engine.connect() as conn:
            before = conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one()

        def burst(_: int) -> list[int]:
            codes = []
            for i in range(8):
                if i % 2:
                    codes.append(client.get(f"/api/persons/{key}/timeline",
                                            headers=clin).status_code)
                else:
                    codes.append(client.post(f"/api/persons/{key}/assessments", headers=clin,
                                             json={"instrument": "audit-c",
                                                   "answers": {"item_1": 0}}).status_code)
            return codes

        with ThreadPoolExecutor(max_workers=12) as pool:
            codes = [c for batch in pool.map(burst, range(12)) for c in batch]
    assert set(codes) <= {200, 201}, codes
    with world.engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        assert verify_all(conn) == []
    assert after - before >= len(codes)
