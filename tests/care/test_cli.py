"""The follow-up CLI: enrol, record, due, timeline (typer CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from utfall.cli import app
from utfall.store.models import AuditEvent

from .conftest import AUDIT_ANSWERS, LIFE, PNR_WOMAN

runner = CliRunner()


def _run(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_cli_round_trip(engine: Engine, sqlite_url: str, tmp_path: Path) -> None:
    db = ["--database", sqlite_url]
    result = _run("enrol", PNR_WOMAN, "--programme", "vip-beroende", "--unit", "R-LARO",
                  "--start", "2025-01-15", "--worker", "dr.a", "--municipal-unit", "K-SOC", *db)
    assert result.exit_code == 0, result.output
    assert "19950615-****" in result.output and PNR_WOMAN not in result.output
    answers = tmp_path / "audit.json"
    answers.write_text(json.dumps(AUDIT_ANSWERS))
    result = _run("record", PNR_WOMAN, "--instrument", "audit", "--answers", str(answers),
                  "--stage", "intake", "--date", "2025-01-16", *db)
    assert result.exit_code == 0, result.output
    assert "score=10" in result.output and "band=II" in result.output
    csv_file = tmp_path / "life.csv"
    csv_file.write_text("item,value\n" + "\n".join(f"{k},{v}" for k, v in LIFE.items()))
    result = _run("record", PNR_WOMAN, "--instrument", "life-situation", "--answers",
                  str(csv_file), "--stage", "intake", "--date", "2025-01-16", *db)
    assert result.exit_code == 0, result.output
    wide = tmp_path / "who5.csv"
    wide.write_text("item_1,item_2,item_3,item_4,item_5\n3,3,3,3,3\n")
    result = _run("record", PNR_WOMAN, "--instrument", "who-5", "--answers", str(wide),
                  "--unit", "R-LARO", "--date", "2025-02-01", *db)
    assert result.exit_code == 0, result.output

    result = _run("due", "--unit", "R-LARO", "--today", "2025-07-10", "--format", "json", *db)
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert {(i["stage_id"], i["status"]) for i in items} == {
        ("intake", "done_in_window"), ("month-6", "due")}
    assert all(i["person"] == "19950615-****" for i in items)
    result = _run("due", "--unit", "R-LARO", "--today", "2025-07-10", "--worker", "dr.a", *db)
    assert result.exit_code == 0 and "month-6" in result.output
    assert PNR_WOMAN not in result.output
    result = _run("due", "--unit", "K-SOC", "--principal", "municipality", *db)
    assert result.exit_code == 0

    svg = tmp_path / "profile.svg"
    result = _run("timeline", PNR_WOMAN, "--svg", str(svg), *db)
    assert result.exit_code == 0, result.output
    assert "Få ett eget boende" in result.output and PNR_WOMAN not in result.output
    assert svg.read_text().startswith("<svg")
    result = _run("timeline", PNR_WOMAN, "--format", "json", *db)
    data = json.loads(result.output)
    assert data["person"] == "19950615-****" and len(data["assessments"]) == 3
    assert PNR_WOMAN not in result.output

    with engine.connect() as conn:
        details = [json.dumps(e.detail) for e in conn.execute(select(AuditEvent.__table__))]
    assert details and not any(PNR_WOMAN in d or PNR_WOMAN[2:] in d for d in details)


def test_cli_errors(engine: Engine, sqlite_url: str, tmp_path: Path) -> None:
    db = ["--database", sqlite_url]
    result = _run("enrol", "198001011239", "--programme", "laro", "--unit", "R-LARO", *db)
    assert result.exit_code == 1
    assert "check digit" in result.output and "198001011239" not in result.output
    result = _run("enrol", PNR_WOMAN, "--programme", "nope", "--unit", "R-LARO", *db)
    assert result.exit_code == 1 and "okänt program" in result.output
    result = _run("enrol", PNR_WOMAN, "--programme", "laro", "--unit", "R-LARO", *db)
    assert result.exit_code == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(AUDIT_ANSWERS, item_9=3)))
    result = _run("record", PNR_WOMAN, "--instrument", "audit", "--answers", str(bad),
                  "--stage", "intake", *db)
    assert result.exit_code == 1
    assert "item_9" in result.output and "not an allowed answer" in result.output
    result = _run("record", "198001011231", "--instrument", "audit", "--answers", str(bad), *db)
    assert result.exit_code == 1 and "19800101-****" in result.output
    assert "198001011231" not in result.output
    result = _run("record", PNR_WOMAN, "--instrument", "audit", "--answers", str(bad),
                  "--date", "15/1", *db)
    assert result.exit_code == 1 and "--date" in result.output
    result = _run("due", "--unit", "NOPE", *db)
    assert result.exit_code == 1 and "NOPE" in result.output
