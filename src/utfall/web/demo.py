"""Demo accounts and consents on an imported synthetic region (``utfall demo``)."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from sqlalchemy import Engine, select

from utfall.access.accounts import create_user, set_password
from utfall.access.audit import Actor
from utfall.access.consent import record_consent
from utfall.access.policy import person_organisations
from utfall.access.relations import create_relation, has_relation, record_contact_relations
from utfall.store.db import ensure_schema
from utfall.store.models import Contact, Organisation, Person, Unit
from utfall.store.models_access import Consent, UserAccount

DEMO_CATEGORIES = ("assessments", "enrolments", "contacts", "interventions", "medication")


def _units(conn) -> list[tuple[str, str, str, str, int, str | None]]:
    return [tuple(r) for r in conn.execute(
        select(Unit.unit_id, Unit.name, Unit.care_level, Organisation.principal_type,
               Organisation.id, Unit.municipality_code)
        .join(Organisation, Organisation.id == Unit.organisation_id).order_by(Unit.unit_id))]


def _list_sizes(conn, units: list[tuple]) -> dict[str, int]:
    """Open follow-ups (overdue, due, upcoming, missed) on each unit's work list today."""
    from utfall.care.worklist import OPEN, collect
    from utfall.followup import local_today

    day = local_today()
    return {u[0]: sum(1 for r in collect(conn, u[0], day) if r.status in OPEN) for u in units}


def _pick_units(conn) -> tuple[tuple, tuple]:
    """The region unit with the longest work list (a newcomer sees the list under real
    load; in the synthetic region a LARO clinic) and the social services of its
    municipality."""
    units = _units(conn)
    region = [u for u in units if u[3] == "region"]
    if not region:
        raise ValueError("no region unit in the store: import the synthetic region first")
    sizes = _list_sizes(conn, region)
    clinic = max(region, key=lambda u: (sizes[u[0]], "beroende" in u[1].lower(), u[0]))
    municipal = [u for u in units if u[3] == "municipality"]
    if not municipal:
        raise ValueError("no municipal unit in the store: import the synthetic region first")
    social = next((u for u in municipal if u[5] and u[5] == clinic[5]), municipal[0])
    return clinic, social


def create_demo_accounts(engine: Engine, *, consents: int = 5,
                         persons_file: Path | None = None) -> list[tuple[str, str, str, str]]:
    """Create (or reset) the demo users with fresh random passwords and record some
    consents from the clinic's region to the social worker's municipality.

    Returns ``(user, password, role, unit)`` rows to print. When ``persons_file`` is
    given, synthetic identity numbers of persons with and without consent are written
    there so the cross-principal flow can be tried.
    """
    ensure_schema(engine)
    with engine.begin() as conn:
        clinic, social = _pick_units(conn)
        plan = [("anna.klinik", "clinician", clinic[0], "Anna Klinik"),
                ("sara.soc", "social_worker", social[0], "Sara Socialsekreterare"),
                ("maria.chef", "unit_manager", clinic[0], "Maria Enhetschef"),
                ("olle.analys", "analyst", clinic[0], "Olle Analytiker"),
                ("admin", "admin", "", "Administratör"),
                ("erik.behandlare", "clinician", clinic[0], "Erik Behandlare")]
        rows = []
        for user, role, unit, display in plan:
            password = "demo-" + secrets.token_urlsafe(9)
            exists = conn.execute(select(UserAccount.id).where(UserAccount.username == user)
                                  ).first()
            if exists:
                set_password(conn, user, password)
                _set_units(conn, int(exists[0]), [unit] if unit else [])
            else:
                create_user(conn, user, role, [unit] if unit else [], password=password,
                            display_name=display)
            rows.append((user, password, role, unit or "-"))
        # the imported contacts at the demo units are the users' care relations; the
        # synthetic extract is historic, so they are stored until a year from now
        record_contact_relations(conn, Actor("demo", "system"), [clinic[0], social[0]],
                                 valid_to=dt.date.today() + dt.timedelta(days=365))
        shared, unshared = _demo_consents(conn, clinic, social, consents)
        _demo_workers(conn, clinic[0], ("anna.klinik", "erik.behandlare"))
    if persons_file is not None:
        _write_persons(engine, persons_file, shared, unshared)
    return rows


