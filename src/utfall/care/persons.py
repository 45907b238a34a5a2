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
    """The person_key of a registered person, else None.

    The look-up is audited with the person_key (never the number); a search that finds
    nobody is logged without a person.
    """
    key = key_of(identity_number)
    found = conn.execute(select(Person.person_key).where(Person.person_key == key)).first()
    if found is None:
        log_event(conn, actor, "read", None, {"what": "person_lookup", "found": False})
        return None
    access(conn, actor, key, "read", {"what": "person_lookup", "found": True})
    return key


def register_person(conn: Connection, actor: Actor, identity_number: str, sex: str | None = None,
                    municipality_code: str | None = None) -> str:
    """Register a person if absent and return the person_key.

    Sex defaults to the one implied by the identity number. An existing person is
    returned unchanged; registering is allowed at one's own unit (the person is in
    front of the user), so it is checked and audited as ``create`` with
    ``existed: true`` even when the person is known to another principal.
    """
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
    exists = conn.execute(select(Person.person_key).where(Person.person_key == key)).first()
    if exists is not None:
        access(conn, actor, key, "create", {"what": "person_register", "existed": True})
        return key
    vault = IdentityVault(settings.effective_encryption_key)
    conn.execute(Person.__table__.insert().values(
        person_key=key, pnr_encrypted=vault.encrypt(parsed.canonical),
        coordination_number=parsed.coordination, sex=(sex or parsed.sex).upper(),
        birth_date=parsed.birth_date, municipality_code=municipality_code, synthetic=False))
    log_event(conn, actor, "create", key, {"what": "person"})
    return key


def masked_identity(conn: Connection, person_key_: str) -> str:
    """``YYYYMMDD-****`` of a person (decrypted in memory only; no audit of its own)."""
    row = get_person(conn, person_key_)
    vault = IdentityVault(get_settings().effective_encryption_key)
    canonical = vault.decrypt(row.pnr_encrypted)
    return f"{canonical[:8]}-****"
