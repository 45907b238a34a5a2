"""A small synthetic region (with its planted findings) imported into SQLite, users of
every role and one stored indicator run — built once per test process."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from pathlib import Path

from tests.web.factory import PASSWORD

PERSONS = 2000
SEED = 2026
USERS = {"ana": ("analyst", ["ber-malmo"]), "boss": ("unit_manager", ["ber-hbg"]),
         "clin": ("clinician", ["ber-hbg"]), "root": ("admin", [])}
PLANTED_UNIT = "ber-hbg"  # AU119 registered at a fifth of the rate (synth/region.py)
PLANTED_NAME = "Beroendemottagning Helsingborg"
_BUILT: dict[str, Path] = {}


def region_env(folder: Path) -> dict[str, str]:
    """Environment of a store in ``folder`` (no background runs: tests start them)."""
    return {"UTFALL_DATA_DIR": str(folder / "data"),
            "UTFALL_DATABASE_URL": f"sqlite:///{folder / 'region.db'}",
            "UTFALL_SECRET_KEY": "analytics-secret-" + "k" * 32,
            "UTFALL_ENCRYPTION_KEY": _KEY,
            "UTFALL_ANALYTICS_RUNS_POLL_SECONDS": "0"}


_KEY = base64.urlsafe_b64encode(b"utfall-analytics-test-key-32byte").decode()  # a Fernet key


def built_region() -> Path:
    """The folder of the built region (store, data folder with one stored run)."""
    if "region" in _BUILT:
        return _BUILT["region"]
    reuse = os.environ.get("UTFALL_TEST_REGION_DIR")  # developer speed-up: keep one build
    if reuse and (Path(reuse) / "region.db").exists():
        _BUILT["region"] = Path(reuse)
        return Path(reuse)
    folder = Path(reuse) if reuse else Path(tempfile.mkdtemp(prefix="utfall-region-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = region_env(folder)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from utfall.config import get_settings

    get_settings.cache_clear()
    try:
        _build(folder, env)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    _BUILT["region"] = folder
    return folder


def _build(folder: Path, env: dict[str, str]) -> None:
    from utfall.access.accounts import create_user
    from utfall.analytics.runs import compute_and_store
    from utfall.interop.extract_load import import_extract
    from utfall.store.db import ensure_schema, get_engine
    from utfall.synth import generate

    extract = folder / "extract"
    generate(extract, PERSONS, SEED, "csv")
    engine = get_engine(env["UTFALL_DATABASE_URL"])
    ensure_schema(engine)
    import_extract(extract, engine)
    with engine.begin() as conn:
        for user, (role, units) in USERS.items():
            create_user(conn, user, role, units, password=PASSWORD, display_name=user.title())
    compute_and_store(engine)
    engine.dispose()
    shutil.rmtree(extract, ignore_errors=True)


def copy_region(target: Path) -> dict[str, str]:
    """A private copy of the built region in ``target``; returns its environment."""
    source = built_region()
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "region.db", target / "region.db")
    shutil.copytree(source / "data", target / "data", dirs_exist_ok=True)
    return region_env(target)
