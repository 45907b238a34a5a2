"""Demo accounts on an imported synthetic region."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from utfall.config import Settings
from utfall.store.db import get_engine
from utfall.store.models_access import Consent


@pytest.fixture
def demo_engine(settings: Settings, sqlite_url: str, tmp_path: Path, monkeypatch):
    from utfall.interop.extract_load import import_extract
    from utfall.synth import generate

    monkeypatch.setenv("UTFALL_DATABASE_URL", sqlite_url)
    from utfall.config import get_settings

    get_settings.cache_clear()
    folder = tmp_path / "extract"
    generate(folder, 300, 7, "csv")
    engine = get_engine(sqlite_url)
    import_extract(folder, engine)
    return engine


def test_demo_accounts_and_cross_principal_flow(demo_engine, tmp_path: Path) -> None:
    from utfall.web.app import create_app
    from utfall.web.demo import create_demo_accounts

    people = tmp_path / "demo-persons.txt"
    rows = create_demo_accounts(demo_engine, persons_file=people)
    roles = {r[2]: r for r in rows}
    assert set(roles) == {"clinician", "social_worker", "unit_manager", "analyst", "admin"}
    # the clinician works at the region unit with the longest work list (a LARO clinic)
    assert roles["clinician"][3].startswith(("ber-", "laro-", "psyk-")) and roles[
        "social_worker"][3].startswith("soc-")
    again = create_demo_accounts(demo_engine)  # idempotent, new passwords
    assert [r[0] for r in again] == [r[0] for r in rows]
    with demo_engine.connect() as conn:
        consents = conn.execute(select(Consent)).all()
    assert len(consents) == 5
    lines = [line.split("\t") for line in people.read_text().splitlines()[1:]]
    shared = [n for label, n in lines if label == "consent"]
    unshared = [n for label, n in lines if label == "no-consent"]
    assert shared and unshared
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        user, password = again[1][0], again[1][1]
        token = client.post("/api/session", json={"username": user, "password": password}
                            ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        ok = client.post("/api/persons/search", json={"identity_number": shared[0]},
                         headers=headers)
        assert ok.status_code == 200, ok.text
        refused = client.post("/api/persons/search", json={"identity_number": unshared[0]},
                              headers=headers)
        assert refused.status_code == 404  # the same answer as for an unknown person
        # the clinician reaches the clinic's persons through their imported contacts
        clin = client.post("/api/session", json={"username": again[0][0],
                                                 "password": again[0][1]}).json()["token"]
        found = client.post("/api/persons/search", json={"identity_number": shared[0]},
                            headers={"Authorization": f"Bearer {clin}"})
        assert found.status_code == 200, found.text
        timeline = client.get(f"/api/persons/{found.json()['person_key']}/timeline",
                              headers={"Authorization": f"Bearer {clin}"})
        assert timeline.status_code == 200 and timeline.json()["contacts"]
