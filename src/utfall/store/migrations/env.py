"""Alembic environment: the engine is handed over in ``config.attributes``."""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context

import utfall.store
from utfall.config import get_settings
from utfall.store.models import Base

# every ``utfall.store.models*`` module contributes tables to the metadata
for _info in pkgutil.iter_modules(utfall.store.__path__):
    if _info.name.startswith("models"):
        importlib.import_module(f"utfall.store.{_info.name}")

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run migrations on the engine given by ``utfall.store.db`` (or the configured URL)."""
    engine = config.attributes.get("engine")
    if engine is None:
        from utfall.store.db import get_engine

        engine = get_engine(get_settings().effective_database_url)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        context.run_migrations()


run_migrations_online()
