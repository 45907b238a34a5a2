"""A unit's follow-up work list at scale: filtered, sorted and paged on the server.

One use-case function per job — :func:`worklist_page` (read a page), :func:`export_rows`
(every filtered row, for CSV) and :func:`assign_worker` (responsible worker of a stage) —
each checking access and writing the audit itself. The list is computed with a fixed
number of queries whatever its length (enrolments, stage owners, capture links,
assessments, sibling enrolments, units, care relations), then scheduled in memory
(:func:`utfall.followup.schedule`); only the persons on the page shown are read in
detail and logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Row, func, or_, select

from utfall.access.audit import Actor, log_event
from utfall.care._common import CareError, Issue
from utfall.care.enrolment import StageOwner, default_owner
from utfall.care.scheduling import completions_from, not_voided
from utfall.followup import Completed, Programme, UnknownProgrammeError, get_programme, schedule
from utfall.followup import Enrolment as SchedEnrolment
from utfall.instruments.models import LocalText
from utfall.store.models import Assessment, Contact, Enrolment, Organisation, Person, Unit
from utfall.store.models_access import UserAccount, UserUnit
from utfall.store.models_care import CareAssessment, CareEnrolment, CareStageOwner
from utfall.store.models_relations import CareRelation

log = logging.getLogger(__name__)
PENDING = frozenset({"upcoming", "due", "overdue"})
DONE = frozenset({"done_in_window", "done_late", "done_early"})
OPEN = frozenset({"overdue", "due", "upcoming", "missed"})
ORDER = {"overdue": 0, "due": 1, "upcoming": 2, "missed": 3, "done_late": 4,
         "done_in_window": 5, "done_early": 6}
# status filter values (the list's own words): one status or a group
STATUS_FILTERS: dict[str, frozenset[str]] = {
    "open": OPEN, "overdue": frozenset({"overdue"}), "due": frozenset({"due"}),
    "upcoming": frozenset({"upcoming"}), "missed": frozenset({"missed"}), "done": DONE,
    "all": OPEN | DONE}
SORTS = ("due", "status", "programme", "stage", "person", "worker")
MAX_PAGE_SIZE = 200
MAX_EXPORT = 20_000
ENDED_LOOKBACK = dt.timedelta(days=800)
NO_WORKER = "-"  # the responsible filter for stages nobody is responsible for yet


@dataclass(frozen=True)
class WorklistFilter:
    """What the list shows: statuses, programme, stage, responsible worker, one person."""

    status: str = "open"
    programme: str | None = None
    stage: str | None = None
    worker: str | None = None  # a user name, or NO_WORKER
    mine: bool = False
    person_key: str | None = None
    sort: str = "status"  # one of SORTS, "-" in front for descending

    def statuses(self) -> frozenset[str]:
        return STATUS_FILTERS[self.status]


@dataclass
class Row_:
    """One stage occurrence on the list (before the person is read)."""

    enrolment_id: str
    person_key: str
    programme: str
    programme_title: LocalText
    stage_id: str
    stage: str
    title: LocalText
    status: str
    due_date: dt.date | None
    window_start: dt.date | None
    window_end: dt.date | None
    overdue_until: dt.date | None
    completed_on: dt.date | None
    responsible: str
    principal_type: str
    unit_id: str | None
    worker: str | None
    method: str
    instruments: list[str]
    instruments_done: list[str]


@dataclass
class WorklistItem:
    """A row shown: the stage plus a readable, masked person and the worker's name."""

    row: Row_
    person: str  # YYYYMMDD-****
    sex: str | None
    age: int | None
    name: str | None
    unit_name: str | None
    worker_name: str | None
    open_flags: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (API): codes plus sv/en titles; no full identity number."""
        r = self.row
        return {
            "enrolment_id": r.enrolment_id, "person_key": r.person_key, "person": self.person,
            "sex": self.sex, "age": self.age, "name": self.name,
            "programme": r.programme, "programme_title": r.programme_title.model_dump(),
            "stage_id": r.stage_id, "stage": r.stage, "title": r.title.model_dump(),
            "status": r.status, "due_date": _iso(r.due_date),
            "window_start": _iso(r.window_start), "window_end": _iso(r.window_end),
            "overdue_until": _iso(r.overdue_until), "completed_on": _iso(r.completed_on),
            "responsible": r.responsible, "principal_type": r.principal_type,
            "unit_id": r.unit_id, "unit_name": self.unit_name, "worker": r.worker,
            "worker_name": self.worker_name, "method": r.method,
            "instruments": r.instruments, "instruments_done": r.instruments_done,
            "instruments_missing": [i for i in r.instruments if i not in r.instruments_done],
            "open_flags": self.open_flags}


@dataclass
class WorklistPage:
    """A page of the list with the total, and what the filter controls can offer."""

    items: list[WorklistItem]
    total: int
    page: int
    page_size: int
    counts: dict[str, int] = field(default_factory=dict)  # per status, before the filter
    programmes: list[tuple[str, LocalText]] = field(default_factory=list)
    stages: list[tuple[str, list[LocalText]]] = field(default_factory=list)
    workers: list[tuple[str, str]] = field(default_factory=list)  # user name, display name

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


# ------------------------------------------------------------------ bulk collection


def _candidate_query(unit_id: str | None, day: dt.date) -> Any:
    e = Enrolment.__table__
    query = select(e.c.row_key).where(or_(e.c.end_date.is_(None),
                                          e.c.end_date >= day - ENDED_LOOKBACK))
    if unit_id is not None:
        owned = select(CareStageOwner.enrolment_id).where(CareStageOwner.unit_id == unit_id)
        municipal = select(CareEnrolment.enrolment_id).where(
            CareEnrolment.municipal_unit_id == unit_id)
        query = query.where(or_(e.c.unit_id == unit_id, e.c.row_key.in_(owned),
                                e.c.row_key.in_(municipal)))
    return query


@dataclass(frozen=True)
class _Unit:
    name: str
    principal_type: str


def _units(conn: Connection) -> dict[str, _Unit]:
    rows = conn.execute(select(Unit.unit_id, Unit.name, Organisation.principal_type)
                        .join(Organisation, Organisation.id == Unit.organisation_id))
    return {r[0]: _Unit(r[1], r[2]) for r in rows}


def collect(conn: Connection, unit_id: str | None, day: dt.date, *, horizon_days: int = 30,
            lookback_days: int | None = 365) -> list[Row_]:
    """Every stage occurrence on the unit's list (None: every unit), not access-checked.

    The same rules as :func:`utfall.care.due.due_list`, in seven queries.
    """
    e = Enrolment.__table__
    ids = _candidate_query(unit_id, day).subquery()
    enrolments = conn.execute(select(e).where(e.c.row_key.in_(select(ids.c.row_key)))
                              .order_by(e.c.start_date, e.c.row_key)).all()
    if not enrolments:
        return []
    so = CareStageOwner.__table__
    owners: dict[str, dict[str, Row[Any]]] = {}
    for r in conn.execute(select(so).where(so.c.enrolment_id.in_(select(ids.c.row_key)))):
        owners.setdefault(r.enrolment_id, {})[r.stage] = r
    ce = CareEnrolment.__table__
    care = {r.enrolment_id: r for r in conn.execute(
        select(ce).where(ce.c.enrolment_id.in_(select(ids.c.row_key))))}
    persons = select(e.c.person_key).where(e.c.row_key.in_(select(ids.c.row_key)))
    siblings: dict[tuple[str, str], list[Row[Any]]] = {}
    for r in conn.execute(select(e.c.row_key, e.c.person_key, e.c.programme, e.c.start_date)
                          .where(e.c.person_key.in_(persons))):
        siblings.setdefault((r.person_key, r.programme), []).append(r)
    a = Assessment.__table__
    ca = CareAssessment.__table__
    assessments: dict[str, list[Row[Any]]] = {}
    for r in conn.execute(
            select(a.c.person_key, a.c.instrument, a.c.stage, a.c.date, ca.c.enrolment_id)
            .select_from(a.outerjoin(ca, ca.c.assessment_id == a.c.row_key))
            .where(a.c.person_key.in_(persons), a.c.stage.is_not(None),
                   not_voided(a.c.row_key))):
        assessments.setdefault(r.person_key, []).append(r)
    units = _units(conn)
    horizon = day + dt.timedelta(days=horizon_days)
    oldest = day - dt.timedelta(days=lookback_days) if lookback_days is not None else None
    out: list[Row_] = []
    for enrolment in enrolments:
        try:
            prog = get_programme(enrolment.programme)
        except UnknownProgrammeError:
            continue
        stage_owner = _owners(enrolment, prog, owners.get(enrolment.row_key, {}),
                              care.get(enrolment.row_key), units)
        done, instruments = _completions(enrolment, prog, assessments.get(
            enrolment.person_key, []), siblings.get((enrolment.person_key, prog.id), []))
        for row in _schedule(prog, enrolment.start_date, enrolment.end_date, done, day):
            owner = stage_owner[row.stage]
            if unit_id is not None and owner.unit_id != unit_id:
                continue
            # a stage after discharge (the municipality's follow-up) is listed from the
            # discharge on, whatever the horizon (as in ``due_list``)
            after_end = (enrolment.end_date is not None and row.due_date is not None
                         and row.due_date > enrolment.end_date)
            if row.status == "upcoming" and not after_end and (
                    row.window_start is None or row.window_start > horizon):
                continue
            if enrolment.end_date is not None and row.status not in PENDING:
                continue
            settled = row.completed_on or (row.overdue_until if row.status == "missed" else None)
            if oldest is not None and settled is not None and settled < oldest:
                continue
            out.append(Row_(
                enrolment_id=enrolment.row_key, person_key=enrolment.person_key,
                programme=prog.id, programme_title=prog.title, stage_id=row.stage_id,
                stage=row.stage, title=row.title, status=row.status, due_date=row.due_date,
                window_start=row.window_start, window_end=row.window_end,
                overdue_until=row.overdue_until, completed_on=row.completed_on,
                responsible=owner.responsible, principal_type=owner.principal_type,
                unit_id=owner.unit_id, worker=owner.worker or None, method=row.method,
                instruments=list(row.instruments),
                instruments_done=sorted(instruments.get(row.stage_id, set()))))
    return out


_SCHEDULES: OrderedDict[tuple[Any, ...], list[Any]] = OrderedDict()
_SCHEDULES_MAX = 50_000
_SCHEDULES_LOCK = threading.Lock()


def _schedule(prog: Programme, start: dt.date, end: dt.date | None,
              done: list[Completed], day: dt.date) -> list[Any]:
    """:func:`utfall.followup.schedule`, remembered by its inputs (it is pure: the same
    programme version, dates, completions and day give the same rows), so paging through
    a long list does not schedule every enrolment again."""
    key = (prog.id, prog.version, start, end,
           tuple(sorted((c.stage, c.date) for c in done)), day)
    with _SCHEDULES_LOCK:
        rows = _SCHEDULES.get(key)
        if rows is not None:
            _SCHEDULES.move_to_end(key)
            return rows
    rows = schedule(SchedEnrolment(prog, start, end), done, day)
    with _SCHEDULES_LOCK:
        _SCHEDULES[key] = rows
        while len(_SCHEDULES) > _SCHEDULES_MAX:
            _SCHEDULES.popitem(last=False)
    return rows


def _owners(enrolment: Row[Any], prog: Programme, rows: Mapping[str, Row[Any]],
            care: Row[Any] | None, units: Mapping[str, _Unit]) -> dict[str, StageOwner]:
    """:func:`utfall.care.enrolment.stage_owners` from rows already read."""
    unit = units.get(enrolment.unit_id)
    out: dict[str, StageOwner] = {}
    for stage in prog.stages:
        row = rows.get(stage.id)
        if row is not None:
            out[stage.id] = StageOwner(stage.id, row.responsible, row.principal_type,
                                       row.unit_id, row.worker, True)
            continue
        principal, owner_unit = default_owner(
            stage.responsible, unit.principal_type if unit else None, enrolment.unit_id,
            care.municipal_unit_id if care else None)
        worker = care.responsible_worker if care and owner_unit == enrolment.unit_id else None
        out[stage.id] = StageOwner(stage.id, stage.responsible, principal, owner_unit, worker,
                                   False)
    return out


def _completions(enrolment: Row[Any], prog: Programme, rows: Iterable[Row[Any]],
                 siblings: Iterable[Row[Any]]) -> tuple[list[Completed], dict[str, set[str]]]:
    """:func:`utfall.care.scheduling.completions` from rows already read."""
    return completions_from(enrolment, prog, rows, siblings)


def related_persons(conn: Connection, unit_id: str, person_keys: Collection[str],
                    day: dt.date) -> set[str]:
    """Of ``person_keys``, those the unit has a care relation with on ``day`` — the bulk
    form of :func:`utfall.access.relations.has_relation` (three queries)."""
    from utfall.access.relations import FOLLOW_UP_DAYS

    if not person_keys:
        return set()
    keys = sorted(set(person_keys))
    horizon = day - dt.timedelta(days=FOLLOW_UP_DAYS)
    found: set[str] = set()
    for start in range(0, len(keys), 900):  # bound parameters per statement
        chunk = keys[start:start + 900]
        found.update(conn.execute(select(CareRelation.person_key).where(
            CareRelation.person_key.in_(chunk), CareRelation.unit_id == unit_id,
            CareRelation.ended_at.is_(None), CareRelation.valid_from <= day,
            or_(CareRelation.valid_to.is_(None), CareRelation.valid_to >= day)).distinct()
        ).scalars())
        rest = [k for k in chunk if k not in found]
        if rest:
            found.update(conn.execute(select(Enrolment.person_key).where(
                Enrolment.person_key.in_(rest), Enrolment.unit_id == unit_id,
                Enrolment.start_date <= day,
                or_(Enrolment.end_date.is_(None), Enrolment.end_date >= horizon)).distinct()
            ).scalars())
        rest = [k for k in chunk if k not in found]
        if rest:
            found.update(conn.execute(select(Contact.person_key).where(
                Contact.person_key.in_(rest), Contact.unit_id == unit_id, Contact.date <= day,
                func.coalesce(Contact.end_date, Contact.date) >= horizon).distinct()
            ).scalars())
    return found


# ------------------------------------------------------------------ filter, sort, page


def _check_filter(flt: WorklistFilter) -> None:
    issues = []
    if flt.status not in STATUS_FILTERS:
        issues.append(Issue("status", "unknown_status", "okänd status", "unknown status"))
    if flt.sort.removeprefix("-") not in SORTS:
        issues.append(Issue("sort", "unknown_sort", "okänd sortering", "unknown sort order"))
    if flt.programme is not None:
        try:
            get_programme(flt.programme)
        except UnknownProgrammeError:
            issues.append(Issue("programme", "unknown_programme", "okänt program",
                                "unknown programme"))
    if issues:
        raise CareError("invalid_filter", "ogiltigt filter", "invalid filter", issues)


def _matches(row: Row_, flt: WorklistFilter, user: str, statuses: frozenset[str]) -> bool:
    if row.status not in statuses:
        return False
    if flt.programme is not None and row.programme != flt.programme:
        return False
    if flt.stage is not None and row.stage != flt.stage:
        return False
    if flt.mine and row.worker != user:
        return False
    if flt.worker is not None and (row.worker or NO_WORKER) != flt.worker:
        return False
    return flt.person_key is None or row.person_key == flt.person_key


def _sort(rows: list[Row_], sort: str, locale: str) -> None:
    key = sort.removeprefix("-")
    far = dt.date.max

    def title(text: LocalText) -> str:
        return str(getattr(text, locale, None) or text.sv).casefold()

    def by(r: Row_) -> tuple[Any, ...]:
        due = r.due_date or far
        tail = (due, r.person_key, r.stage_id)
        if key == "status":
            return (ORDER.get(r.status, 9), *tail)
        if key == "programme":
            return (title(r.programme_title), *tail)
        if key == "stage":
            return (title(r.title), r.stage_id, due, r.person_key)
        if key == "worker":
            return (r.worker is None, (r.worker or "").casefold(), *tail)
        if key == "person":
            return (r.person_key, due, r.stage_id)
        return tail

    rows.sort(key=by, reverse=sort.startswith("-"))


def _visible(conn: Connection, actor: Actor, unit_id: str | None, day: dt.date
             ) -> list[Row_]:
    """The unit's list limited to persons the actor may see (unit scope checked)."""
    from utfall.access.policy import require_unit_scope
    from utfall.care._common import require_unit

    require_unit_scope(conn, actor, unit_id)
    if unit_id is not None:
        require_unit(conn, unit_id)
    rows = collect(conn, unit_id, day)
    if actor.role == "system":
        return rows
    allowed = related_persons(conn, str(unit_id), {r.person_key for r in rows}, day)
    return [r for r in rows if r.person_key in allowed]


