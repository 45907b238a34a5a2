"""Settings from the environment (prefix ``UTFALL_``) or a ``.env`` file."""

from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration.

    Secrets left unset are generated once and kept in ``<data_dir>/secrets.json``
    (mode 0600) so an embedded installation works out of the box; production sets
    ``UTFALL_SECRET_KEY`` and ``UTFALL_ENCRYPTION_KEY`` explicitly.
    """

    model_config = SettingsConfigDict(env_prefix="UTFALL_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Folder for the embedded store etc.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite if unset")
    secret_key: str | None = Field(default=None, description="Key for pseudonyms and signatures")
    encryption_key: str | None = Field(default=None, description="Fernet key for identity numbers")
    locale: str = Field(default="sv", pattern="^(sv|en)$")
    timezone: str = "Europe/Stockholm"
    # store connections and waits (docs/web.md, "Database outage, timeouts and pool")
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    sqlite_write_retry_seconds: float = Field(default=30.0, ge=0)
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_connect_timeout: int = Field(default=5, ge=1)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    db_lock_timeout_ms: int = Field(default=5_000, ge=0)
    db_idle_in_transaction_timeout_ms: int = Field(default=60_000, ge=0)

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'utfall.db').resolve()}"

    def _stored_secrets(self) -> dict[str, str]:
        path = self.data_dir / "secrets.json"
        if path.exists():
            return json.loads(path.read_text())
        from cryptography.fernet import Fernet

        values = {
            "secret_key": secrets.token_hex(32),
            "encryption_key": Fernet.generate_key().decode(),
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh)
        return values

    @property
    def effective_secret_key(self) -> bytes:
        """Key for the keyed hash (person_key) and for signed links."""
        return (self.secret_key or self._stored_secrets()["secret_key"]).encode()

    @property
    def effective_encryption_key(self) -> bytes:
        """Fernet key that encrypts identity numbers at rest."""
        return (self.encryption_key or self._stored_secrets()["encryption_key"]).encode()


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings (cached; tests call ``get_settings.cache_clear()``)."""
    return Settings()
