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
    (mode 0600, in a 0700 folder) so an embedded installation works out of the box;
    production sets ``UTFALL_SECRET_KEY``, ``UTFALL_ENCRYPTION_KEY`` and
    ``UTFALL_AUDIT_KEY`` explicitly. The audit key signs the audit checkpoints and is
    never stored in the database.
    """

    model_config = SettingsConfigDict(env_prefix="UTFALL_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Folder for the embedded store etc.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite if unset")
    secret_key: str | None = Field(default=None, description="Key for pseudonyms and signatures")
    encryption_key: str | None = Field(default=None, description="Fernet key for identity numbers")
    audit_key: str | None = Field(default=None, description="HMAC key of audit checkpoints")
    audit_checkpoint_file: Path | None = Field(
        default=None, description="Signed checkpoints (JSON lines); default in the data folder")
    audit_checkpoint_every: int = Field(
        default=1000, ge=0, description="Checkpoint after this many events (0 = off)")
    audit_checkpoint_minutes: float = Field(
        default=15.0, ge=0, description="Checkpoint new events at least this often (0 = off)")
    audit_retention_years: int = Field(
        default=10, ge=5, description="Keep audit events at least this long (HSLF-FS 2016:40: "
                                      "five years at least)")
    analytics_runs_poll_seconds: float = Field(
        default=30.0, ge=0, description="Check for new data and compute an indicator run in "
                                        "the background this often (0 = off)")
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
    # invitations and reminders (utfall.messaging; docs/operations.md, "Invitations")
    smtp_host: str | None = Field(default=None, description="SMTP server; unset = no e-mail")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: str = Field(default="starttls", pattern="^(starttls|tls|none)$")
    smtp_user: str | None = None
    smtp_password: str | None = Field(default=None, description="from the environment only")
    smtp_timeout: float = Field(default=10.0, gt=0)
    smtp_ca_file: Path | None = Field(default=None, description="CA of the SMTP server's "
                                      "certificate (default: the system trust store)")
    mail_from: str = "utfall@localhost"
    sms_sender: str = Field(default="file", description="file, or an entry point name")
    sms_file: Path | None = Field(default=None, description="outbox of the file sender")
    reminder_days_before: list[int] = Field(default=[3], description="reminders before closing")

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'utfall.db').resolve()}"

    def _stored_secrets(self) -> dict[str, str]:
        path = self.data_dir / "secrets.json"
        if path.exists():
            values = json.loads(path.read_text())
            if "audit_key" not in values:  # a store from before audit checkpoints
                values["audit_key"] = secrets.token_hex(32)
                tmp = path.with_name("secrets.json.new")
                write_private(tmp, json.dumps(values))
                os.replace(tmp, path)
            return values
        from cryptography.fernet import Fernet

        values = {
            "secret_key": secrets.token_hex(32),
            "encryption_key": Fernet.generate_key().decode(),
            "audit_key": secrets.token_hex(32),
        }
        private_dir(self.data_dir, tighten=True)
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

    @property
    def effective_audit_key(self) -> bytes:
        """HMAC key signing audit checkpoints (held outside the database)."""
        return (self.audit_key or self._stored_secrets()["audit_key"]).encode()

    @property
    def effective_checkpoint_file(self) -> Path:
        """Where signed audit checkpoints are appended (JSON lines)."""
        return self.audit_checkpoint_file or self.data_dir / "audit-checkpoints.jsonl"


def private_dir(path: Path, *, tighten: bool = False) -> Path:
    """Create ``path`` (and missing parents) as a folder only the owner can enter (0700).

    An existing folder is left as it is, unless ``tighten`` (the data folder) and it
    belongs to this user: then it is made 0700.
    """
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    elif tighten and path.is_dir() and path.stat().st_uid == os.getuid() \
            and path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists and is readable only by its owner (0600).

    Used for the SQLite database before SQLite opens it: SQLite creates the -wal
    and -shm files with the database file's permissions.
    """
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new or existing file with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.chmod(path, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings (cached; tests call ``get_settings.cache_clear()``)."""
    return Settings()
