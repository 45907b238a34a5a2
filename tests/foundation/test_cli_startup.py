"""`utfall --help` and light commands start without importing the heavy libraries.

Not a timing test (times are in docs/performance.md): it asserts which modules a
``--help`` run has loaded, which is what makes start-up fast or slow.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "duckdb", "ibis", "sqlalchemy", "fastapi", "starlette", "pyspark",
         "pyarrow", "polars", "numpy", "altair", "vl_convert", "pydantic_settings",
         "cryptography", "argon2")

PROBE = """
import json, sys
sys.argv = {argv!r}
from utfall.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stdout.flush()
sys.stderr.write("\\nMODULES=" + json.dumps(sorted(m for m in sys.modules if "." not in m)) + "\\n")
sys.stderr.write("EXIT=" + json.dumps(code) + "\\n")
"""


def _run(*argv: str) -> tuple[str, set[str], object]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=["utfall", *argv])],
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.splitlines()
    modules = json.loads(next(x for x in lines if x.startswith("MODULES="))[8:])
    code = json.loads(next(x for x in lines if x.startswith("EXIT="))[5:])
    return done.stdout, set(modules), code


def test_help_imports_no_heavy_library() -> None:
    out, modules, code = _run("--help")
    assert code == 0
    # every command is still listed (registration happens, only the heavy imports wait)
    for command in ("import", "score", "serve", "demo", "indicators", "report", "db"):
        assert command in out
    loaded = sorted(set(HEAVY) & modules)
    assert loaded == [], f"`utfall --help` imported {loaded}"


def test_command_help_imports_no_heavy_library() -> None:
    out, modules, code = _run("score", "--help")
    assert code == 0 and "--answers" in out
    assert sorted(set(HEAVY) & modules) == []


def test_a_command_still_loads_what_it_needs() -> None:
    """The imports moved into the command bodies, not away: scoring works."""
    out, modules, code = _run("score", "audit", "--answers", "1,1,1,0,0,0,0,0,0,0")
    assert code in (0, None)
    assert json.loads(out)["total"] == 3
    assert "pydantic" in modules
