"""Shared fixtures: isolated settings, SQLite and PostgreSQL stores."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from utfall.config import Settings, get_settings

PG_ADMIN_URL = os.environ.get("UTFALL_TEST_PG_ADMIN_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


# Fixed test keys: a store built once per session (tests/web/conftest.py) stays readable
# in every test that copies it.
TEST_SECRET_KEY = "test-secret-" + "x" * 32
TEST_ENCRYPTION_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Argon2 with minimal cost in tests (verification reads the cost from each hash)."""
    from argon2 import PasswordHasher

    from utfall.access import accounts

    saved = accounts._hasher, accounts._DUMMY_HASH
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    accounts._DUMMY_HASH = accounts._hasher.hash("utfall-dummy-password")
    yield
    accounts._hasher, accounts._DUMMY_HASH = saved


def set_test_environment(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """Point the settings at ``data_dir`` with the fixed test keys."""
    monkeypatch.setenv("UTFALL_DATA_DIR", str(data_dir))
    monkeypatch.setenv("UTFALL_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("UTFALL_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
    monkeypatch.setenv("UTFALL_ANALYTICS_RUNS_POLL_SECONDS", "0")  # tests start runs themselves


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings with a private data folder and fixed keys, also seen by get_settings()."""
    set_test_environment(monkeypatch, tmp_path / "data")
    monkeypatch.delenv("UTFALL_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database on 127.0.0.1:5432, dropped afterwards."""
    name = f"utfall_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        from utfall.store.db import _engine_for

        # release pooled connections so the database can be dropped
        _engine_for(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}").dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
