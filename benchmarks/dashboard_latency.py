"""Server time of the dashboard and the explorer on a demo store (``utfall demo``).

Usage: ``UTFALL_DATA_DIR=… UTFALL_DATABASE_URL=… python benchmarks/dashboard_latency.py``
(a store with a stored indicator run). Creates benchmark users if missing, starts the
app in process (no background runs), and times the first and later loads of
``/dashboard`` for every unit and of ``/analytics`` (explorer, by unit) and
``/analytics/funnel``. Prints milliseconds (first, median and max of later loads).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("UTFALL_ANALYTICS_RUNS_POLL_SECONDS", "0")
PASSWORD = "benchmark password 123"


def main() -> int:
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from utfall.access.accounts import create_user, set_password
    from utfall.config import get_settings
    from utfall.store.db import get_engine
    from utfall.store.models import Unit
    from utfall.store.models_access import UserAccount
    from utfall.web.app import create_app

    engine = get_engine(get_settings().effective_database_url)
    with engine.begin() as conn:
        units = list(conn.execute(select(Unit.unit_id).order_by(Unit.unit_id)).scalars())
        for unit in units:
            user = f"bench-{unit}"
            if conn.execute(select(UserAccount.id).where(UserAccount.username == user)).first():
                set_password(conn, user, PASSWORD)
            else:
                create_user(conn, user, "unit_manager", [unit], password=PASSWORD)
    began = time.perf_counter()
    app = create_app(get_settings())
    print(f"app created in {time.perf_counter() - began:.1f} s")
    time.sleep(float(os.environ.get("BENCH_WARM_SECONDS", "20")))  # start-up warming
    results: dict[str, list[float]] = {}
    for unit in units:
        with TestClient(app) as client:
            token = client.get("/login") and client.cookies.get("utfall_login_csrf")
            client.post("/login", data={"username": f"bench-{unit}", "password": PASSWORD,
                                        "csrf_token": token, "next": "/"})
            for name, path in (
                    ("dashboard", "/dashboard"),
                    ("explorer", f"/analytics?indicator=kva_au119&breakdown=unit_id&unit={unit}"),
                    ("explorer-all-years", "/analytics?indicator=kva_au119&breakdown=unit_id"
                                           "&year=2019&year=2020&year=2021&year=2022"),
                    ("funnel", "/analytics/funnel?indicator=kva_au119&by=unit_id")):
                for _ in range(4):
                    t = time.perf_counter()
                    r = client.get(path)
                    ms = (time.perf_counter() - t) * 1000
                    assert r.status_code == 200, (path, r.status_code)
                    results.setdefault(f"{name}|{unit}", []).append(ms)
    print(f"{'view':<20} {'unit':<14} {'first':>7} {'median':>7} {'max':>7}  (ms)")
    worst = 0.0
    for key, times in results.items():
        name, unit = key.split("|")
        later = times[1:]
        worst = max(worst, *times)
        print(f"{name:<20} {unit:<14} {times[0]:7.0f} {statistics.median(later):7.0f} "
              f"{max(later):7.0f}")
    print(f"worst single load: {worst:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
