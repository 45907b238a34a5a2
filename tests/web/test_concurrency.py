"""Concurrent writers on the embedded SQLite store lose nothing (issue 15, part 1).

Threads post assessments through the API of one app (one process, the in-process
writer queue and ``BEGIN IMMEDIATE``), and separate processes write through the care
service with engines of their own (only SQLite's locking between them): every write
succeeds, the counts match and the audit chain verifies.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections import Counter
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from tests.web.conftest import api_login
from tests.web.factory import World
from utfall.access.audit import verify_chain
from utfall.store.models import Assessment, AuditEvent

CLIENTS = 10
POSTS = 12
ANSWERS = {"item_1": 1, "item_2": 1, "item_3": 0}


def _counts(world: World) -> tuple[int, int]:
    with world.engine.connect() as conn:
        assessments = conn.execute(select(func.count()).select_from(Assessment)).scalar_one()
        created = conn.execute(text(
            "SELECT count(*) FROM audit_event WHERE action = 'create' "
            "AND detail LIKE '%\"what\": \"assessment\"%'")).scalar_one()
    return assessments, created


def _chain_problems(world: World) -> list[Any]:
    with world.engine.connect() as conn:
        return verify_chain(conn.execute(select(AuditEvent).order_by(AuditEvent.id)))


def test_concurrent_api_writes_lose_nothing(app, world: World) -> None:
    key = world.keys["region"]
    before, created_before = _counts(world)
    statuses: Counter[int] = Counter()
    ids: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)
    clients = []
    for _ in range(CLIENTS):  # log in one after the other (password hashing is limited)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        client.headers.update(api_login(client, "clin"))
        clients.append(client)

    def work(client: TestClient) -> None:
        start.wait()
        for _ in range(POSTS):
            r = client.post(f"/api/persons/{key}/assessments",
                            json={"instrument": "audit-c", "answers": ANSWERS})
            with lock:
                statuses[r.status_code] += 1
                if r.status_code == 201:
                    ids.append(r.json()["assessment_id"])

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for client in clients:
        client.__exit__(None, None, None)

    assert statuses == Counter({201: CLIENTS * POSTS})
    assert len(set(ids)) == CLIENTS * POSTS
    after, created_after = _counts(world)
    assert after - before == CLIENTS * POSTS
    assert created_after - created_before == CLIENTS * POSTS
    assert _chain_problems(world) == []


def _writer(url: str, person_key: str, n: int, out: Any) -> None:
    """One process: its own engine, ``n`` assessments through the care service."""
    import datetime as dt

    from utfall.access.audit import Actor
    from utfall.care import record_assessment
    from utfall.config import get_settings
    from utfall.store.db import _engine_for, get_engine

    get_settings.cache_clear()
    _engine_for.cache_clear()  # a forked child opens connections of its own
    engine = get_engine(url)
    ok = failed = 0
    for _ in range(n):
        try:
            with engine.begin() as conn:
                record_assessment(conn, Actor("proc", "system"), person_key, "audit-c",
                                  ANSWERS, unit_id="reg-ber", on_date=dt.date(2026, 2, 1),
                                  source="capture")
            ok += 1
        except Exception as exc:  # counted, reported by the test
            failed += 1
            out.put(("error", repr(exc)[:300]))
    out.put(("done", ok, failed))


def test_concurrent_processes_lose_nothing(world: World, sqlite_url: str) -> None:
    processes, per_process = 4, 25
    before, created_before = _counts(world)
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(sqlite_url, world.keys["both"], per_process, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    results, errors = [], []
    while len(results) < processes:
        item = out.get(timeout=300)
        (results if item[0] == "done" else errors).append(item)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    assert errors == []
    assert sum(r[1] for r in results) == processes * per_process
    after, created_after = _counts(world)
    assert after - before == processes * per_process
    assert created_after - created_before == processes * per_process
    assert _chain_problems(world) == []
