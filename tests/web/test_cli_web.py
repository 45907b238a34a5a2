"""CLI: ``utfall users add``, ``utfall audit verify`` (tampering → exit 1 naming events)."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from tests.web.factory import World
from utfall.cli import app

runner = CliRunner()


def test_users_add_and_list(world: World, monkeypatch) -> None:
    monkeypatch.setenv("UTFALL_NEW_PASSWORD", "a long enough secret")
    result = runner.invoke(app, ["users", "add", "nils", "--role", "social_worker",
                                 "--unit", "soc-lund"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["users", "list"])
    assert "nils" in result.output and "soc-lund" in result.output
    result = runner.invoke(app, ["users", "add", "nils2", "--role", "social_worker",
                                 "--unit", "nowhere"])
    assert result.exit_code == 2 and "nowhere" in result.output
    monkeypatch.delenv("UTFALL_NEW_PASSWORD")
    result = runner.invoke(app, ["users", "add", "eva", "--role", "analyst"],
                           input="a long enough secret\na long enough secret\n")
    assert result.exit_code == 0, result.output


def test_audit_verify_detects_tampering(world: World) -> None:
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1 and "no signed checkpoint" in result.output
    assert runner.invoke(app, ["audit", "checkpoint"]).exit_code == 0
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    with world.engine.begin() as conn:
        victim = conn.execute(text("SELECT min(id) FROM audit_event")).scalar_one() + 1
        conn.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE id = :i"),
                     {"i": victim})
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"event {victim}" in result.output
