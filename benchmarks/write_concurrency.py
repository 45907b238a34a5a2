"""Concurrent writers: clients submitting assessments at once, on SQLite and PostgreSQL.

Set-up per store: a synthetic region (``--persons``) imported into a fresh store, the demo
accounts (the clinician's imported contacts are its care relations), one session per
client (created in the store, as a login would), ``uvicorn`` serving the app on a free
port. Load: ``--clients`` concurrent clients (httpx, async, one connection and one
session each) post ``POST /api/persons/{key}/assessments`` back to back for
``--seconds``; each request is a real audited write (assessment + care row + a
hash-chained audit row, in one transaction, plus the session check). A 3-second
warm-up with the same clients precedes the measurement.

Reported per store: requests, failed writes (anything but 201, or no answer within
60 s), throughput, p50/p90/p99/max latency; afterwards the stored assessments are
counted (must equal the 201s) and the audit chain is verified.
Results go to ``benchmarks/results/write_concurrency.json``.

    .venv/bin/python benchmarks/write_concurrency.py [--clients 50 --seconds 30]
        [--stores sqlite,postgresql] [--persons 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DB_NAME = "utfall_bench_writes"
BODY = {"instrument": "audit-c", "answers": {"item_1": 2, "item_2": 1, "item_3": 1}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store_url(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"


def _prepare(kind: str, workdir: Path, persons: int, clients: int) -> dict:
    """Store, import, accounts and one session per client."""
    from cryptography.fernet import Fernet

    url = _store_url(kind, workdir)
    env = {"UTFALL_DATA_DIR": str(workdir / "data"), "UTFALL_DATABASE_URL": url,
           "UTFALL_SECRET_KEY": "bench-" + "s" * 40,
           "UTFALL_ENCRYPTION_KEY": Fernet.generate_key().decode(),
           "UTFALL_AUDIT_CHECKPOINT_MINUTES": "0"}
    os.environ.update(env)
    from sqlalchemy import select

    from utfall.access.sessions import create_session
    from utfall.config import get_settings
    from utfall.interop.extract_load import import_extract
    from utfall.store.db import _engine_for, get_engine
    from utfall.store.models import Contact
    from utfall.store.models_access import UserAccount
    from utfall.synth import generate
    from utfall.web.demo import create_demo_accounts

    get_settings.cache_clear()
    _engine_for.cache_clear()
    folder = workdir / "extract"
    if not folder.exists():
        generate(folder, persons, 11, "csv")
    engine = get_engine(url)
    import_extract(folder, engine)
    accounts = create_demo_accounts(engine)
    user, _password, _role, unit = next(a for a in accounts if a[2] == "clinician")
    with engine.begin() as conn:
        keys = conn.execute(
            select(Contact.person_key).where(Contact.unit_id == unit)
            .group_by(Contact.person_key).order_by(Contact.person_key).limit(clients)
        ).scalars().all()
        user_id = conn.execute(select(UserAccount.id).where(UserAccount.username == user)
                               ).scalar_one()
        tokens = [create_session(conn, user_id, unit) for _ in range(clients)]
    engine.dispose()
    if not keys:
        raise RuntimeError(f"no person has contacts at the clinician's unit {unit}")
    return {"env": env, "url": url, "keys": list(keys), "tokens": tokens}


async def _client(base: str, token: str, key: str, until: float, out: list) -> None:
    import httpx

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                r = await client.post(f"/api/persons/{key}/assessments", json=BODY)
                status = r.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            out.append((status, time.monotonic() - started, time.monotonic()))


def _load(base: str, prep: dict, clients: int, seconds: float) -> dict:
    samples: list = []
    keys = prep["keys"]

    async def run() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_client(base, prep["tokens"][i], keys[i % len(keys)], until,
                                       samples) for i in range(clients)))

    began = time.monotonic()
    asyncio.run(run())
    wall = time.monotonic() - began
    latencies = sorted(s[1] * 1000 for s in samples)
    ok = sum(1 for s in samples if s[0] == 201)

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))], 1)

    failures: dict[str, int] = {}
    for s in samples:
        if s[0] != 201:
            failures[str(s[0])] = failures.get(str(s[0]), 0) + 1
    return {"requests": len(samples), "created": ok, "failed": len(samples) - ok,
            "failures": failures, "seconds": round(wall, 1),
            "writes_per_s": round(ok / wall, 1), "p50_ms": pct(50), "p90_ms": pct(90),
            "p99_ms": pct(99), "max_ms": round(latencies[-1], 1) if latencies else None}


def _stored(url: str) -> int:
    from sqlalchemy import func, select

    from utfall.store.db import get_engine
    from utfall.store.models import Assessment

    engine = get_engine(url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(Assessment)).scalar_one()
    engine.dispose()
    return count


def _check(prep: dict) -> dict:
    from sqlalchemy import func, select

    from utfall.access.audit import verify_chain
    from utfall.store.db import get_engine
    from utfall.store.models import Assessment, AuditEvent

    engine = get_engine(prep["url"])
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(Assessment)).scalar_one()
        problems = verify_chain(conn.execute(select(AuditEvent).order_by(AuditEvent.id)))
        events = conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    engine.dispose()
    return {"stored_new": stored - prep["before"], "audit_events": events,
            "audit_problems": len(problems)}


def run_store(kind: str, workers: int, args: argparse.Namespace, workdir: Path) -> dict:
    prep = _prepare(kind, workdir, args.persons, args.clients)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "utfall.web.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--log-level", "warning", "--no-access-log"],
        env={**os.environ, **prep["env"]})
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        _load(base, prep, args.clients, 3)  # warm-up: imports, caches, pool connections
        prep["before"] = _stored(prep["url"])
        result = _load(base, prep, args.clients, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    result.update(_check(prep))
    result.update({"store": kind, "workers": workers, "clients": args.clients})
    print(f"{kind:10s} workers {workers}  {result['requests']} requests  "
          f"failed {result['failed']}  {result['writes_per_s']} writes/s  "
          f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  max {result['max_ms']} ms  "
          f"stored {result['stored_new']}  audit problems {result['audit_problems']}",
          flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--persons", type=int, default=500)
    parser.add_argument("--stores", default="sqlite:1,sqlite:2,postgresql:2",
                        help="store:workers, comma-separated")
    parser.add_argument("--out", default="write_concurrency.json",
                        help="file in benchmarks/results")
    args = parser.parse_args()
    results = []
    for spec in args.stores.split(","):
        kind, _, workers = spec.partition(":")
        workdir = Path(tempfile.mkdtemp(prefix="utfall-write-bench-"))
        try:
            results.append(run_store(kind, int(workers or 1), args, workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    meta = {"clients": args.clients, "seconds": args.seconds, "persons": args.persons,
            "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
            "load": "httpx async in one process on the same machine"}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0 if all(r["failed"] == 0 and r["stored_new"] == r["created"]
                    and r["audit_problems"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
