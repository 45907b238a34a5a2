"""Find and register persons by identity number (never logged, encrypted at rest)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from utfall.access.audit import Actor, log_event
from utfall.access.pseudonym import IdentityVault, person_key
from utfall.care._common import CareError, Issue, access, get_person
from utfall.config import get_settings
from utfall.domain.identity import IdentityNumberError, parse_identity_number
from utfall.store.models import Person

SEXES = ("M", "F")


def _parse(identity_number: str):
    try:
        return parse_identity_number(identity_number)
    except IdentityNumberError as exc:
        raise CareError("invalid_identity_number", "ogiltigt personnummer",
                        "invalid identity number",
                        [Issue("identity_number", "invalid_identity_number", str(exc),
                               str(exc))]) from None


def key_of(identity_number: str) -> str:
    """The person_key of a valid identity number (raises :class:`CareError`)."""
    return person_key(_parse(identity_number).canonical, get_settings().effective_secret_key)


def find_person(conn: Connection, actor: Actor, identity_number: str) -> str | None:
    """The person_key of a registered person the actor may read, else None.

    A person the actor may not reach answers None exactly like an unknown number (no
    existence oracle); the look-up is audited with the person_key (never the number)
    and marked ``denied`` then, so the log review sees it. A search that finds nobody
    is logged without a person.
    """
    from utfall.access.policy import PersonNotFound

    key = key_of(identity_number)
    found = conn.execute(select(Person.person_key).where(Person.person_key == key)).first()
    if found is None:
        log_event(conn, actor, "read", None, {"what": "person_lookup", "found": False})
        return None
    try:
        access(conn, actor, key, "read", {"what": "person_lookup", "found": True})
    except PersonNotFound:
        log_event(conn, actor, "read", key, {"what": "person_lookup", "denied": True})
        return None
    return key


def _relation_needed() -> Exception:
    from utfall.access.policy import AccessDenied

    return AccessDenied(
        "relation_needed",
        "Personen kan inte skrivas in direkt vid din enhet. Enhetschefen kan ta emot en "
        "remiss, eller en enhet med vårdrelation kan remittera personen till er.",
        "The person cannot be registered directly at your unit. Your unit manager can "
        "accept a referral, or a unit with a care relation can refer the person to you.")


def register_person(conn: Connection, actor: Actor, identity_number: str, sex: str | None = None,
                    municipality_code: str | None = None) -> str:
    """Register a person and return the person_key.

    A *new* person (absent, or present with no records and no relation anywhere)
    registered at one's own unit starts a care relation there (basis
    ``registration``): the person is in front of the user. A person already known
    elsewhere is returned only to a unit that has a relation; any other unit gets
    ``AccessDenied`` with code ``relation_needed`` (a referral or assignment is needed
    first) and nothing is created. Sex defaults to the one implied by the identity number.
    """
    from utfall.access.policy import require_recorder
    from utfall.access.relations import add_relation, has_relation, is_known

    parsed = _parse(identity_number)
    settings = get_settings()
    key = person_key(parsed.canonical, settings.effective_secret_key)
    if sex is not None and sex.upper() not in SEXES:
        raise CareError("invalid_sex", "ogiltigt kön", "invalid sex",
                        [Issue("sex", "invalid_sex", "ska vara M eller F", "must be M or F")])
    if municipality_code is not None and not (
        len(municipality_code) == 4 and municipality_code.isdigit()
    ):
        raise CareError("invalid_municipality", "ogiltig kommunkod", "invalid municipality code",
                        [Issue("municipality_code", "invalid_municipality",
                               "ska vara fyra siffror", "must be four digits")])
    require_recorder(conn, actor)
    exists = conn.execute(select(Person.person_key).where(Person.person_key == key)).first()
    if exists is not None:
        if actor.role == "system" or has_relation(conn, key, actor.unit_id):
            access(conn, actor, key, "create", {"what": "person_register", "existed": True})
            return key
        if is_known(conn, key):
            raise _relation_needed()
    else:
        vault = IdentityVault(settings.effective_encryption_key)
        conn.execute(Person.__table__.insert().values(
            person_key=key, pnr_encrypted=vault.encrypt(parsed.canonical),
            coordination_number=parsed.coordination, sex=(sex or parsed.sex).upper(),
            birth_date=parsed.birth_date, municipality_code=municipality_code, synthetic=False))
        log_event(conn, actor, "create", key, {"what": "person"})
    if actor.role != "system" and actor.unit_id:
        add_relation(conn, actor, key, actor.unit_id, "registration")
    return key


def accept_referral(conn: Connection, actor: Actor, identity_number: str, *,
                    note: str | None = None, valid_to=None) -> str:
    """A unit manager accepts a referral of the person to their own unit: the unit
    gets a relation (basis ``referral``), audited. A number not yet registered is
    registered (the referral starts care at the unit). Returns the person_key."""
    from utfall.access.policy import AccessDenied, _care_origin
    from utfall.access.relations import add_relation, has_relation

    if actor.role != "unit_manager":
        raise AccessDenied("role", "Bara enhetschefen tar emot remisser till enheten.",
                           "Only the unit manager accepts referrals to the unit.")
    _care_origin(conn, actor)
    parsed = _parse(identity_number)
    settings = get_settings()
    key = person_key(parsed.canonical, settings.effective_secret_key)
    exists = conn.execute(select(Person.person_key).where(Person.person_key == key)).first()
    if exists is None:
        vault = IdentityVault(settings.effective_encryption_key)
        conn.execute(Person.__table__.insert().values(
            person_key=key, pnr_encrypted=vault.encrypt(parsed.canonical),
            coordination_number=parsed.coordination, sex=parsed.sex,
            birth_date=parsed.birth_date, municipality_code=None, synthetic=False))
        log_event(conn, actor, "create", key, {"what": "person"})
    if not has_relation(conn, key, actor.unit_id):
        add_relation(conn, actor, key, str(actor.unit_id), "referral",
                     note=(note or "")[:500] or None, valid_to=valid_to)
    return key


def check_person(conn: Connection, actor: Actor, person_key_: str, action: str = "create"
                 ) -> None:
    """May the actor open a form to ``action`` the person (no data shown, not logged)?
    Raises ``AccessDenied`` / ``PersonNotFound`` like the action itself would."""
    from utfall.access.policy import require_person_access

    require_person_access(conn, actor, person_key_, action)


def masked_identity(conn: Connection, person_key_: str) -> str:
    """``YYYYMMDD-****`` of a person (decrypted in memory only; no audit of its own)."""
    row = get_person(conn, person_key_)
    vault = IdentityVault(get_settings().effective_encryption_key)
    canonical = vault.decrypt(row.pnr_encrypted)
    return f"{canonical[:8]}-****"
