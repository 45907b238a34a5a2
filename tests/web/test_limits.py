"""Request body limits (413 before parsing) and size limits in the services (issue 15,
part 4)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from sqlalchemy import func, select

from tests.web.e2e_support import live_server
from tests.web.factory import World
from utfall.care.limits import MAX_FACTS, MAX_TEXT
from utfall.store.models import Assessment, Enrolment
from utfall.web.limits import ANONYMOUS_LIMIT, DEFAULT_LIMIT

ANSWERS = {"item_1": 1, "item_2": 1, "item_3": 0}


def _count(world: World, model) -> int:
    with world.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_anonymous_big_bodies_are_refused(anon) -> None:
    big = json.dumps({"username": "x" * (ANONYMOUS_LIMIT + 10), "password": "y"})
    r = anon.post("/api/session", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["code"] == "too_large" and r.json()["sv"]
    r = anon.post("/login", data={"username": "u" * 100_000, "password": "p"})
    assert r.status_code == 413 and "text/html" in r.headers["content-type"]
    assert "större än 16 KiB och togs inte emot" in r.text
    # a chunked body without a length is cut off at the limit as well
    chunks = (b"x" * 16_384 for _ in range(8))
    r = anon.post("/api/session", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413
    # a forged bearer header gets the route limit, then 401: no parsing without a session
    r = anon.post("/api/session", content=big, headers={"content-type": "application/json",
                                                         "authorization": "Bearer forged"})
    assert r.status_code == 413  # the login route's own limit is smaller still
    r = anon.post("/api/persons/search", json={"identity_number": "1" * 70_000},
                  headers={"authorization": "Bearer forged"})
    assert r.status_code == 401


def test_authenticated_route_limits_and_service_limits(login, world: World) -> None:
    clin = login("clin")
    key = world.keys["region"]
    before = _count(world, Assessment), _count(world, Enrolment)

    huge = {"instrument": "audit-c", "answers": {**ANSWERS, "note": "x" * DEFAULT_LIMIT}}
    assert clin.post(f"/api/persons/{key}/assessments", json=huge).status_code == 413
    long_text = {"instrument": "audit-c", "answers": {**ANSWERS, "note": "x" * (MAX_TEXT + 1)}}
    r = clin.post(f"/api/persons/{key}/assessments", json=long_text)
    assert r.status_code == 422 and r.json()["code"] == "too_large"
    assert r.json()["issues"][0]["where"] == "note"

    enrol = {"programme": "laro", "start_date": "2026-11-01"}
    r = clin.post(f"/api/persons/{key}/enrolments",
                  json={**enrol, "facts": {"blob": "x" * 20_000_000}})
    assert r.status_code == 413
    r = clin.post(f"/api/persons/{key}/enrolments",
                  json={**enrol, "facts": {f"k{i}": i for i in range(MAX_FACTS + 1)}})
    assert r.status_code == 422 and r.json()["code"] == "too_large"
    r = clin.post(f"/api/persons/{key}/enrolments",
                  json={**enrol, "facts": {"comment": "x" * (MAX_TEXT + 1)}})
    assert r.status_code == 422 and r.json()["issues"][0]["where"] == "facts.comment"
    r = clin.post(f"/api/persons/{key}/enrolments",
                  json={**enrol, "facts": {"nested": {"a": [1, 2]}}})
    assert r.status_code == 422 and r.json()["code"] == "too_large"
    assert (_count(world, Assessment), _count(world, Enrolment)) == before  # nothing stored

    ok = clin.post(f"/api/persons/{key}/assessments",
                   json={"instrument": "audit-c", "answers": ANSWERS})
    assert ok.status_code == 201


def test_declared_length_refused_before_the_body_is_read(tmp_path: Path) -> None:
    """A real server answers 413 to a 50 MB Content-Length without waiting for the body."""
    with live_server(tmp_path) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /api/session HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n")
            started = time.monotonic()
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        assert time.monotonic() - started < 10  # answered, not waiting for 50 MB