def unit_rows(conn: Connection, actor: Actor, unit_id: str | None, day: dt.date
              ) -> list[Row_]:
    """Every stage on the unit's list the actor may see (unit scope and care relations
    checked; not logged: for counts that show no person, e.g. dashboard coverage)."""
    return _visible(conn, actor, unit_id, day)


def _options(rows: list[Row_], conn: Connection, unit_id: str | None
             ) -> tuple[list[tuple[str, LocalText]], list[tuple[str, list[LocalText]]],
                        list[tuple[str, str]]]:
    programmes: dict[str, LocalText] = {}
    stages: dict[str, list[LocalText]] = {}
    for r in rows:
        programmes.setdefault(r.programme, r.programme_title)
        titles = stages.setdefault(r.stage, [])
        if all(t.sv != r.title.sv for t in titles):
            titles.append(r.title)
    workers = _members(conn, unit_id)
    known = {u for u, _ in workers}
    extra = sorted({r.worker for r in rows if r.worker and r.worker not in known})
    return (sorted(programmes.items(), key=lambda kv: kv[1].sv),
            sorted(stages.items(), key=lambda kv: kv[1][0].sv),
            workers + [(w, w) for w in extra])


def _members(conn: Connection, unit_id: str | None) -> list[tuple[str, str]]:
    """Active care staff of the unit: ``(user name, display name)``."""
    if unit_id is None:
        return []
    rows = conn.execute(
        select(UserAccount.username, UserAccount.display_name)
        .join(UserUnit, UserUnit.user_id == UserAccount.id)
        .where(UserUnit.unit_id == unit_id, UserAccount.active.is_(True),
               UserAccount.role.in_(("clinician", "social_worker", "unit_manager")))
        .order_by(UserAccount.display_name))
    return [(r[0], r[1] or r[0]) for r in rows]


