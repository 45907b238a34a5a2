"""CPU time of ``utfall report full`` (PDF) for the 20,000-person demo.

Reads the demo store (``utfall demo`` writes it to ``<UTFALL_DATA_DIR>/utfall.db``) and
measures, with ``time.process_time()`` (CPU of every thread of the process, so DuckDB's
threads count too) and wall time, in one process after the imports:

* ``imports``   – importing the report modules (separately: with
  ``PYTHONDONTWRITEBYTECODE=1`` and no ``__pycache__`` every run compiles pandas,
  DuckDB/Ibis and the solver bindings again, 10–15 s of CPU on this machine);
* ``read``      – the canonical tables from the store;
* ``build_stored`` – the report from the stored run of the store's state (the product
  path: a run is computed after import, in the background);
* ``build_cold``   – the report computing the whole protected release itself;
* ``html``, ``pdf`` – rendering (charts included), WeasyPrint.

``report_cpu_stored = read + build_stored + html + pdf`` is the figure against the
10 s target. Results go to ``benchmarks/results/report.json``.

    UTFALL_DATA_DIR=data .venv/bin/python benchmarks/report_bench.py [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _clock() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default=None, help="store URL (default: settings)")
    parser.add_argument("--cold", action="store_true", help="also time the cold build")
    parser.add_argument("--out", type=Path, default=Path("report-bench.pdf"))
    args = parser.parse_args()

    figures: dict[str, dict[str, float]] = {}

    def lap(name: str, start: tuple[float, float]) -> tuple[float, float]:
        now = _clock()
        figures[name] = {"cpu_s": round(now[0] - start[0], 2),
                         "wall_s": round(now[1] - start[1], 2)}
        print(f"{name:14s} cpu {figures[name]['cpu_s']:6.2f} s   wall "
              f"{figures[name]['wall_s']:6.2f} s", flush=True)
        return _clock()

    t = _clock()
    import weasyprint  # noqa: F401  (imported by render_report_pdf; an import, not work)

    import utfall.analytics.executor.run
    import utfall.analytics.quality
    import utfall.analytics.runs  # noqa: F401
    from utfall.analytics.regional import tables_from_arrow
    from utfall.reports import build_report, render_report_html, render_report_pdf
    from utfall.store.canonical import canonical_tables
    from utfall.store.db import get_engine

    t = lap("imports", t)
    from utfall.cli.report import _stored_run

    engine = get_engine(args.database)
    stored, extra = _stored_run(args.database)  # what `utfall report full` reads
    if stored is None or not extra:
        sys.exit("no stored run (with data quality) for the store's state: run `utfall demo`"
                 " or start a run")
    t = lap("read", t)
    report = build_report({}, stored=stored, source="store", **extra)
    t = lap("build_stored", t)
    if args.cold:
        tables = tables_from_arrow(canonical_tables(engine))
        t = lap("read_tables", t)
        build_report(tables, source="store")
        t = lap("build_cold", t)
    html = render_report_html(report, "sv")
    t = lap("html", t)
    render_report_pdf(html, args.out)
    t = lap("pdf", t)
    total = sum(figures[k]["cpu_s"] for k in ("read", "build_stored", "html", "pdf"))
    figures["report_cpu_stored"] = {"cpu_s": round(total, 2)}
    print(f"report (stored run) CPU: {total:.2f} s; load average {os.getloadavg()}")
    out = ROOT / "benchmarks" / "results" / "report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"figures": figures, "load_average": os.getloadavg(),
                               "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
                              indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
