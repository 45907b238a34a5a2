"""The access policy: roles, units, consent across principals, revocation, emergency."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.web.factory import World
from utfall.access.audit import Actor
from utfall.access.consent import ConsentError, record_consent, revoke_consent
from utfall.access.policy import (
    AccessDenied,
    access_scope,
    filter_timeline,
    require_person_access,
)
from utfall.care import timeline
from utfall.store.models import AuditEvent

CLIN = Actor("clin", "clinician", "reg-ber")
SOC = Actor("soc", "social_worker", "soc-malmo")
SOC_LUND = Actor("soc_lund", "social_worker", "soc-lund")


def _refer(world: World, person: str, unit: str = "soc-malmo") -> None:
    """The region unit with the relation refers the person to ``unit`` (a SIP)."""
    from utfall.access.relations import create_relation

    with world.engine.begin() as conn:
        create_relation(conn, CLIN, world.keys[person], unit_id=unit, basis="sip")


def _consent(world: World, person: str, to: str = "Malmö stad",
             categories=("assessments", "contacts"), **kw) -> int:
    with world.engine.begin() as conn:
        return record_consent(conn, CLIN, world.keys[person],
                              to_organisation_id=world.org[to], categories=categories,
                              valid_from=kw.pop("valid_from", dt.date.today()), **kw)


def test_own_organisation_reads(world: World) -> None:
    with world.engine.begin() as conn:
        require_person_access(conn, CLIN, world.keys["region"], "read")
        require_person_access(conn, SOC, world.keys["soc"], "read")
        require_person_access(conn, SOC, world.keys["both"], "read")


def test_other_principal_refused_without_consent(world: World) -> None:
    with world.engine.begin() as conn:
        with pytest.raises(AccessDenied) as refused:
            require_person_access(conn, SOC, world.keys["region"], "read")
        # the same answer as for an unknown person (no existence oracle)
        assert refused.value.code == "not_found" and refused.value.status == 404
        assert refused.value.sv and refused.value.en
        with pytest.raises(AccessDenied):
            require_person_access(conn, CLIN, world.keys["soc"], "read")


@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_aggregate_roles_never_person_level(world: World, role: str) -> None:
    with world.engine.begin() as conn:
        for key in world.keys.values():
            for action in ("read", "create", "print"):
                with pytest.raises(AccessDenied):
                    require_person_access(conn, Actor("ana", role, "reg-ber"), key, action)


def test_membership_and_role_checked_for_accounts(world: World) -> None:
    with world.engine.begin() as conn:
        with pytest.raises(AccessDenied) as wrong_unit:  # clin is not a member of reg-laro
            require_person_access(conn, Actor("clin", "clinician", "reg-laro"),
                                  world.keys["region"], "read")
        assert wrong_unit.value.code == "unit"
        with pytest.raises(AccessDenied):  # a clinician cannot act from a municipal unit
            require_person_access(conn, Actor("x", "clinician", "soc-malmo"),
                                  world.keys["soc"], "read")
        with pytest.raises(AccessDenied):
            require_person_access(conn, Actor("clin", "clinician", None), world.keys["region"],
                                  "read")


def test_person_role_only_self(world: World) -> None:
    me = Actor("self", "person", None, person_key=world.keys["soc"])
    with world.engine.begin() as conn:
        require_person_access(conn, me, world.keys["soc"], "read")
        with pytest.raises(AccessDenied):
            require_person_access(conn, me, world.keys["both"], "read")
        with pytest.raises(AccessDenied):
            require_person_access(conn, me, world.keys["soc"], "change")


def test_consent_gives_only_consented_categories(world: World) -> None:
    _consent(world, "region", categories=("assessments",))
    _refer(world, "region")  # Malmö's unit needs its own relation (inre sekretess)
    with world.engine.begin() as conn:
        require_person_access(conn, SOC, world.keys["region"], "read")
        tl = timeline(conn, SOC, world.keys["region"])
        kinds = {e.kind for e in tl.entries()}
        assert kinds == {"assessment"}  # the region's contact stays hidden
        assert tl.hidden >= 1
        with pytest.raises(AccessDenied):  # consent to one municipality only
            require_person_access(conn, SOC_LUND, world.keys["region"], "read")
        # a consent shares reading only: the region's records stay the region's to change
        from utfall.care._common import require_own_organisation

        with pytest.raises(AccessDenied):
            require_own_organisation(conn, SOC, "reg-ber")


def test_revocation_immediate(world: World) -> None:
    cid = _consent(world, "region")
    _refer(world, "region")
    with world.engine.begin() as conn:
        assert timeline(conn, SOC, world.keys["region"]).assessments
        revoke_consent(conn, SOC, cid)  # the receiving side may record the revocation
    with world.engine.begin() as conn:
        tl = timeline(conn, SOC, world.keys["region"])
        assert tl.entries() == [] and tl.hidden >= 2  # the region's data is gone at once


def test_consent_validity_window(world: World) -> None:
    today = dt.date.today()
    _consent(world, "region", valid_from=today + dt.timedelta(days=5))
    _consent(world, "region", valid_from=today - dt.timedelta(days=30),
             valid_to=today - dt.timedelta(days=1))
    _refer(world, "region")
    with world.engine.begin() as conn:
        assert timeline(conn, SOC, world.keys["region"]).entries() == []


def test_consent_input_checked(world: World) -> None:
    with pytest.raises(ConsentError) as bad_cat:
        _consent(world, "region", categories=("everything",))
    assert bad_cat.value.field == "categories"
    with pytest.raises(ConsentError):
        _consent(world, "region", to="Region Syd")  # to its own organisation
    with pytest.raises(ConsentError):
        _consent(world, "region", valid_from=dt.date(2026, 5, 1), valid_to=dt.date(2026, 4, 1))
    with world.engine.begin() as conn, pytest.raises(AccessDenied):
        # the municipality cannot grant itself the region's data
        record_consent(conn, SOC, world.keys["region"], to_organisation_id=world.org["Malmö stad"],
                       categories=["assessments"], valid_from=dt.date.today())


def test_unrelated_organisation_cannot_revoke(world: World) -> None:
    cid = _consent(world, "region")
    with world.engine.begin() as conn, pytest.raises(AccessDenied):
        revoke_consent(conn, SOC_LUND, cid)


def test_emergency_access_logged_and_flagged(world: World) -> None:
    clin2 = Actor("clin2", "clinician", "reg-laro")  # same region, no relation
    with world.engine.begin() as conn:
        with pytest.raises(AccessDenied):
            require_person_access(conn, clin2, world.keys["region"], "read",
                                  emergency_reason="short")
        grant = require_person_access(conn, clin2, world.keys["region"], "read",
                                      emergency_reason="Akut suicidrisk, behöver läkemedelslista")
        assert grant.emergency
        scope = access_scope(conn, clin2, world.keys["region"], emergency=True)
        assert scope.emergency and not scope.everything  # never wider than the principal
        events = conn.execute(select(AuditEvent).where(
            AuditEvent.person_key == world.keys["region"])).all()
    flagged = [e for e in events if e.detail.get("emergency")]
    assert flagged and flagged[-1].actor == "clin2" and "suicidrisk" in flagged[-1].detail["reason"]
    with world.engine.begin() as conn, pytest.raises(AccessDenied) as social:
        require_person_access(conn, SOC, world.keys["region"], "read",
                              emergency_reason="Akut suicidrisk, behöver läkemedelslista")
    assert social.value.code == "emergency_role"  # no route from social services


def test_create_needs_a_relation(world: World) -> None:
    with world.engine.begin() as conn, pytest.raises(AccessDenied) as refused:
        require_person_access(conn, SOC, world.keys["region"], "create")
    assert refused.value.code == "not_found"


def test_filter_timeline_generic_entries(world: World) -> None:
    entries = [{"kind": "assessment", "unit_id": "reg-ber"},
               {"kind": "contact", "unit_id": "reg-ber"},
               {"kind": "contact", "unit_id": "soc-malmo"},
               {"kind": "assessment", "unit_id": None}]
    _consent(world, "both", categories=("assessments",))
    with world.engine.begin() as conn:
        shown = filter_timeline(conn, SOC, world.keys["both"], entries)
    assert shown == entries[:1] + entries[2:3]
