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


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings with a private data folder and fixed keys, also seen by get_settings()."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("UTFALL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UTFALL_SECRET_KEY", "test-secret-" + "x" * 32)
    monkeypatch.setenv("UTFALL_ENCRYPTION_KEY", key)
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
