"""Import throughput into the embedded default (SQLite) — a benchmark, not a test.

Usage: .venv/bin/python benchmarks/import_throughput.py [--persons 20000] [--seed 1]
       [--format csv|parquet] [--extract FOLDER] [--database URL]

Generates a synthetic extract (unless --extract is given), imports it into a fresh
SQLite file, and prints contact rows per second for validation, load and in total,
plus peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from utfall.config import Settings
from utfall.interop.extract_load import import_extract
from utfall.interop.extract_validate import validate_extract
from utfall.store.db import get_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--format", default="csv", choices=["csv", "parquet"])
    parser.add_argument("--extract", type=Path)
    parser.add_argument("--database")
    parser.add_argument("--repeat", type=int, default=3, help="imports into fresh stores")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="utfall-bench-") as tmp:
        work = Path(tmp)
        folder = args.extract
        if folder is None:
            from utfall.synth import generate

            folder = work / "extract"
            t0 = time.perf_counter()
            generate(folder, args.persons, args.seed, args.format)
            print(f"generated {args.persons} persons in {time.perf_counter() - t0:.1f} s")
        settings = Settings(data_dir=work / "data", secret_key="bench" * 8)
        t0 = time.perf_counter()
        validated = validate_extract(folder, settings.effective_secret_key)
        t_validate = time.perf_counter() - t0
        contacts = validated.row_counts.get("contacts", 0)
        del validated
        walls, cpus = [], []
        for i in range(args.repeat):
            url = args.database or f"sqlite:///{work / f'bench{i}.db'}"
            cpu0 = _cpu()
            result = import_extract(folder, get_engine(url), settings=settings)
            cpus.append(_cpu() - cpu0)
            walls.append(result.seconds)
        wall, cpu = sorted(walls)[len(walls) // 2], sorted(cpus)[len(cpus) // 2]
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"rows: {result.row_counts}")
        print(f"validation alone: {t_validate:.2f} s ({contacts / t_validate:,.0f} contacts/s)")
        print(f"import (validate + load + commit), median of {args.repeat}: wall {wall:.2f} s "
              f"-> {contacts / wall:,.0f} contact rows/s; CPU {cpu:.2f} s -> "
              f"{contacts / cpu:,.0f} contact rows per CPU-second (target >= 100,000/s)")
        print(f"load average now: {os.getloadavg()[0]:.1f} (other work inflates wall time)")
        print(f"peak RSS: {rss_mb:,.0f} MB")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
