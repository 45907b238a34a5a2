"""Import throughput into the embedded default (SQLite) — a benchmark, not a test.

Usage: .venv/bin/python benchmarks/import_throughput.py [--persons 20000] [--seed 1]
       [--format csv|parquet] [--extract FOLDER] [--database URL]

Generates a synthetic extract (unless --extract is given), imports it into a fresh
SQLite file, and prints contact rows per second for validation, load and in total,
plus peak RSS.
"""

from __future__ import annotations

import argparse
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
        url = args.database or f"sqlite:///{work / 'bench.db'}"
        engine = get_engine(url)
        result = import_extract(folder, engine, settings=settings)
        total = result.seconds
        load = max(total - t_validate, 1e-9)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"rows: {result.row_counts}")
        print(f"validation: {t_validate:.2f} s ({contacts / t_validate:,.0f} contacts/s)")
        print(f"load (approx.): {load:.2f} s ({contacts / load:,.0f} contacts/s)")
        print(f"import total: {total:.2f} s -> {contacts / total:,.0f} contact rows/s "
              f"(target >= 100,000)")
        print(f"peak RSS: {rss_mb:,.0f} MB")


if __name__ == "__main__":
    main()
