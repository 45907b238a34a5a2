"""The worklist service: the bulk collection agrees with the per-enrolment ``due_list``,
the bulk relation check with ``has_relation``, the number of queries does not grow
with the list, filters/sort/paging against independent counts, export and assignment
audited, and the stage of an assessment is a scheduled stage or "unscheduled"."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import Engine, event, select

from tests.care.worklist_reference import reference_due_list
from tests.web.factory import build_world
from tests.web.worklist_seed import CLIN, SYSTEM, seed_enrolments, seed_laro
from utfall.access.audit import Actor
from utfall.access.relations import has_relation
from utfall.care import CareError, due_list, record_assessment  # noqa: F401
from utfall.care.worklist import (
    OPEN,
    WorklistFilter,
    assign_worker,
    collect,
    export_rows,
    related_persons,
    worklist_page,
)
from utfall.followup import local_today
from utfall.store.models import Assessment, AuditEvent


@pytest.fixture
def world_engine(settings, sqlite_url: str) -> Engine:
    return build_world(sqlite_url).engine


def _key(item) -> tuple[str, str]:
    return (item.enrolment_id, item.stage_id)


def test_bulk_collection_matches_due_list_and_relations(world_engine: Engine) -> None:
    seed_enrolments(world_engine, 18)
    seed_laro(world_engine, 12)
    day = local_today()
    with world_engine.connect() as conn:
        for unit in ("reg-ber", "reg-laro", "soc-malmo"):
            bulk = collect(conn, unit, day)
            old = reference_due_list(conn, SYSTEM, unit_id=unit, today=day)
            assert sorted((_key(r), r.status, r.worker) for r in bulk) == sorted(
                (_key(r), r.status, r.worker) for r in old), unit
            persons = {r.person_key for r in bulk}
            assert related_persons(conn, unit, persons, day) == {
                k for k in persons if has_relation(conn, k, unit, day)}
        assert len(collect(conn, "reg-ber", day)) > 18  # several stages per enrolment


def test_queries_do_not_grow_with_the_list(world_engine: Engine) -> None:
    statements: list[str] = []

    def count(*_args) -> None:
        statements.append("x")

    def queries() -> int:
        statements.clear()
        with world_engine.connect() as conn:
            worklist_page(conn, CLIN, WorklistFilter(status="all"), page_size=5)
        return len(statements)

    seed_enrolments(world_engine, 6)
    event.listen(world_engine, "before_cursor_execute", count)
    try:
        small = queries()
        seed_enrolments(world_engine, 30)
        assert queries() <= small + 2  # audit rows per shown person are capped by the page
    finally:
        event.remove(world_engine, "before_cursor_execute", count)


def test_filters_sort_paging_against_independent_counts(world_engine: Engine) -> None:
    keys = seed_enrolments(world_engine, 24)
    day = local_today()
    with world_engine.connect() as conn:
        truth = [r for r in reference_due_list(conn, SYSTEM, unit_id="reg-ber", today=day)
                 if r.person_key in set(keys) or has_relation(conn, r.person_key, "reg-ber")]
    statuses = Counter(r.status for r in truth)
    with world_engine.begin() as conn:
        first = worklist_page(conn, CLIN, WorklistFilter(), page_size=10)
        assert first.total == sum(v for k, v in statuses.items() if k in OPEN)
        seen = []
        for page in range(1, first.pages + 1):
            result = worklist_page(conn, CLIN, WorklistFilter(sort="due"), page=page,
                                   page_size=10)
            assert len(result.items) == min(10, first.total - 10 * (page - 1))
            seen += [i.row for i in result.items]
        assert len({(r.enrolment_id, r.stage_id) for r in seen}) == first.total
        dues = [r.due_date or dt.date.max for r in seen]
        assert dues == sorted(dues)
        back = worklist_page(conn, CLIN, WorklistFilter(sort="-due"), page_size=200)
        assert [i.row.due_date or dt.date.max for i in back.items] == sorted(dues, reverse=True)
        for status in ("overdue", "due", "missed", "upcoming"):
            only = worklist_page(conn, CLIN, WorklistFilter(status=status), page_size=200)
            assert only.total == statuses.get(status, 0)
            assert {i.row.status for i in only.items} <= {status}
        mine = worklist_page(conn, CLIN, WorklistFilter(mine=True, status="all"), page_size=200)
        assert mine.total == sum(1 for r in truth if r.worker == "clin") > 0
        nobody = worklist_page(conn, CLIN, WorklistFilter(worker="-", status="all"),
                               page_size=200)
        assert nobody.total == sum(1 for r in truth if not r.worker) > 0
        one = worklist_page(conn, CLIN, WorklistFilter(person_key=keys[5], status="all"))
        assert one.total == sum(1 for r in truth if r.person_key == keys[5]) > 0
        stage = worklist_page(conn, CLIN, WorklistFilter(stage="intake", status="all"))
        assert stage.total == sum(1 for r in truth if r.stage == "intake")
        by_status = worklist_page(conn, CLIN, WorklistFilter(sort="status"), page_size=200)
        order = [i.row.status for i in by_status.items]
        rank = {"overdue": 0, "due": 1, "upcoming": 2, "missed": 3}
        assert order == sorted(order, key=rank.__getitem__)
        item = first.items[0]
        assert item.person.endswith("-****") and item.age is not None and item.sex in "MF"
        with pytest.raises(CareError) as bad:
            worklist_page(conn, CLIN, WorklistFilter(programme="nope"))
        assert bad.value.issues[0].where == "programme"
        with pytest.raises(CareError):
            worklist_page(conn, CLIN, WorklistFilter(), page_size=500)


def test_reads_exports_and_assignments_are_audited(world_engine: Engine) -> None:
    keys = seed_enrolments(world_engine, 8)
    with world_engine.begin() as conn:
        before = conn.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc())).scalar()
        page = worklist_page(conn, CLIN, WorklistFilter(status="all"), page_size=3)
        exported = export_rows(conn, CLIN, WorklistFilter(status="all"))
        events = conn.execute(select(AuditEvent.action, AuditEvent.person_key, AuditEvent.detail)
                              .where(AuditEvent.id > before)).all()
    reads = {e.person_key for e in events if e.action == "read"}
    assert reads == {i.row.person_key for i in page.items}
    assert {e.person_key for e in events if e.action == "export"} == {
        i.row.person_key for i in exported}
    assert len(exported) == page.total
    target = next(i.row for i in exported if i.row.person_key == keys[1])
    with world_engine.begin() as conn:
        owner = assign_worker(conn, CLIN, target.enrolment_id, target.stage_id, "clin")
        assert owner.worker == "clin"
        changed = conn.execute(select(AuditEvent).where(
            AuditEvent.action == "change", AuditEvent.person_key == keys[1])).all()
        assert any(e.detail.get("what") == "stage_owner" for e in changed)
        with pytest.raises(CareError) as unknown:
            assign_worker(conn, CLIN, target.enrolment_id, target.stage_id, "nobody.here")
        assert unknown.value.issues[0].where == "worker"
    from utfall.access.policy import AccessDenied

    with world_engine.begin() as conn, pytest.raises(AccessDenied):
        assign_worker(conn, Actor("soc", "social_worker", "soc-malmo"), target.enrolment_id,
                      target.stage_id, "soc")


def test_stage_is_scheduled_or_unscheduled(world_engine: Engine) -> None:
    keys = seed_enrolments(world_engine, 2)
    answers = {"item_1": 1, "item_2": 0, "item_3": 0}
    today = dt.date.today()
    with world_engine.begin() as conn:
        with pytest.raises(CareError) as bad:
            record_assessment(conn, CLIN, keys[0], "audit-c", answers, stage="6m",
                              unit_id="reg-ber", on_date=today)
        assert bad.value.issues[0].where == "stage"
        free = record_assessment(conn, CLIN, keys[0], "audit-c", answers, stage="unscheduled",
                                 unit_id="reg-ber", on_date=today)
        linked = record_assessment(conn, CLIN, keys[0], "audit-c", answers, stage="intake",
                                   unit_id="reg-ber", on_date=today)
        stages = dict(conn.execute(select(Assessment.row_key, Assessment.stage).where(
            Assessment.row_key.in_([free, linked]))).all())
    assert stages == {free: None, linked: "intake"}
    from utfall.care.stage_choice import stage_choices

    with world_engine.connect() as conn:
        choices = stage_choices(conn, CLIN, keys[1])
    assert choices and all("|" in c.value for c in choices)
    assert {c.stage for c in choices} >= {"intake"}
