"""``utfall relations add|list|from-contacts`` (typer CliRunner): audited, clear errors."""

from __future__ import annotations

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from utfall.cli import app
from utfall.store.models import AuditEvent
from utfall.store.models_relations import CareRelation

from .conftest import PNR_WOMAN

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_relations_cli(engine: Engine, sqlite_url: str) -> None:
    db = ["--database", sqlite_url]
    assert _run("enrol", PNR_WOMAN, "--programme", "vip-beroende", "--unit", "R-LARO",
                "--start", "2025-01-15", *db).exit_code == 0
    result = _run("relations", "add", PNR_WOMAN, "--unit", "K-SOC", "--basis", "sip",
                  "--note", "SIP-möte", *db)
    assert result.exit_code == 0, result.output
    assert "19950615-****" in result.output and PNR_WOMAN not in result.output
    result = _run("relations", "add", PNR_WOMAN, "--unit", "NOPE", *db)
    assert result.exit_code == 1 and "--unit" in result.output
    result = _run("relations", "add", PNR_WOMAN, "--unit", "K-SOC", "--valid-to", "x", *db)
    assert result.exit_code == 1 and "--valid-to" in result.output
    result = _run("relations", "list", PNR_WOMAN, *db)
    assert result.exit_code == 0 and "K-SOC" in result.output and "sip" in result.output
    result = _run("relations", "from-contacts", "--unit", "R-BER", *db)
    assert result.exit_code == 0 and "0 " in result.output
    with engine.connect() as conn:
        units = set(conn.execute(select(CareRelation.unit_id)).scalars())
        what = [e.detail.get("what") for e in conn.execute(select(AuditEvent))]
    assert units == {"R-LARO", "K-SOC"}
    assert "care_relation" in what and "care_relations" in what