def _people(conn: Connection, keys: Collection[str]) -> dict[str, Row[Any]]:
    if not keys:
        return {}
    p = Person.__table__
    return {r.person_key: r for r in conn.execute(select(p).where(p.c.person_key.in_(keys)))}


def _items(conn: Connection, rows: list[Row_], day: dt.date,
           names: Mapping[str, str]) -> list[WorklistItem]:
    """Rows made readable: masked identity, sex, age, name if stored, worker's name."""
    from utfall.access.pseudonym import IdentityVault
    from utfall.care._common import age_on
    from utfall.config import get_settings

    people = _people(conn, {r.person_key for r in rows})
    units = _units(conn) if rows else {}
    vault = IdentityVault(get_settings().effective_encryption_key)
    masked: dict[str, str] = {}
    out = []
    for r in rows:
        person = people.get(r.person_key)
        if r.person_key not in masked:
            masked[r.person_key] = (f"{vault.decrypt(person.pnr_encrypted)[:8]}-****"
                                    if person is not None else "")
        unit = units.get(r.unit_id or "")
        out.append(WorklistItem(
            row=r, person=masked[r.person_key],
            sex=getattr(person, "sex", None),
            age=age_on(person.birth_date, day) if person is not None else None,
            name=getattr(person, "name", None) if person is not None else None,
            unit_name=unit.name if unit else None,
            worker_name=names.get(r.worker or "", r.worker) if r.worker else None))
    _add_flags(conn, out)
    return out


