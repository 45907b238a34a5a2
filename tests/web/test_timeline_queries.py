"""The person page and the timeline do a small, fixed number of SQL statements: the
count does not grow with the number of assessments, contacts or units."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event, insert

from tests.web.factory import SYSTEM
from utfall.access.audit import Actor
from utfall.care import record_assessment, timeline
from utfall.store.models import Contact, Medication

CLINICIAN = Actor("clin", "clinician", "reg-ber")


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    """Every statement executed on ``engine`` while the block runs."""
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def _grow(engine: Engine, key: str, n: int, start: int) -> None:
    """``n`` more assessments (two instruments), contacts at two units, medications."""
    with engine.begin() as conn:
        for i in range(start, start + n):
            day = dt.date(2025, 1, 1) + dt.timedelta(days=7 * i)
            record_assessment(conn, SYSTEM, key, "audit-c",
                              {"item_1": i % 4, "item_2": 1, "item_3": 0},
                              unit_id="reg-ber", on_date=day, source="capture")
            record_assessment(conn, SYSTEM, key, "life-situation",
                              {f"item_{k}": 1 for k in (1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12,
                                                         13, 17, 18, 19)}
                              | {"item_8": False, "item_14": 0, "item_15": False,
                                 "item_16": False}, unit_id="reg-ber", on_date=day,
                              source="capture")
            conn.execute(insert(Contact).values(
                contact_id=f"q{i}", person_key=key, unit_id="reg-ber" if i % 2 else "reg-laro",
                date=day, contact_type="outpatient", main_dx="F102", dx_group="F10"))
            conn.execute(insert(Medication).values(
                row_key=f"m{i}", person_key=key, unit_id="reg-laro", atc="N07BC02",
                start_date=day, end_date=None))


def _count_timeline(engine: Engine, key: str) -> tuple[int, int]:
    with engine.connect() as conn, counted(engine) as seen:
        tl = timeline(conn, CLINICIAN, key)
        conn.rollback()
    return len(seen), len(tl.assessments)


def test_timeline_statements_do_not_grow_with_the_record(world) -> None:
    key = world.keys["region"]
    _grow(world.engine, key, 2, 0)
    few, shown_few = _count_timeline(world.engine, key)
    _grow(world.engine, key, 25, 2)
    many, shown_many = _count_timeline(world.engine, key)
    assert shown_many >= shown_few + 50  # the second read really sees more
    assert many == few, f"{few} statements with {shown_few} assessments, {many} with " \
                        f"{shown_many}"
    assert many <= 25


def test_person_page_statements_do_not_grow(world, app) -> None:
    from fastapi.testclient import TestClient

    from tests.web.conftest import page_login

    key = world.keys["region"]
    _grow(world.engine, key, 2, 0)
    with TestClient(app) as client:
        page_login(client, "clin")
        client.get(f"/persons/{key}")  # warm the per-process caches
        with counted(world.engine) as seen:
            assert client.get(f"/persons/{key}").status_code == 200
        few = len(seen)
        _grow(world.engine, key, 25, 2)
        with counted(world.engine) as seen:
            assert client.get(f"/persons/{key}").status_code == 200
        many = len(seen)
    assert many == few, f"person page: {few} statements, then {many}"
    assert many <= 60
