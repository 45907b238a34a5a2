"""``utfall phase`` and ``utfall discharge``: exit 0 done, 1 refused (Swedish reason on
stderr, allowed phases), 2 usage; changes audited."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from utfall.care import enrol, register_person
from utfall.store.models import AuditEvent

from .conftest import CLINICIAN, PNR_MAN, laro_facts

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(__import__("utfall.cli", fromlist=["app"]).app, list(args),
                         catch_exceptions=False)


def test_phase_and_discharge_exit_codes(engine: Engine, sqlite_url: str, tmp_path: Path) -> None:
    from utfall.followup import local_today

    today = local_today()

    def day(days_ago: int) -> str:
        return (today - dt.timedelta(days=days_ago)).isoformat()

    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_MAN)
        enrolment = enrol(conn, CLINICIAN, key, "laro", "R-LARO", today - dt.timedelta(400),
                          facts=laro_facts(), municipal_unit_id="K-SOC")
    db = ["--database", sqlite_url]
    # refused: forbidden transition, reason in Swedish with the allowed set
    result = _run("phase", enrolment, "rehabilitation", "--date", day(380), *db)
    assert result.exit_code == 1
    assert "går det inte att gå till" in result.stderr
    assert "treatment-start (Behandlingsstart)" in result.stderr
    # usage: a bad date, an unreadable facts file, a missing argument
    assert _run("phase", enrolment, "treatment-start", "--date", "1 feb", *db).exit_code == 2
    assert _run("phase", enrolment, "treatment-start", "--facts",
                str(tmp_path / "missing.json"), *db).exit_code == 2
    assert _run("discharge", enrolment, *db).exit_code == 2  # --reason is required
    # done
    result = _run("phase", enrolment, "treatment-start", "--date", day(380), *db)
    assert result.exit_code == 0, result.output
    assert "Behandlingsstart" in result.output
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"care_plan_goals": "Stabil dos"}))
    assert _run("phase", enrolment, "stabilisation", "--date", day(200), "--facts",
                str(facts), *db).exit_code == 0
    # refused: involuntary discharge without medical grounds names the field
    result = _run("discharge", enrolment, "--reason", "involuntary_discharge", "--date",
                  day(10), *db)
    assert result.exit_code == 1 and "medical_ground" in result.stderr
    ground = tmp_path / "ground.json"
    ground.write_text(json.dumps({"medical_ground": "Påtaglig medicinsk risk"}))
    result = _run("discharge", enrolment, "--reason", "involuntary_discharge", "--date",
                  day(10), "--facts", str(ground), *db)
    assert result.exit_code == 0, result.output
    assert "Uppföljning 6 månader efter avslut" in result.output
    assert "Socialtjänsten vuxen" in result.output
    assert _run("phase", enrolment, "rehabilitation", *db).exit_code == 1  # ended
    assert _run("phase", "no-such-enrolment", "ending", *db).exit_code == 1
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.__table__).where(
            AuditEvent.person_key == key, AuditEvent.action == "change")).all()
    whats = [(r.detail or {}).get("what") for r in rows]
    assert whats.count("phase") == 2 and whats.count("end_enrolment") == 1
    assert all(r.role == "system" for r in rows)
