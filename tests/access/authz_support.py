"""Shared pieces of the authorisation suites: extra persons and units, route walking,
valid synthetic identity numbers, logged-in cookie clients."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import insert

from tests.web.conftest import page_login
from tests.web.factory import SYSTEM, World

UNKNOWN = "ab" * 32  # a well-formed person key of nobody


def luhn_number(birth: str, serial: int) -> str:
    """A valid 12-digit synthetic identity number ``YYYYMMDD`` + serial + check digit."""
    body = f"{birth[2:]}{serial:03d}"
    total = 0
    for i, ch in enumerate(body):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return f"{birth}{serial:03d}{(10 - total % 10) % 10}"


def add_persons(world: World) -> dict[str, str]:
    """A person known only at ``reg-laro`` (same region as reg-ber) and one known only at
    a second Malmö unit ``soc-malmo2``; returns their keys as ``laro`` and ``malmo2``."""
    from utfall.care import register_person
    from utfall.store.models import Contact, Unit

    keys = {}
    with world.engine.begin() as conn:
        conn.execute(insert(Unit).values(unit_id="soc-malmo2", name="Socialtjänsten Malmö Öster",
                                         organisation_id=world.org["Malmö stad"],
                                         care_level="social_services",
                                         municipality_code="1280"))
        for label, number, unit in (("laro", luhn_number("19640327", 381), "reg-laro"),
                                    ("malmo2", luhn_number("19700101", 123), "soc-malmo2")):
            keys[label] = register_person(conn, SYSTEM, number)
            conn.execute(insert(Contact).values(contact_id=f"c-{label}", person_key=keys[label],
                                                unit_id=unit, date=dt.date.today(),
                                                contact_type="visit", main_dx="F11.2",
                                                dx_group="F11"))
    return keys


def walk_routes(app) -> Iterator[tuple[str, str]]:
    """``(method, path)`` of every route of the app, included routers flattened."""

    def walk(routes, prefix: str = "") -> Iterator[tuple[str, str]]:
        for r in routes:
            if isinstance(r, APIRoute):
                for m in sorted(r.methods):
                    yield m, prefix + r.path
            elif hasattr(r, "original_router"):
                yield from walk(r.original_router.routes,
                                prefix + (r.include_context.prefix or ""))
            elif hasattr(r, "routes") and getattr(r, "path", None) is None:
                yield from walk(r.routes, prefix)

    yield from walk(app.routes)


def cookie_client(app, user: str | None) -> TestClient:
    """A client logged in through the login form (CSRF header set), or anonymous."""
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()
    if user is not None:
        client.headers["X-CSRF-Token"] = page_login(client, user)
    return client
