"""Run every benchmark script in ``benchmarks/`` with its defaults (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    """Run the benchmarks one after another; non-zero if any failed."""
    failed = 0
    here = Path(__file__).resolve()
    for script in sorted(here.parent.glob("*.py")):
        if script == here or script.name.startswith("_"):
            continue
        print(f"== {script.name}", flush=True)
        failed |= subprocess.run([sys.executable, str(script)]).returncode != 0
    return int(failed)


if __name__ == "__main__":
    raise SystemExit(main())