def _add_flags(conn: Connection, items: list[WorklistItem]) -> None:
    """Open clinical flags per person, when the flags service is installed."""
    try:
        from utfall.care.flags import open_flag_counts
    except ImportError:
        return
    if not items:
        return
    try:
        with conn.begin_nested():
            counts = open_flag_counts(conn, sorted({i.row.person_key for i in items}))
    except Exception:  # flags not migrated yet: the list stays usable without the column
        log.warning("open flags could not be read for the work list", exc_info=False)
        return
    for item in items:
        item.open_flags = int(counts.get(item.row.person_key, 0))


def _log(conn: Connection, actor: Actor, action: str, rows: Iterable[Row_],
         detail: dict[str, Any]) -> None:
    """One audit event per person shown (or exported)."""
    per: dict[str, int] = {}
    for r in rows:
        per[r.person_key] = per.get(r.person_key, 0) + 1
    for person_key, n in per.items():
        log_event(conn, actor, action, person_key, {**detail, "stages": n})


def worklist_page(conn: Connection, actor: Actor, flt: WorklistFilter | None = None, *,
                  page: int = 1, page_size: int = 50, unit_id: str | None = None,
                  today: dt.date | None = None, locale: str = "sv") -> WorklistPage:
    """One page of the unit's work list (default: the actor's unit).

    Unit scope is checked; persons without a care relation to the unit are left out;
    every person on the page is logged as read (``what: worklist``). ``counts`` has
    the number of stages per status before the status filter (for the filter labels).
    """
    from utfall.followup import local_today

    flt = flt or WorklistFilter()
    _check_filter(flt)
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise CareError("invalid_page", "ogiltig sida", "invalid page", [
            Issue("page" if page < 1 else "page_size", "invalid_page",
                  f"sidan ska vara 1 eller mer, sidstorleken 1–{MAX_PAGE_SIZE}",
                  f"page must be 1 or more, page size 1–{MAX_PAGE_SIZE}")])
    day = today or local_today()
    unit_id = unit_id if unit_id is not None else actor.unit_id
    rows = _visible(conn, actor, unit_id, day)
    programmes, stages, workers = _options(rows, conn, unit_id)
    statuses = flt.statuses()
    counts: dict[str, int] = {}
    everything = replace(flt, status="all")
    chosen = []
    for r in rows:
        if _matches(r, everything, actor.user, everything.statuses()):
            counts[r.status] = counts.get(r.status, 0) + 1
            if r.status in statuses:
                chosen.append(r)
    _sort(chosen, flt.sort, locale)
    shown = chosen[(page - 1) * page_size: page * page_size]
    _log(conn, actor, "read", shown, {"what": "worklist", "unit_id": unit_id})
    items = _items(conn, shown, day, dict(workers))
    return WorklistPage(items, len(chosen), page, page_size, counts, programmes, stages,
                        workers)


