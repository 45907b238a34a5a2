"""One suite of malformed extracts, run through ``utfall import`` on SQLite and PostgreSQL.

Both stores hold the same imported base extract. Every case must give the same exit
code and the same stderr lines on both, the expected lines, never a traceback, and
leave a store that rejected it unchanged. Accepted cases must leave both stores
with the same data. Identity numbers never reach the output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.conftest import PG_ADMIN_URL
from tests.foundation.extract_factory import P1, P2, P3, P4, write_extract
from tests.foundation.malformed_cases import CASES, Case
from utfall.cli import app
from utfall.config import get_settings
from utfall.store.canonical import canonical_tables
from utfall.store.db import _engine_for, get_engine, table_names

pytestmark = pytest.mark.postgres

TABLES = ("organisation", "unit", "person", "contact", "procedure", "medication", "enrolment",
          "assessment", "import_batch", "audit_event")
NUMBERS = [n.replace("-", "") for n in (P1, P2, P3, P4)]


def _state(url: str) -> dict[str, int]:
    engine = get_engine(url)
    if "person" not in table_names(engine):
        return {}
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def _snapshot(url: str) -> dict[str, list[str]]:
    tables = canonical_tables(get_engine(url))
    return {name: sorted(map(str, t.to_pylist())) for name, t in tables.items()}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fixed keys and a private data folder for the whole module (one base import)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UTFALL_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        mp.setenv("UTFALL_SECRET_KEY", "test-secret-" + "m" * 32)
        mp.setenv("UTFALL_ENCRYPTION_KEY", Fernet.generate_key().decode())
        mp.delenv("UTFALL_DATABASE_URL", raising=False)
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def stores(keys: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An SQLite file and a fresh PostgreSQL database (as the ``pg_url`` fixture makes
    them, but for the whole module), both holding the base extract imported once."""
    name = f"utfall_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    pg = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'store.db'}",
            "postgresql": pg}
    base = write_extract(tmp_path_factory.mktemp("extracts") / "base")
    try:
        for url in urls.values():
            result = CliRunner().invoke(app, ["import", str(base), "--database", url])
            assert result.exit_code == 0, result.output
        yield urls
    finally:
        _engine_for(pg).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_FOLDERS: dict[str, Path] = {}
MEASURE = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
           "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN)"
           ".ru_maxrss)); sys.exit(code)")


@pytest.fixture(scope="module")
def case_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cases")


def _folder(case: Case, root: Path) -> Path:
    """Each case folder is built once (the 1 GiB one is reused by the memory test)."""
    if case.id not in _FOLDERS:
        folder = root / case.id
        case.build(folder)
        _FOLDERS[case.id] = folder
    return _FOLDERS[case.id]


def _import(folder: Path, url: str) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(app, ["import", str(folder), "--database", url],
                                env={"COLUMNS": "200"})
    # a traceback would end the command with another exception than SystemExit
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    return result.exit_code, [x for x in result.stderr.splitlines() if x.strip()], result.stdout


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_extract_same_outcome_on_both_stores(case: Case, stores: dict[str, str],
                                                       case_root: Path) -> None:
    folder = _folder(case, case_root)
    outcomes = {}
    for kind, url in stores.items():
        before = _state(url)
        code, stderr, stdout = _import(folder, url)
        outcomes[kind] = (code, stderr)
        assert code == case.exit, (kind, stderr)
        if code != 0:
            assert _state(url) == before, f"{kind}: a rejected import changed the store"
            assert stderr[-1].startswith("Uttaget avvisades:")
        for expected in case.stdout:
            assert expected in stdout, (kind, stdout)
        output = "\n".join(stderr) + stdout
        for number in NUMBERS:
            assert number not in output and number[2:] not in output
            assert number[2:8] + "-" + number[8:] not in output
        assert "\x1b" not in output and "\x00" not in output
    assert outcomes["sqlite"] == outcomes["postgresql"]
    lines = outcomes["sqlite"][1]
    for expected in case.lines:
        if expected.endswith("…"):
            assert any(line.startswith(expected[:-1]) for line in lines), (expected, lines)
        else:
            assert expected in lines, (expected, lines)
    if case.exit == 0:
        assert _snapshot(stores["sqlite"]) == _snapshot(stores["postgresql"])


def test_the_suite_covers_the_reported_kinds() -> None:
    """The review's malformed inputs are all in the suite (and it is not a trivial one)."""
    ids = {c.id for c in CASES}
    for needed in ("csv-unterminated-quote", "csv-1gib-field", "parquet-list-column",
                   "parquet-struct-column", "parquet-invalid-utf8", "parquet-binary-column",
                   "unit-id-100", "unit-name-300", "contact-id-80", "stage-60", "nul-in-name",
                   "pnr-as-unit-id", "csv-latin1", "reimport-moves-contact-to-another-person"):
        assert needed in ids
    assert len(CASES) >= 40
    assert sum(c.exit == 0 for c in CASES) >= 5


@pytest.mark.parametrize("case_id", ["csv-1gib-field", "parquet-256mib-field"])
def test_giant_fields_are_rejected_with_bounded_memory(case_id: str, stores: dict[str, str],
                                                      case_root: Path) -> None:
    """A separate process imports the folder; its peak RSS stays far below the field."""
    case = next(c for c in CASES if c.id == case_id)
    folder = _folder(case, case_root)
    env = {**os.environ, "UTFALL_DATABASE_URL": stores["sqlite"]}
    err, rss = case_root / f"{case_id}.err", case_root / f"{case_id}.rss"
    # A small wrapper process starts the import and reports its child's peak RSS: a
    # child forked straight from this (large) test process would count its pages too.
    with err.open("w") as stderr:
        code = subprocess.call([sys.executable, "-c", MEASURE, str(rss), sys.executable, "-m",
                                "utfall", "import", str(folder)], env=env,
                               stdout=subprocess.DEVNULL, stderr=stderr)
    peak_mb = int(rss.read_text()) / 1024
    lines = err.read_text().splitlines()
    assert code == 1, lines
    assert case.lines[0] in lines
    assert "Traceback" not in err.read_text()
    assert peak_mb < 600, f"peak RSS {peak_mb:.0f} MB"
