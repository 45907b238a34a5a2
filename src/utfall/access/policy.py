"""Who may see and change which person's data (DOMAIN.md §8, docs/security.md).

Rules, checked on every call (nothing cached across requests, so a revoked consent
or an ended relation takes effect on the next request):

* ``system`` (CLI and batch jobs) may do everything.
* ``person`` (self-report by token) may read and add to their own data only.
* ``analyst`` and ``admin`` never get person-level data (aggregates / accounts only).
* ``clinician`` (region or private unit), ``social_worker`` (municipal unit) and
  ``unit_manager`` act from one unit they are members of. They reach a person only
  when their unit has a care relation valid today (``utfall.access.relations``:
  stored relations, imported contacts/enrolments of the unit). What they then see is
  what their own organisation (principal) recorded, plus the categories another
  organisation may share under the person's valid consent.
* Unit managers read; they never record (create/change) person data.
* Recording never creates a relation (only registering a *new* person does, in
  ``utfall.care.register_person``).
* A clinician may open a time-boxed emergency access (``utfall.access.emergency``)
  to a person known to their own organisation; social services have no such route.
* Refusals that depend on the person answer :class:`PersonNotFound` – the same for
  a person who does not exist and one the actor may not reach (no existence oracle).
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, and_, or_, select

from utfall.access.audit import Actor
from utfall.store.models import Organisation, Unit
from utfall.store.models_access import Consent, UserAccount, UserUnit

CARE_ROLES = frozenset({"clinician", "social_worker", "unit_manager"})
ROLES = frozenset({*CARE_ROLES, "analyst", "admin", "system", "person"})
PERSON_ACTIONS = frozenset({"read", "create", "change", "disclose", "copy", "print"})
MIN_EMERGENCY_REASON = 10  # kept for callers; see utfall.access.emergency.MIN_REASON

# data categories a consent can name, with the timeline entry kinds they cover
CATEGORIES: dict[str, dict[str, str]] = {
    "assessments": {"sv": "Skattningar och formulär", "en": "Assessments and questionnaires"},
    "enrolments": {"sv": "Inskrivningar och program", "en": "Enrolments and programmes"},
    "contacts": {"sv": "Kontakter och diagnoser", "en": "Contacts and diagnoses"},
    "interventions": {"sv": "Åtgärder (KVÅ)", "en": "Interventions (KVÅ)"},
    "medication": {"sv": "Läkemedel", "en": "Medication"},
    "plan": {"sv": "SIP och planering", "en": "SIP and care planning"},
}
KIND_CATEGORY: dict[str, str] = {
    "assessment": "assessments",
    "self_report": "assessments",
    "enrolment": "enrolments",
    "phase": "enrolments",
    "contact": "contacts",
    "procedure": "interventions",
    "intervention": "interventions",
    "medication": "medication",
    "sip": "plan",
    "plan": "plan",
}
# roles expected at each kind of principal
ROLE_PRINCIPALS: dict[str, frozenset[str]] = {
    "clinician": frozenset({"region", "private"}),
    "social_worker": frozenset({"municipality", "private"}),
    "unit_manager": frozenset({"region", "municipality", "private"}),
}


class AccessDenied(Exception):
    """Access refused; ``sv``/``en`` are reasons safe to show to the user."""

    status = 403

    def __init__(self, code: str, sv: str, en: str) -> None:
        super().__init__(en)
        self.code = code
        self.sv = sv
        self.en = en

    def text(self, locale: str = "sv") -> str:
        """The reason in ``locale``."""
        return self.en if locale == "en" else self.sv


class PersonNotFound(AccessDenied):
    """The one answer for a person who does not exist *and* for one the actor may not
    reach: the caller cannot tell the two apart (HTTP 404)."""

    status = 404

    def __init__(self) -> None:
        super().__init__("not_found",
                         "Personen finns inte, eller din enhet har ingen vårdrelation med "
                         "personen.",
                         "No such person, or your unit has no care relation with the person.")


@dataclass(frozen=True)
class Grant:
    """Why access was given: ``system``, ``self``, ``relation`` or ``emergency``."""

    basis: str
    emergency_id: int | None = None

    @property
    def emergency(self) -> bool:
        return self.basis == "emergency"

    def detail(self) -> dict[str, Any]:
        """Audit detail flagging a read made under emergency access."""
        if self.basis != "emergency":
            return {}
        return {"emergency": True, "emergency_id": self.emergency_id, "review": "pending"}


def _deny(code: str, sv: str, en: str) -> AccessDenied:
    return AccessDenied(code, sv, en)


@dataclass(frozen=True)
class AccessScope:
    """What one actor may see of one person right now."""

    person_key: str
    organisation_id: int | None
    everything: bool = False
    emergency: bool = False
    shared: Mapping[int, frozenset[str]] = field(default_factory=dict)

    def allows(self, organisation_id: int | None, category: str | None) -> bool:
        """May an entry recorded by ``organisation_id`` of ``category`` be shown?"""
        if self.everything:
            return True
        if organisation_id is not None and organisation_id == self.organisation_id:
            return True
        if organisation_id is None:
            return False
        cats = self.shared.get(organisation_id, frozenset())
        return category is not None and category in cats


# ------------------------------------------------------------------ look-ups

_MEMO = "utfall.policy.memo"


def _memo(conn: Connection) -> dict[Any, Any]:
    """A dict living as long as the connection's current transaction (no transaction:
    a fresh dict). Look-ups repeated within one request are answered from it; the next
    transaction starts empty, so a revoked consent applies from the next request on."""
    txn = conn.get_transaction()
    if txn is None:
        return {}
    held = conn.info.get(_MEMO)
    if held is None or held[0]() is not txn:
        held = (weakref.ref(txn), {})
        conn.info[_MEMO] = held
    return held[1]


def unit_organisation(conn: Connection, unit_id: str | None) -> tuple[int, str] | None:
    """``(organisation_id, principal_type)`` of a unit, or None when unknown."""
    if not unit_id:
        return None
    memo = _memo(conn)
    if ("unit", unit_id) not in memo:
        row = conn.execute(
            select(Unit.organisation_id, Organisation.principal_type)
            .join(Organisation, Organisation.id == Unit.organisation_id)
            .where(Unit.unit_id == unit_id)
        ).first()
        memo["unit", unit_id] = (int(row[0]), str(row[1])) if row else None
    return memo["unit", unit_id]


def unit_organisations(conn: Connection) -> dict[str, int]:
    """Map of every unit id to its organisation id."""
    memo = _memo(conn)
    if "units" not in memo:
        memo["units"] = {u: int(o) for u, o in
                         conn.execute(select(Unit.unit_id, Unit.organisation_id))}
    return memo["units"]


def person_units(conn: Connection, person_key: str, today: dt.date | None = None) -> set[str]:
    """Units with a care relation to the person valid ``today`` (see
    :mod:`utfall.access.relations`)."""
    from utfall.access.relations import relation_units

    return relation_units(conn, person_key, today)


def person_organisations(conn: Connection, person_key: str) -> set[int]:
    """Organisations with a unit that holds records of, or a relation with, the person."""
    from utfall.access.relations import known_units

    units = known_units(conn, person_key)
    if not units:
        return set()
    rows = conn.execute(select(Unit.organisation_id).where(Unit.unit_id.in_(units)).distinct())
    return {int(r[0]) for r in rows}


def active_consents(conn: Connection, person_key: str, to_organisation_id: int,
                    today: dt.date | None = None) -> list[Row[Any]]:
    """The person's consents into ``to_organisation_id`` valid ``today`` and not revoked
    (rows with :class:`Consent`'s columns)."""
    today = today or dt.date.today()
    return list(conn.execute(
        select(Consent).where(
            Consent.person_key == person_key,
            Consent.to_organisation_id == to_organisation_id,
            Consent.revoked_at.is_(None),
            Consent.valid_from <= today,
            or_(Consent.valid_to.is_(None), Consent.valid_to >= today),
        )
    ))


def shared_categories(conn: Connection, person_key: str, to_organisation_id: int,
                      today: dt.date | None = None) -> dict[int, frozenset[str]]:
    """Per source organisation, the categories the person lets ``to_organisation_id`` see."""
    memo = _memo(conn)
    key = ("shared", person_key, to_organisation_id, today)
    if key not in memo:
        out: dict[int, set[str]] = {}
        for c in active_consents(conn, person_key, to_organisation_id, today):
            out.setdefault(c.from_organisation_id, set()).update(c.categories or [])
        memo[key] = {k: frozenset(v) for k, v in out.items()}
    return memo[key]


def _check_membership(conn: Connection, actor: Actor) -> None:
    """An actor named after a stored account must be a member of the unit it acts from."""
    memo = _memo(conn)
    key = ("member", actor.user, actor.role, actor.unit_id)
    if key in memo:
        if memo[key] is not None:
            raise memo[key]
        return
    try:
        _membership(conn, actor)
    except AccessDenied as refused:
        memo[key] = refused
        raise
    memo[key] = None


def _membership(conn: Connection, actor: Actor) -> None:
    account = conn.execute(
        select(UserAccount.id, UserAccount.active, UserAccount.role)
        .where(UserAccount.username == actor.user)
    ).first()
    if account is None:
        return  # programmatic actor (service layer / tests); the web layer always has one
    if not account.active:
        raise _deny("inactive", "Kontot är avstängt.", "The account is disabled.")
    if account.role != actor.role:
        raise _deny("role", "Fel roll för kontot.", "Role does not match the account.")
    member = conn.execute(
        select(UserUnit.unit_id).where(UserUnit.user_id == account.id,
                                       UserUnit.unit_id == actor.unit_id)
    ).first()
    if member is None:
        raise _deny("unit", "Du är inte medlem av enheten.", "You are not a member of this unit.")


def _care_origin(conn: Connection, actor: Actor) -> int:
    """Organisation of a care actor's unit, after checking unit, role and membership."""
    if actor.role not in CARE_ROLES:
        raise _deny("role", "Rollen ger ingen åtkomst till personuppgifter.",
                    "This role has no access to person-level data.")
    org = unit_organisation(conn, actor.unit_id)
    if org is None:
        raise _deny("unit", "Ingen giltig enhet vald.", "No valid unit selected.")
    organisation_id, principal = org
    if principal not in ROLE_PRINCIPALS[actor.role]:
        raise _deny("principal", "Rollen passar inte enhetens huvudman.",
                    "The role does not fit the unit's principal.")
    _check_membership(conn, actor)
    return organisation_id


# ------------------------------------------------------------------ the checks


def access_scope(conn: Connection, actor: Actor, person_key: str, *,
                 emergency: bool = False, today: dt.date | None = None) -> AccessScope:
    """What ``actor`` may see of the person (raises :class:`AccessDenied` for roles
    without person-level access). Does not log. Emergency access does not widen the
    scope: other principals' records stay behind the person's consent."""
    if actor.role == "system":
        return AccessScope(person_key, None, everything=True)
    if actor.role == "person":
        if actor.person_key != person_key:
            raise _deny("self", "Du kan bara se dina egna uppgifter.",
                        "You can only see your own data.")
        return AccessScope(person_key, None, everything=True)
    if actor.role not in ROLES:
        raise _deny("role", "Okänd roll.", "Unknown role.")
    organisation_id = _care_origin(conn, actor)
    return AccessScope(person_key, organisation_id, emergency=emergency,
                       shared=shared_categories(conn, person_key, organisation_id, today))


RECORDING = frozenset({"create", "change"})


def require_person_access(conn: Connection, actor: Actor, person_key: str, action: str, *,
                          emergency_reason: str | None = None,
                          today: dt.date | None = None,
                          now: dt.datetime | None = None) -> Grant:
    """Return the :class:`Grant` for ``actor`` doing ``action`` on the person, or raise.

    Refusals that do not depend on the person (role, unit, membership, managers
    recording) raise :class:`AccessDenied` (403); every refusal that does raises
    :class:`PersonNotFound` (404), the same as for an unknown person.

    With ``emergency_reason`` (clinicians, reading, no relation) an emergency access
    is opened for :data:`utfall.access.emergency.EMERGENCY_HOURS` (stored and logged);
    reads while one runs are granted with ``basis == "emergency"`` and must be logged
    with :meth:`Grant.detail` (``utfall.care`` does).
    """
    from utfall.access import clock
    from utfall.access.emergency import active_emergency, start_emergency
    from utfall.access.relations import has_relation

    if action not in PERSON_ACTIONS:
        raise _deny("action", "Okänd åtgärd.", "Unknown action.")
    if actor.role == "system":
        return Grant("system")
    if actor.role == "person":
        if actor.person_key != person_key or action not in {"read", "create"}:
            raise _deny("self", "Du kan bara se och besvara dina egna uppgifter.",
                        "You can only see and answer your own data.")
        return Grant("self")
    organisation_id = _care_origin(conn, actor)
    if action in RECORDING and actor.role == "unit_manager":
        raise _deny("manager_records", "Enhetschefer läser men registrerar inte "
                    "personuppgifter.", "Unit managers read but do not record person data.")
    instant = now or clock.now()
    day = today or clock.today(instant)
    if has_relation(conn, person_key, actor.unit_id, day):
        return Grant("relation")
    if action == "read":
        running = active_emergency(conn, actor, person_key, instant)
        if running is not None:
            return Grant("emergency", int(running.id))
        if (emergency_reason or "").strip():
            started = start_emergency(conn, actor, person_key, emergency_reason or "",
                                      organisation_id, instant)
            return Grant("emergency", int(started.id))
    raise PersonNotFound()


def require_recorder(conn: Connection, actor: Actor) -> int | None:
    """A care role that may record (not a unit manager) at a valid unit; returns its
    organisation id (None for ``system``). Does not depend on any person."""
    if actor.role == "system":
        return None
    organisation_id = _care_origin(conn, actor)
    if actor.role == "unit_manager":
        raise _deny("manager_records", "Enhetschefer läser men registrerar inte "
                    "personuppgifter.", "Unit managers read but do not record person data.")
    return organisation_id


# ------------------------------------------------------------------ filtering

E = TypeVar("E")


def _get(entry: Any, name: str) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(name)
    return getattr(entry, name, None)


def entry_category(entry: Any) -> str | None:
    """Consent category of a timeline entry (``category`` or mapped from ``kind``)."""
    category = _get(entry, "category")
    if category in CATEGORIES:
        return category
    kind = _get(entry, "kind") or _get(entry, "type")
    return KIND_CATEGORY.get(str(kind)) if kind is not None else None


def filter_entries(entries: Iterable[E], scope: AccessScope, unit_org: Mapping[str, int], *,
                   unit_of: Callable[[E], str | None] | None = None,
                   category_of: Callable[[E], str | None] | None = None) -> list[E]:
    """The entries ``scope`` allows: own organisation's, plus consented categories of
    other organisations. Entries without a unit are shown only with full scope."""
    unit_of = unit_of or (lambda e: _get(e, "unit_id"))
    category_of = category_of or entry_category
    out = []
    for entry in entries:
        unit = unit_of(entry)
        org = unit_org.get(unit) if unit else None
        if scope.allows(org, category_of(entry)):
            out.append(entry)
    return out


def filter_timeline(conn: Connection, actor: Actor, person_key: str, entries: Iterable[E], *,
                    emergency: bool = False, today: dt.date | None = None) -> list[E]:
    """Shortcut: the entries of a person's timeline ``actor`` may see."""
    scope = access_scope(conn, actor, person_key, emergency=emergency, today=today)
    return filter_entries(entries, scope, unit_organisations(conn))


def actor_organisation(conn: Connection, actor: Actor) -> int | None:
    """Organisation id of the actor's unit (None for system/person/unknown)."""
    org = unit_organisation(conn, actor.unit_id)
    return org[0] if org else None


def require_unit_scope(conn: Connection, actor: Actor, unit_id: str | None) -> None:
    """Unit-level (worklist, dashboard) access: care roles only for their own unit."""
    if actor.role == "system":
        return
    if actor.role not in CARE_ROLES:
        raise _deny("role", "Rollen ger ingen åtkomst till enhetens personlista.",
                    "This role has no access to the unit's person list.")
    if unit_id != actor.unit_id:
        raise _deny("unit", "Du kan bara se din egen enhet.", "You can only see your own unit.")
    _care_origin(conn, actor)


def consent_condition(person_key: str, from_org: int, to_org: int, today: dt.date) -> Any:
    """SQL condition of a valid consent (for callers building their own queries)."""
    return and_(Consent.person_key == person_key, Consent.from_organisation_id == from_org,
                Consent.to_organisation_id == to_org, Consent.revoked_at.is_(None),
                Consent.valid_from <= today,
                or_(Consent.valid_to.is_(None), Consent.valid_to >= today))
