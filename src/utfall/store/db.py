"""Engine creation and schema migration (Alembic) for the operational store."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect

from utfall.config import get_settings

MIGRATIONS = Path(__file__).with_name("migrations")


@cache
def _engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # 256 MB page cache: bulk imports touch several B-tree indexes at random
            cur.execute("PRAGMA cache_size=-262144")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


def get_engine(url: str | None = None) -> Engine:
    """Engine for ``url`` or the configured database (one engine per URL per process)."""
    return _engine_for(url or get_settings().effective_database_url)


def alembic_config(engine: Engine):
    """Alembic configuration pointing at the packaged migrations and ``engine``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine | None = None, revision: str = "heads") -> None:
    """Migrate the database to ``revision`` (default: every head, so independent
    migration branches of separate modules all apply)."""
    from alembic import command

    command.upgrade(alembic_config(engine or get_engine()), revision)


def ensure_schema(engine: Engine) -> None:
    """Upgrade when the store is not at the newest revision (cheap when it is)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        upgrade(engine)


def table_names(engine: Engine) -> set[str]:
    """Names of the tables that exist in the database."""
    return set(inspect(engine).get_table_names())
