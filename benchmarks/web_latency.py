"""Web latency under bounded local load: p50/p99 of the person timeline and a form submit.

Set-up: a synthetic region (``--persons``) imported into a fresh PostgreSQL database on
127.0.0.1:5432, demo accounts, ``uvicorn`` with ``--workers`` processes on a free port.
Load: ``wrk`` (Debian package) with ``--connections`` concurrent clients for
``--seconds`` per scenario:

* ``timeline_api``  – ``GET /api/persons/{key}/timeline`` (bearer token)
* ``timeline_page`` – ``GET /persons/{key}`` (HTML with the SVG chart; cookie session)
* ``form_submit``   – ``POST /persons/{key}/assess?instrument=audit-c`` (form + CSRF)

Every request is a real audited access (a hash-chained audit row per read or write).
Results go to ``benchmarks/results/web_latency.json``.

    .venv/bin/python benchmarks/web_latency.py [--persons 2000 --connections 50 --seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DB_NAME = "utfall_bench_web"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _recreate_db() -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"


def _prepare(workdir: Path, persons: int) -> dict:
    """Generate, import, create accounts; returns what the load needs."""
    from cryptography.fernet import Fernet

    url = _recreate_db()
    env = {"UTFALL_DATA_DIR": str(workdir / "data"), "UTFALL_DATABASE_URL": url,
           "UTFALL_SECRET_KEY": "bench-" + "s" * 40,
           "UTFALL_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    os.environ.update(env)
    from sqlalchemy import func, select

    from utfall.config import get_settings
    from utfall.interop.extract_load import import_extract
    from utfall.store.db import get_engine
    from utfall.store.models import Contact
    from utfall.synth import generate
    from utfall.web.demo import create_demo_accounts

    get_settings.cache_clear()
    folder = workdir / "extract"
    generate(folder, persons, 11, "csv")
    engine = get_engine(url)
    import_extract(folder, engine)
    accounts = create_demo_accounts(engine)
    clinician = next(a for a in accounts if a[2] == "clinician")
    with engine.connect() as conn:
        busiest = conn.execute(
            select(Contact.person_key).where(Contact.unit_id == clinician[3])
            .group_by(Contact.person_key).order_by(func.count().desc(), Contact.person_key)
            .limit(2)).scalars().all()
    engine.dispose()
    from sqlalchemy import create_engine, text

    with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))  # planner statistics, as after autovacuum
    return {"env": env, "user": clinician[0], "password": clinician[1],
            "timeline_key": busiest[0], "submit_key": busiest[1]}


def _login(base: str, user: str, password: str) -> tuple[str, str, str]:
    """Bearer token, session cookie and CSRF token."""
    req = urllib.request.Request(base + "/api/session", method="POST",
                                 data=json.dumps({"username": user,
                                                  "password": password}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        token = json.loads(r.read())["token"]
    req = urllib.request.Request(base + "/api/me",
                                 headers={"Cookie": f"utfall_session={token}"})
    with urllib.request.urlopen(req) as r:
        csrf = json.loads(r.read())["csrf_token"]
    return token, f"utfall_session={token}", csrf


def _wrk(url: str, script: str, connections: int, seconds: int, threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
        path = fh.name
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                          "--latency", "--timeout", "10s", "-s", path, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(path)

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"p50_ms": ms("50"), "p90_ms": ms("90"), "p99_ms": ms("99"), "requests": requests,
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "non_2xx_3xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else "", "raw": out}


def _cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the uvicorn processes and by PostgreSQL
    (its server processes on this machine): with other work on the machine, CPU per
    request is the load-independent figure, latency and throughput are not."""
    tick = os.sysconf("SC_CLK_TCK")
    app = pg = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        pid, ppid = int(entry.name), int(fields[1])
        used = (int(fields[11]) + int(fields[12])) / tick
        if pid == server_pid or ppid == server_pid:
            app += used
        elif comm.startswith("postgres"):
            pg += used
    return {"app": app, "postgres": pg}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="web_latency.json", help="file in benchmarks/results")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    load_before = list(os.getloadavg())  # the machine's load is part of the result
    workdir = Path(tempfile.mkdtemp(prefix="utfall-web-bench-"))
    began = time.perf_counter()
    prep = _prepare(workdir, args.persons)
    print(f"prepared in {time.perf_counter() - began:.0f} s", flush=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "utfall.web.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
         "--log-level", "warning", "--no-access-log"],
        # no background indicator run in the workers while measuring (it would take the
        # CPU the requests are measured on; a region runs it after imports, off-peak)
        env={**os.environ, **prep["env"], "UTFALL_ANALYTICS_RUNS_POLL_SECONDS": "0"})
    try:
        for _ in range(900):  # up to 3 minutes: the workers start slowly on a busy machine
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"uvicorn exited with {server.returncode}") from None
                time.sleep(0.2)
        token, cookie, csrf = _login(base, prep["user"], prep["password"])
        tkey, skey = prep["timeline_key"], prep["submit_key"]
        body = urllib.parse.urlencode({"csrf_token": csrf, "on_date": time.strftime("%Y-%m-%d"),
                                       "item_1": "2", "item_2": "1", "item_3": "1"})
        scenarios = {
            "timeline_api": (f"{base}/api/persons/{tkey}/timeline",
                             f'wrk.headers["Authorization"] = "Bearer {token}"\n'),
            "timeline_page": (f"{base}/persons/{tkey}",
                              f'wrk.headers["Cookie"] = "{cookie}"\n'),
            "form_submit": (f"{base}/persons/{skey}/assess?instrument=audit-c",
                            'wrk.method = "POST"\n'
                            f'wrk.headers["Cookie"] = "{cookie}"\n'
                            'wrk.headers["Content-Type"] = '
                            '"application/x-www-form-urlencoded"\n'
                            f'wrk.body = "{body}"\n'),
        }
        results = {}
        for name, (url, script) in scenarios.items():
            _wrk(url, script, 4, 2, 1)  # warm-up
            cpu_before = _cpu_seconds(server.pid)
            results[name] = _wrk(url, script, args.connections, args.seconds, args.threads)
            cpu_after = _cpu_seconds(server.pid)
            r = results[name]
            n = max(r["requests"], 1)
            r["app_cpu_ms_per_request"] = 1000 * (cpu_after["app"] - cpu_before["app"]) / n
            r["postgres_cpu_ms_per_request"] = 1000 * (
                cpu_after["postgres"] - cpu_before["postgres"]) / n
            r["load_average"] = list(os.getloadavg())
            print(f"{name:14s} p50 {r['p50_ms']:8.1f} ms  p99 {r['p99_ms']:8.1f} ms  "
                  f"{r['rps']:7.1f} req/s  non-2xx/3xx {r['non_2xx_3xx']}  "
                  f"CPU/request app {r['app_cpu_ms_per_request']:.1f} ms "
                  f"PostgreSQL {r['postgres_cpu_ms_per_request']:.1f} ms  "
                  f"load {r['load_average'][0]:.1f}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=20)
    meta = {"persons": args.persons, "connections": args.connections, "seconds": args.seconds,
            "workers": args.workers, "database": "PostgreSQL 127.0.0.1", "tool": "wrk",
            "cores": os.cpu_count(), "load_average_after": list(os.getloadavg()),
            "load_average_before": load_before, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                    time.gmtime())}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / args.out).write_text(json.dumps({"meta": meta, "results": {
        k: {kk: vv for kk, vv in v.items() if kk != "raw"} for k, v in results.items()}},
        indent=2))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