def export_rows(conn: Connection, actor: Actor, flt: WorklistFilter | None = None, *,
                unit_id: str | None = None, today: dt.date | None = None,
                locale: str = "sv") -> list[WorklistItem]:
    """Every row of the filtered list (at most :data:`MAX_EXPORT`), for a CSV file.

    Each person exported is logged with action ``export``. Only masked identity
    numbers leave: a file is outside the audit trail once saved.
    """
    from utfall.followup import local_today

    flt = flt or WorklistFilter()
    _check_filter(flt)
    day = today or local_today()
    unit_id = unit_id if unit_id is not None else actor.unit_id
    rows = _visible(conn, actor, unit_id, day)
    statuses = flt.statuses()
    chosen = [r for r in rows if _matches(r, flt, actor.user, statuses)]
    _sort(chosen, flt.sort, locale)
    chosen = chosen[:MAX_EXPORT]
    _log(conn, actor, "export", chosen, {"what": "worklist_export", "unit_id": unit_id,
                                          "rows": len(chosen)})
    return _items(conn, chosen, day, dict(_members(conn, unit_id)))


def assign_worker(conn: Connection, actor: Actor, enrolment_id: str, stage: str,
                  worker: str | None) -> StageOwner:
    """Make ``worker`` (a staff member of the actor's unit; None: nobody) responsible
    for a stage the actor's unit owns. Checked and audited by
    :func:`utfall.care.enrolment.assign_stage`."""
    from utfall.access.policy import AccessDenied
    from utfall.care._common import get_enrolment
    from utfall.care.enrolment import assign_stage, programme_of, stage_owners
    from utfall.care.scheduling import base_stage

    enrolment = get_enrolment(conn, enrolment_id)
    prog = programme_of(enrolment.programme)
    stage = base_stage(stage, prog)
    owners = stage_owners(conn, enrolment, prog)
    if stage not in owners:
        raise CareError("unknown_stage", "okänt uppföljningssteg", "unknown follow-up stage",
                        [Issue("stage", "unknown_stage", "okänt uppföljningssteg",
                               "unknown follow-up stage")])
    if actor.role != "system" and owners[stage].unit_id != actor.unit_id:
        raise AccessDenied("unit", "Steget hör till en annan enhets arbetslista.",
                           "The stage is on another unit's work list.")
    worker = (worker or "").strip() or None
    if worker is not None and actor.role != "system" and worker not in dict(
            _members(conn, actor.unit_id)):
        raise CareError("unknown_worker", "okänd medarbetare", "unknown staff member",
                        [Issue("worker", "unknown_worker",
                               "Välj en medarbetare vid enheten.",
                               "Choose a staff member of the unit.")])
    return assign_stage(conn, actor, enrolment_id, stage, worker=worker or "")
