"""Re-imports: corrections of a person's records are accepted and reported; a record is
never moved to another person; dry runs write nothing; source systems scope contact ids."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from tests.foundation.extract_factory import P1, P2, TABLES, write_extract
from utfall.access.audit import verify_chain
from utfall.access.pseudonym import person_key
from utfall.cli import app
from utfall.config import Settings
from utfall.store.canonical import canonical_tables
from utfall.store.db import get_engine
from utfall.store.models import AuditEvent, Contact, ImportBatch

TODAY = dt.datetime.now(ZoneInfo("Europe/Stockholm")).date().isoformat()
COUNTED = ("organisation", "unit", "person", "contact", "procedure", "medication", "enrolment",
           "assessment", "import_batch", "audit_event")
# every procedure linked to a contact belongs to the same person as that contact
MISLINKED = ("SELECT count(*) FROM procedure p JOIN contact c ON c.contact_id = p.contact_id "
             "WHERE c.person_key <> p.person_key")


def _tables() -> dict[str, list[dict[str, str]]]:
    return copy.deepcopy(TABLES)


def _run(*args: str) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(app, ["import", *args], env={"COLUMNS": "200"})
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return (result.exit_code, [x for x in result.stderr.splitlines() if x.strip()],
            result.stdout)


def _counts(url: str) -> dict[str, int]:
    with get_engine(url).connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in COUNTED}


def _snapshot(url: str) -> dict[str, list[str]]:
    return {name: sorted(map(str, t.to_pylist()))
            for name, t in canonical_tables(get_engine(url)).items()}


def _key(number: str, settings: Settings) -> str:
    digits = number.replace("-", "")
    return person_key(digits if len(digits) == 12 else "19" + digits,
                      settings.effective_secret_key)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, settings: Settings) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def test_reimport_that_moves_a_contact_to_another_person_is_rejected(
        tmp_path: Path, settings: Settings, url: str) -> None:
    assert _run(str(write_extract(tmp_path / "first")), "--database", url)[0] == 0
    before, snapshot = _counts(url), _snapshot(url)
    tables = _tables()
    tables["contacts"][0]["person_id"] = P2  # C1 was P1's contact in batch 1
    tables["procedures"][0]["person_id"] = P2  # (its procedure follows, as in the review)
    tables["contacts"][1]["date"] = "2021-06-02"  # an acceptable correction in the same file
    code, stderr, _ = _run(str(write_extract(tmp_path / "second", tables)), "--database", url)
    assert code == 1
    assert stderr == [
        f"contacts.csv:2: person_id: contact 'C1' belongs to another person since import batch "
        f"1 of {TODAY} (folder 'first'); a re-import may not move a record to another person",
        "Uttaget avvisades: 1 fel. Inget har skrivits till databasen."]
    assert _counts(url) == before and _snapshot(url) == snapshot
    with get_engine(url).connect() as conn:
        owner = conn.execute(select(Contact.person_key).where(Contact.contact_id == "C1"))
        assert owner.scalar_one() == _key(P1, settings)
        assert conn.execute(text(MISLINKED)).scalar_one() == 0


def test_reimport_that_corrects_a_date_is_accepted_and_reported(
        tmp_path: Path, settings: Settings, url: str) -> None:
    assert _run(str(write_extract(tmp_path / "first")), "--database", url)[0] == 0
    before = _counts(url)
    tables = _tables()
    tables["contacts"][0]["date"] = "2021-03-02"  # C1: 2021-03-01 -> 2021-03-02
    code, _stderr, stdout = _run(str(write_extract(tmp_path / "second", tables)),
                                 "--database", url)
    assert code == 0
    row = next(line for line in stdout.splitlines() if "contacts" in line)
    # table | rows | new | changed | unchanged | changed columns
    assert [c.strip() for c in row.split("│")[1:-1]] == ["contacts", "6", "0", "1", "5",
                                                         "date 1"]
    after = _counts(url)
    assert after.pop("import_batch") == 2 and after.pop("audit_event") == 2
    before.pop("import_batch"), before.pop("audit_event")
    assert after == before  # nothing new, nothing lost
    engine = get_engine(url)
    with engine.connect() as conn:
        contact = conn.execute(select(Contact).where(Contact.contact_id == "C1")).one()
        assert str(contact.date) == "2021-03-02" and contact.person_key == _key(P1, settings)
        batch = conn.execute(select(ImportBatch).order_by(ImportBatch.id.desc())).first()
        events = conn.execute(select(AuditEvent).order_by(AuditEvent.id)).all()
    expected = {"new": dict.fromkeys(TABLES, 0),
                "changed": {**dict.fromkeys(TABLES, 0), "contacts": 1},
                "unchanged": {name: len(rows) - (name == "contacts")
                              for name, rows in TABLES.items()},
                "changed_columns": {"contacts": {"date": 1}}}
    assert batch.changes == expected
    detail = events[-1].detail
    assert {k: detail[k] for k in expected} == expected
    assert detail["batch_id"] == batch.id
    assert verify_chain(events) == []


def _file_digests(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (path, path.with_name(path.name + "-wal")) if p.exists()}


def test_dry_run_shows_the_changes_and_writes_nothing(tmp_path: Path, settings: Settings,
                                                       sqlite_url: str) -> None:
    db_file = Path(sqlite_url.removeprefix("sqlite:///"))
    # a store that does not exist yet is not created: everything would be new
    code, _stderr, stdout = _run(str(write_extract(tmp_path / "first")), "--dry-run",
                                 "--database", sqlite_url)
    assert code == 0 and not db_file.exists()
    assert "Provkörning: inget har skrivits till databasen." in stdout
    assert _run(str(tmp_path / "first"), "--database", sqlite_url)[0] == 0
    before, digests, snapshot = _counts(sqlite_url), _file_digests(db_file), _snapshot(sqlite_url)
    tables = _tables()
    tables["contacts"][0]["main_dx"] = "F11.2"
    tables["contacts"].append({**tables["contacts"][1], "contact_id": "C7"})
    code, _stderr, stdout = _run(str(write_extract(tmp_path / "second", tables)), "--dry-run",
                                 "--database", sqlite_url)
    assert code == 0
    row = next(line for line in stdout.splitlines() if "contacts" in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == [
        "contacts", "7", "1", "1", "5", "main_dx 1, dx_group 1"]
    # a dry run of a folder the import would reject: the same rejection, still no write
    tables["contacts"][0]["person_id"] = P2
    tables["procedures"][0]["person_id"] = P2
    code, stderr, _ = _run(str(write_extract(tmp_path / "third", tables)), "--dry-run",
                           "--database", sqlite_url)
    assert code == 1 and stderr[0].startswith("contacts.csv:2: person_id: contact 'C1' belongs")
    assert _counts(sqlite_url) == before
    assert _file_digests(db_file) == digests
    assert _snapshot(sqlite_url) == snapshot


@pytest.mark.postgres
def test_dry_run_writes_nothing_on_postgres(tmp_path: Path, settings: Settings,
                                            pg_url: str) -> None:
    assert _run(str(write_extract(tmp_path / "first")), "--database", pg_url)[0] == 0
    before, snapshot = _counts(pg_url), _snapshot(pg_url)
    tables = _tables()
    tables["persons"][1]["death_date"] = "2024-01-01"
    code, _stderr, stdout = _run(str(write_extract(tmp_path / "second", tables)), "--dry-run",
                                 "--database", pg_url)
    assert code == 0
    row = next(line for line in stdout.splitlines() if "persons" in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == ["persons", "4", "0", "1", "3",
                                                         "death_date 1"]
    assert _counts(pg_url) == before and _snapshot(pg_url) == snapshot


def _sourced(folder: Path, source: str, tables: dict | None = None) -> Path:
    write_extract(folder, tables)
    (folder / "manifest.json").write_text(json.dumps({"source": source}), encoding="utf-8")
    return folder


def test_two_sources_with_the_same_contact_ids_coexist(tmp_path: Path, settings: Settings,
                                                       url: str) -> None:
    other = _tables()  # system B numbers its contacts C1… too, for other persons
    for row in other["contacts"]:
        row["person_id"] = {P1: P2}.get(row["person_id"], P1)
    for row in other["procedures"]:
        row["person_id"] = {P1: P2}.get(row["person_id"], P1)
    a = _sourced(tmp_path / "a", "ehr-a")
    b = _sourced(tmp_path / "b", "ehr-b", other)
    assert _run(str(a), "--database", url)[0] == 0
    code, _stderr, stdout = _run(str(b), "--database", url)
    assert code == 0 and "Källsystem: ehr-b" in stdout
    # and an extract without a source keeps its ids as they are
    assert _run(str(write_extract(tmp_path / "plain")), "--database", url)[0] == 0
    with get_engine(url).connect() as conn:
        owners = dict(conn.execute(select(Contact.contact_id, Contact.person_key)).all())
        sources = dict(conn.execute(select(Contact.contact_id, Contact.source)).all())
        assert conn.execute(text(MISLINKED)).scalar_one() == 0
        linked = conn.execute(text("SELECT count(*) FROM procedure WHERE contact_id IS NOT NULL")
                              ).scalar_one()
    assert len(owners) == 18
    assert owners["ehr-a:C1"] == owners["C1"] == _key(P1, settings)
    assert owners["ehr-b:C1"] == _key(P2, settings)
    assert sources["ehr-a:C3"] == "ehr-a" and sources["C3"] is None
    assert linked == 6  # two linked procedures per extract, each to its own system's contact
    # re-importing system A changes nothing
    code, _stderr, stdout = _run(str(a), "--database", url)
    row = next(line for line in stdout.splitlines() if "contacts" in line)
    assert code == 0 and [c.strip() for c in row.split("│")[1:5]] == ["contacts", "6", "0", "0"]


def test_a_stored_contact_of_another_source_is_not_overwritten(
        tmp_path: Path, settings: Settings, sqlite_url: str) -> None:
    assert _run(str(write_extract(tmp_path / "a")), "--source", "x", "--database",
                sqlite_url)[0] == 0
    tables = _tables()
    tables["contacts"][0]["contact_id"] = "x:C1"  # an unscoped id equal to a scoped one
    tables["procedures"][0]["contact_id"] = "x:C1"
    code, stderr, _ = _run(str(write_extract(tmp_path / "b", tables)), "--database", sqlite_url)
    assert code == 1
    assert stderr[0] == (f"contacts.csv:2: contact_id: contact 'x:C1' was imported from source "
                         f"'x' in import batch 1 of {TODAY} (folder 'a'); this extract has no "
                         "source")
    # the command line and the manifest must agree
    code, stderr, _ = _run(str(_sourced(tmp_path / "c", "y")), "--source", "x", "--database",
                           sqlite_url)
    assert code == 1 and stderr[0] == ("manifest.json:1: source: 'y' differs from the source "
                                       "given on the command line ('x')")