def _demo_consents(conn, clinic: tuple, social: tuple, wanted: int) -> tuple[list[str], list[str]]:
    """Consents region → municipality for some persons the clinic's organisation knows."""
    region_org, municipal_org = clinic[4], social[4]
    candidates = list(conn.execute(
        select(Contact.person_key).where(Contact.unit_id == clinic[0]).distinct()
        .order_by(Contact.person_key).limit(200)).scalars())
    existing = set(conn.execute(select(Consent.person_key).where(
        Consent.from_organisation_id == region_org,
        Consent.to_organisation_id == municipal_org, Consent.revoked_at.is_(None))).scalars())
    actor = Actor("anna.klinik", "clinician", clinic[0])
    shared: list[str] = sorted(existing)[:wanted]
    unshared: list[str] = []
    for key in candidates:
        if key in existing:
            continue
        if len(shared) < wanted and region_org in person_organisations(conn, key):
            record_consent(conn, actor, key, to_organisation_id=municipal_org,
                           categories=DEMO_CATEGORIES,
                           valid_from=dt.date.today() - dt.timedelta(days=30),
                           valid_to=dt.date.today() + dt.timedelta(days=365), form="written",
                           note="Demo: samtycke vid SIP-möte / consent at a SIP meeting")
            if not has_relation(conn, key, social[0]):  # the SIP names the social unit
                create_relation(conn, actor, key, unit_id=social[0], basis="sip",
                                valid_to=dt.date.today() + dt.timedelta(days=365),
                                note="Demo: SIP-möte / SIP meeting")
            shared.append(key)
        elif len(unshared) < wanted and municipal_org not in person_organisations(conn, key):
            unshared.append(key)
        if len(shared) >= wanted and len(unshared) >= wanted:
            break
    return shared, unshared


def _set_units(conn, user_id: int, units: list[str]) -> None:
    """A reset demo account works at the unit the demo picks now."""
    from utfall.store.models_access import UserUnit

    conn.execute(UserUnit.__table__.delete().where(UserUnit.user_id == user_id))
    for unit in units:
        conn.execute(UserUnit.__table__.insert().values(user_id=user_id, unit_id=unit))


def _demo_workers(conn, unit_id: str, workers: tuple[str, ...]) -> int:
    """Make the demo clinicians responsible for the unit's own stages of two enrolments
    in three (the third stays unassigned), so "Ansvarig" and "mine" show something.
    Enrolments with recorded owners are left alone (idempotent); each person audited."""
    from utfall.access.audit import log_event
    from utfall.followup import UnknownProgrammeError, get_programme
    from utfall.store.models import Enrolment
    from utfall.store.models_care import CareStageOwner

    owned = set(conn.execute(select(CareStageOwner.enrolment_id).distinct()).scalars())
    rows = conn.execute(select(Enrolment.row_key, Enrolment.person_key, Enrolment.programme)
                        .where(Enrolment.unit_id == unit_id)
                        .order_by(Enrolment.row_key)).all()
    actor = Actor("demo", "system")
    now = dt.datetime.now(dt.UTC)
    made = 0
    for n, (row_key, person_key, programme) in enumerate(rows):
        if row_key in owned or n % 3 == 2:
            continue
        try:
            stages = [s for s in get_programme(programme).stages
                      if s.responsible in ("region_unit", "person")]
        except UnknownProgrammeError:
            continue
        worker = workers[n % 3 % len(workers)]
        for stage in stages:
            conn.execute(CareStageOwner.__table__.insert().values(
                enrolment_id=row_key, stage=stage.id, responsible=stage.responsible,
                principal_type="region", unit_id=unit_id, worker=worker, assigned_by="demo",
                assigned_at=now))
        log_event(conn, actor, "change", person_key,
                  {"what": "stage_owner", "enrolment_id": row_key, "unit_id": unit_id,
                   "demo": True})
        made += 1
    return made


def _write_persons(engine: Engine, path: Path, shared: list[str], unshared: list[str]) -> None:
    """Synthetic identity numbers of demo persons (never for real persons)."""
    from utfall.access.pseudonym import IdentityVault
    from utfall.config import get_settings

    vault = IdentityVault(get_settings().effective_encryption_key)
    lines = ["# Syntetiska personer / synthetic persons (demo only)"]
    with engine.connect() as conn:
        for label, keys in (("consent", shared), ("no-consent", unshared)):
            for key in keys:
                row = conn.execute(select(Person.pnr_encrypted, Person.synthetic)
                                   .where(Person.person_key == key)).first()
                if row is None or not row.synthetic:
                    continue
                lines.append(f"{label}\t{vault.decrypt(row.pnr_encrypted)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
