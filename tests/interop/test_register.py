"""Register export (issue 14): a hand-worked person, the delivery log (a second
incremental export sends nothing, a corrected assessment goes as an update),
receipts, the CLI, and the demo region (forms validate, no identity numbers)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import insert, update
from typer.testing import CliRunner

from tests.web.factory import build_world
from utfall.interop.register import load_mapping
from utfall.interop.register.export import export_register, record_receipt
from utfall.store.models import Assessment, Contact

AS_OF = dt.date(2026, 6, 1)
GAP_LINE = re.compile(r"^[a-z0-9_]+: [0-9a-f]{64}: [a-z0-9_]+: .+$")


def _assessment(conn, key, row, instrument, day, score, subscores=None, answers=None):
    conn.execute(insert(Assessment).values(
        row_key=row, person_key=key, unit_id="reg-ber", instrument=instrument, stage=None,
        date=day, answers=answers or {}, score=score, subscores=subscores or {}, band=None,
        source="import"))


@pytest.fixture
def world(settings, sqlite_url, monkeypatch):
    monkeypatch.setenv("UTFALL_DATABASE_URL", sqlite_url)
    from utfall.config import get_settings

    get_settings.cache_clear()
    w = build_world(sqlite_url)
    key = w.keys["region"]
    with w.engine.begin() as conn:
        for cid, day in (("v1", dt.date(2025, 1, 10)), ("v2", dt.date(2025, 2, 1)),
                         ("v3", dt.date(2026, 2, 3))):
            conn.execute(insert(Contact).values(
                contact_id=cid, person_key=key, unit_id="reg-ber", date=day,
                contact_type="outpatient", main_dx="F10.2", dx_group="F10"))
        _assessment(conn, key, "a-audit-0", "audit", dt.date(2025, 2, 5), 22.0)
        _assessment(conn, key, "a-dudit-0", "dudit", dt.date(2025, 1, 20), 3.0)
        _assessment(conn, key, "a-life-0", "life-situation", dt.date(2025, 2, 1), None,
                    {"occupation": 4.0, "crime": 0.0}, {"item_14": 1})
        _assessment(conn, key, "a-audit-1", "audit", dt.date(2026, 2, 10), 9.0)
        _assessment(conn, key, "a-dudit-1", "dudit", dt.date(2026, 1, 30), 0.0)
        _assessment(conn, key, "a-life-1", "life-situation", dt.date(2026, 2, 1), None,
                    {"occupation": 20.0}, {"item_14": 0})
    return w


def test_hand_worked_forms_and_delivery_log(world, tmp_path: Path) -> None:
    mapping = load_mapping("sbr")
    key = world.keys["region"]
    first = export_register(world.engine, mapping, tmp_path / "a", as_of=AS_OF)
    forms = {f.form: f for f, _op in first.sent if f.person_key == key}
    # established at the 2nd F10 outpatient visit within 90 days (1 Feb 2025), treatment
    # started at the 1st (10 Jan 2025); follow-up 12 months later; 24 months not yet due
    assert set(forms) == {"new_registration", "followup_12"}
    new = forms["new_registration"].variables
    assert new["treatment_start"] == "2025-01-10" and new["established_date"] == "2025-02-01"
    assert new["primary_substance"] == "alcohol" and new["sex"] == "2"  # 19850615-238-1: F
    assert new["audit_total"] == 22 and new["dudit_total"] == 3
    assert new["housing"] == "unstable" and new["occupation_days"] == 4
    assert new["birth_year"] == 1985 and new["substitution_treatment"] == "no"
    assert new["gaf"] is None  # not captured in Utfall (optional in the provisional map)
    follow = forms["followup_12"].variables
    assert follow["followup_date"] == "2026-02-01" and follow["audit_total"] == 9
    assert follow["housing"] == "stable" and follow["occupation_days"] == 20
    assert all(op == "new" for _f, op in first.sent)

    again = export_register(world.engine, mapping, tmp_path / "b", as_of=AS_OF,
                            incremental=True)
    assert again.sent == [] and again.unchanged == len(first.sent)

    with world.engine.begin() as conn:  # a corrected assessment (re-imported score)
        conn.execute(update(Assessment).where(Assessment.row_key == "a-audit-1")
                     .values(score=11.0))
    corrected = export_register(world.engine, mapping, tmp_path / "c", as_of=AS_OF,
                                incremental=True)
    assert [(f.form, op) for f, op in corrected.sent] == [("followup_12", "update")]
    assert corrected.sent[0][0].variables["audit_total"] == 11
    body = json.loads((tmp_path / "c" / corrected.files[0]).read_text())
    assert body["forms"][0]["operation"] == "update" and body["provisional"] is True


def test_gaps_are_reported_and_block_the_form(world, tmp_path: Path) -> None:
    key = world.keys["region"]
    with world.engine.begin() as conn:
        conn.execute(Assessment.__table__.delete().where(Assessment.row_key == "a-dudit-1"))
    result = export_register(world.engine, load_mapping("sbr"), tmp_path, as_of=AS_OF)
    lines = [str(g) for g in result.gaps if g.person_key == key]
    assert lines == [f"followup_12: {key}: dudit_total: no dudit within -90..+30 days of "
                     "2026-02-01"]
    assert all(GAP_LINE.match(line) for line in map(str, result.gaps))
    assert "followup_12" not in {f.form for f, _op in result.sent if f.person_key == key}
    assert (tmp_path / result.files[1]).read_text().splitlines() == [str(g) for g in
                                                                     result.gaps]


def test_receipts_and_rejected_forms_are_resent(world, tmp_path: Path) -> None:
    mapping = load_mapping("sbr")
    first = export_register(world.engine, mapping, tmp_path / "a", as_of=AS_OF)
    rejected = first.sent[0][0].form_key
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps({"export_id": first.export_id, "status": "partial",
                                   "rejected_forms": [rejected]}))
    assert record_receipt(world.engine, receipt)["rejected_forms"] == 1
    again = export_register(world.engine, mapping, tmp_path / "b", as_of=AS_OF,
                            incremental=True)
    assert [f.form_key for f, _op in again.sent] == [rejected]


def test_cli_export_fhir_and_receipt(world, tmp_path: Path) -> None:
    from fhir.resources.R4B.bundle import Bundle

    from utfall.cli import app

    runner = CliRunner()
    out = tmp_path / "out"
    r = runner.invoke(app, ["register", "export", "--register", "sbr", "--out", str(out),
                            "--format", "fhir", "--as-of", "2026-06-01"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["sent"] == 2 and summary["provisional"] is True
    bundle = json.loads((out / summary["files"][0]).read_text())
    Bundle.model_validate(bundle)
    assert len(bundle["entry"]) == 2
    manifest = json.loads((out / summary["files"][2]).read_text())
    import hashlib

    for f in manifest["files"]:
        assert hashlib.sha256((out / f["name"]).read_bytes()).hexdigest() == f["sha256"]
    r = runner.invoke(app, ["register", "export", "--register", "sbr", "--out", str(out),
                            "--incremental", "--as-of", "2026-06-01"])
    assert json.loads(r.stdout)["sent"] == 0
    receipt = tmp_path / "r.json"
    receipt.write_text(json.dumps({"export_id": "nope", "status": "accepted"}))
    r = runner.invoke(app, ["register", "receipt", str(receipt)])
    assert r.exit_code == 1 and "unknown export" in r.output
    receipt.write_text(json.dumps({"export_id": summary["export_id"], "status": "accepted"}))
    r = runner.invoke(app, ["register", "receipt", str(receipt)])
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "accepted"
    r = runner.invoke(app, ["register", "export", "--register", "sbr", "--out", str(out),
                            "--incremental", "--since", "2025-01-01"])
    assert r.exit_code == 2


def test_demo_region_export(settings, sqlite_url, tmp_path: Path, monkeypatch) -> None:
    from utfall.access.pseudonym import IdentityVault
    from utfall.config import get_settings
    from utfall.interop.extract_load import import_extract
    from utfall.store.db import get_engine
    from utfall.store.models import Person
    from utfall.synth import generate

    monkeypatch.setenv("UTFALL_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    generate(tmp_path / "extract", 300, 7, "csv")
    engine = get_engine(sqlite_url)
    import_extract(tmp_path / "extract", engine)
    mapping = load_mapping("sbr")
    first = export_register(engine, mapping, tmp_path / "a", as_of=AS_OF)
    assert len(first.sent) > 50
    for form, _op in first.sent:  # every sent form validates against the mapping
        spec = next(f for f in mapping.forms if f.id == form.form)
        assert list(form.variables) == list(spec.variables)
        for ident, value in form.variables.items():
            var = mapping.variable(ident)
            if var.required:
                assert value is not None, (form.form, ident)
            if var.code_list and value is not None:
                assert value in mapping.code_lists[var.code_list].values()
    again = export_register(engine, mapping, tmp_path / "b", as_of=AS_OF, incremental=True)
    assert again.sent == []
    vault = IdentityVault(get_settings().effective_encryption_key)
    with engine.connect() as conn:
        numbers = [vault.decrypt(r.pnr_encrypted) for r in conn.execute(
            Person.__table__.select())]
    text = "".join(p.read_text() for p in (tmp_path / "a").iterdir())
    assert not [n for n in numbers if n in text or n[2:] in text]


def test_a_correction_made_in_utfall_goes_as_an_update(world, tmp_path: Path) -> None:
    """Correcting an assessment through the use case (not only a re-import) re-scores it,
    and the next incremental export sends the form again as an update."""
    from utfall.access.audit import Actor
    from utfall.care.corrections import correct_assessment

    mapping = load_mapping("sbr")
    first = export_register(world.engine, mapping, tmp_path / "a", as_of=AS_OF)
    assert ("followup_12", "new") in [(f.form, op) for f, op in first.sent]
    answers = {f"item_{n}": 0 for n in range(1, 11)} | {"item_1": 4, "item_2": 4,
                                                         "item_3": 4}
    with world.engine.begin() as conn:
        correct_assessment(conn, Actor("clin", "clinician", "reg-ber"), "a-audit-1", answers,
                           "Fel svar registrerades vid importen")
    corrected = export_register(world.engine, mapping, tmp_path / "b", as_of=AS_OF,
                                incremental=True)
    assert [(f.form, op) for f, op in corrected.sent] == [("followup_12", "update")]
    assert corrected.sent[0][0].variables["audit_total"] == 12  # 4 + 4 + 4, re-scored
