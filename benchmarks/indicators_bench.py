"""National-scale benchmark of the indicator engine (not a test).

    .venv/bin/python benchmarks/indicators_bench.py --persons 1000000

1. builds (once, cached under ``out/bench/``) a canonical Parquet data set with
   ``--persons`` persons and 20 contacts per person, vectorised numpy/pyarrow;
2. runs, each in its own subprocess so peak RSS is its own:
   - the whole catalogue (all breakdowns, and the usual dashboard breakdowns)
     through ``compute_catalogue`` on DuckDB;
   - the regional table (persons per substance group and year with AU119, AU124,
     DU119 on such a contact) as hand-written DuckDB SQL, as an Ibis expression on
     DuckDB, through the catalogue engine, and in pandas;
3. prints wall time, peak RSS and ratios, and writes ``out/bench/results.json``.
Targets: catalogue < 30 s and < 2 GB; regional table in Ibis ≤ 1.25 × SQL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
EPOCH = dt.date(1970, 1, 1)
START = (dt.date(2017, 1, 1) - EPOCH).days
END = (dt.date(2024, 12, 31) - EPOCH).days
GROUPS = ["F10", "F11", "F12", "F13", "F14", "F15", "F16", "F17", "F18", "F19"]
GROUP_P = [0.52, 0.09, 0.05, 0.03, 0.01, 0.03, 0.005, 0.005, 0.005, 0.255]


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype("int32"), pa.int32()).view(pa.date32())


def _strings(prefix: str, ids: np.ndarray) -> pa.Array:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(prefix, pa.array(ids).cast(pa.string()), "")


def _pick(rng: np.random.Generator, values: list[str], p: list[float] | None, n: int) -> pa.Array:
    idx = rng.choice(len(values), size=n, p=p).astype("int32")
    return pa.DictionaryArray.from_arrays(pa.array(idx), pa.array(values)).dictionary_decode()


def generate(folder: Path, persons: int, contacts_per_person: int = 20, seed: int = 7) -> None:
    """Write canonical Parquet tables to ``folder`` (vectorised, chunked)."""
    from utfall.analytics.schema import TABLES

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n_units = 200
    levels = ["specialist_outpatient", "specialist_inpatient", "primary_care", "laro",
              "social_services", "youth"]
    munis = [f"{1200 + i:04d}" for i in range(290)]
    unit = pa.table(
        {
            "unit_id": _strings("u", np.arange(n_units)),
            "name": _strings("Enhet ", np.arange(n_units)),
            "organisation": _strings("Org ", np.arange(n_units) % 21),
            "principal_type": _pick(rng, ["region", "municipality", "private"], [0.6, 0.3, 0.1],
                                    n_units),
            "care_level": _pick(rng, levels, None, n_units),
            "municipality_code": _pick(rng, munis, None, n_units),
        }
    )
    pq.write_table(unit.cast(TABLES["unit"]), folder / "unit.parquet")
    pid = np.arange(persons)
    death = rng.random(persons) < 0.02
    death_days = np.where(death, rng.integers(START, END, persons), 0)
    person = pa.table(
        {
            "person_key": _strings("p", pid),
            "sex": _pick(rng, ["M", "F"], [0.68, 0.32], persons),
            "birth_year": pa.array(rng.integers(1940, 2008, persons).astype("int32")),
            "municipality": _pick(rng, munis, None, persons),
            "death_date": pa.compute.if_else(
                pa.array(death), _dates(death_days), pa.scalar(None, pa.date32())
            ),
        }
    )
    pq.write_table(person.cast(TABLES["person"]), folder / "person.parquet")

    cdir, pdir = folder / "contact", folder / "procedure"
    cdir.mkdir(exist_ok=True)
    pdir.mkdir(exist_ok=True)
    total = persons * contacts_per_person
    chunk = 5_000_000
    import pyarrow.compute as pc

    for part, lo in enumerate(range(0, total, chunk)):
        n = min(chunk, total - lo)
        ids = np.arange(lo, lo + n)
        # persons keep a "home" unit and substance group most of the time
        who = rng.integers(0, persons, n)
        unit_idx = np.where(rng.random(n) < 0.7, who % n_units, rng.integers(0, n_units, n))
        home_grp = np.searchsorted(np.cumsum(GROUP_P), (who * 0.6180339887) % 1.0).clip(0, 9)
        grp_idx = np.where(rng.random(n) < 0.8, home_grp, rng.choice(10, n, p=GROUP_P))
        state = rng.choice(np.array(list("0123456789")), n, p=[.05, .3, .45, .08, .01, .02,
                                                               .01, .01, .03, .04])
        days = rng.integers(START, END + 1, n)
        ctype = rng.choice(4, n, p=[0.85, 0.05, 0.07, 0.03])
        no_dx = (rng.random(n) < 0.08) | (ctype == 2) & (rng.random(n) < 0.8)
        grp = pa.DictionaryArray.from_arrays(pa.array(grp_idx.astype("int32")),
                                             pa.array(GROUPS)).dictionary_decode()
        main_dx = pc.binary_join_element_wise(grp, pa.array(state), "")
        null_s = pa.scalar(None, pa.string())
        main_dx = pc.if_else(pa.array(no_dx), null_s, main_dx)
        dx_group = pc.if_else(pa.array(no_dx), null_s, grp)
        inpatient = ctype == 1
        end_days = np.where(inpatient, days + rng.integers(1, 15, n), 0)
        psych = rng.choice(np.array(["", "mood", "anxiety", "adhd"]), n, p=[.85, .06, .06, .03])
        contact = pa.table(
            {
                "contact_id": _strings("c", ids),
                "person_key": _strings("p", who),
                "unit_id": _strings("u", unit_idx),
                "date": _dates(days),
                "end_date": pc.if_else(pa.array(inpatient), _dates(end_days),
                                       pa.scalar(None, pa.date32())),
                "contact_type": pa.DictionaryArray.from_arrays(
                    pa.array(ctype.astype("int32")),
                    pa.array(["outpatient", "inpatient", "social_services", "digital"]),
                ).dictionary_decode(),
                "main_dx": main_dx,
                "dx_group": dx_group,
                "other_dx": pa.nulls(n, pa.string()),
                "psych_groups": pc.if_else(pa.array(psych == ""), null_s, pa.array(psych)),
            }
        )
        pq.write_table(contact.cast(TABLES["contact"]), cdir / f"part-{part}.parquet")
        sel = np.nonzero(rng.random(n) < 0.06)[0]
        k = len(sel)
        with_id = rng.random(k) < 0.7
        procedure = pa.table(
            {
                "person_key": contact["person_key"].take(sel),
                "unit_id": contact["unit_id"].take(sel),
                "date": contact["date"].take(sel),
                "contact_id": pc.if_else(pa.array(with_id), contact["contact_id"].take(sel),
                                         null_s),
                "kva_code": _pick(rng, ["AU119", "DU119", "AU124", "DU011"],
                                  [0.45, 0.3, 0.1, 0.15], k),
            }
        )
        pq.write_table(procedure.cast(TABLES["procedure"]), pdir / f"part-{part}.parquet")
        del contact, procedure

    m = persons // 4
    mstart = rng.integers(START - 365, END, m)
    medication = pa.table(
        {
            "person_key": _strings("p", rng.integers(0, persons, m)),
            "unit_id": _strings("u", rng.integers(0, n_units, m)),
            "atc": _pick(rng, ["N07BB01", "N07BB03", "N07BB04", "N07BC02", "N07BC01",
                               "N02AA01", "V03AB15"], None, m),
            "start_date": _dates(mstart),
            "end_date": _dates(mstart + rng.integers(30, 700, m)),
        }
    )
    pq.write_table(medication.cast(TABLES["medication"]), folder / "medication.parquet")
    e = persons // 10
    estart = rng.integers(START - 730, END, e)
    ended = rng.random(e) < 0.6
    enrolment = pa.table(
        {
            "enrolment_id": _strings("e", np.arange(e)),
            "person_key": _strings("p", rng.integers(0, persons, e)),
            "programme": _pick(rng, ["laro", "vip-beroende", "rop"], [0.3, 0.6, 0.1], e),
            "unit_id": _strings("u", rng.integers(0, n_units, e)),
            "start_date": _dates(estart),
            "end_date": pc.if_else(pa.array(ended), _dates(estart + rng.integers(10, 1500, e)),
                                   pa.scalar(None, pa.date32())),
            "phase": pa.nulls(e, pa.string()),
            "end_reason": pc.if_else(
                pa.array(ended),
                _pick(rng, ["completed", "dropout", "involuntary_discharge", "transferred",
                            "deceased", "other"], [.3, .3, .1, .15, .05, .1], e),
                pa.scalar(None, pa.string()),
            ),
        }
    )
    pq.write_table(enrolment.cast(TABLES["enrolment"]), folder / "enrolment.parquet")
    a = persons // 2
    stage = rng.choice(3, a, p=[0.5, 0.3, 0.2])
    adays = rng.integers(START, END, a)
    assessment = pa.table(
        {
            "person_key": _strings("p", rng.integers(0, persons // 3, a)),
            "unit_id": _strings("u", rng.integers(0, n_units, a)),
            "instrument": _pick(rng, ["audit", "audit-c", "dudit"], [0.4, 0.4, 0.2], a),
            "stage": pa.DictionaryArray.from_arrays(
                pa.array(stage.astype("int32")), pa.array(["intake", "month-6", "month-12"])
            ).dictionary_decode(),
            "date": _dates(adays),
            "score": pa.array(rng.integers(0, 40, a).astype("float64")),
            "subscores": pa.nulls(a, pa.string()),
            "band": pa.nulls(a, pa.string()),
        }
    )
    pq.write_table(assessment.cast(TABLES["assessment"]), folder / "assessment.parquet")
    (folder / "READY").write_text(json.dumps({"persons": persons, "contacts": total}))


# ------------------------------------------------------------------------- measurements

# Both hand-written variants read the same inputs: substance contacts and the three codes.
_REGIONAL_INPUTS = """
WITH c AS (
  SELECT contact_id, person_key, unit_id, date, dx_group, year(date) AS yr
  FROM read_parquet('{d}/contact/*.parquet') WHERE dx_group IS NOT NULL
), p AS (
  SELECT * FROM read_parquet('{d}/procedure/*.parquet')
  WHERE kva_code IN ('AU119', 'AU124', 'DU119')
)"""

REGIONAL_SQL = _REGIONAL_INPUTS + """, hits AS (
  SELECT c.dx_group, c.yr, c.person_key, p.kva_code FROM c JOIN p ON p.contact_id = c.contact_id
  UNION
  SELECT c.dx_group, c.yr, c.person_key, p.kva_code FROM c JOIN p
    ON p.contact_id IS NULL AND p.person_key = c.person_key AND p.unit_id = c.unit_id
   AND p.date = c.date
), persons AS (
  SELECT dx_group, yr, count(DISTINCT person_key) AS n FROM c GROUP BY ALL
), codes AS (
  SELECT dx_group, yr,
         count(DISTINCT person_key) FILTER (WHERE kva_code = 'AU119') AS au119,
         count(DISTINCT person_key) FILTER (WHERE kva_code = 'AU124') AS au124,
         count(DISTINCT person_key) FILTER (WHERE kva_code = 'DU119') AS du119
  FROM hits GROUP BY ALL
)
SELECT persons.*, coalesce(au119, 0) AS au119, coalesce(au124, 0) AS au124,
       coalesce(du119, 0) AS du119
FROM persons LEFT JOIN codes USING (dx_group, yr) ORDER BY dx_group, yr
"""


# The same table as an expert would hand-write it for DuckDB: KVÅ flags joined once, reduced
# to one row per (group, year, person), then plain counts (no COUNT(DISTINCT), no UNION).
REGIONAL_SQL_REDUCED = _REGIONAL_INPUTS + """, by_id AS (
  SELECT contact_id, bool_or(kva_code = 'AU119') AS a, bool_or(kva_code = 'AU124') AS b,
         bool_or(kva_code = 'DU119') AS d
  FROM p WHERE contact_id IS NOT NULL GROUP BY contact_id
), by_day AS (
  SELECT person_key, unit_id, date, bool_or(kva_code = 'AU119') AS a,
         bool_or(kva_code = 'AU124') AS b, bool_or(kva_code = 'DU119') AS d
  FROM p WHERE contact_id IS NULL GROUP BY person_key, unit_id, date
), r AS (
  SELECT c.dx_group, c.yr, c.person_key,
         bool_or(coalesce(i.a, false) OR coalesce(y.a, false)) AS a,
         bool_or(coalesce(i.b, false) OR coalesce(y.b, false)) AS b,
         bool_or(coalesce(i.d, false) OR coalesce(y.d, false)) AS d
  FROM c LEFT JOIN by_id i USING (contact_id)
  LEFT JOIN by_day y ON y.person_key = c.person_key AND y.unit_id = c.unit_id
                    AND y.date = c.date
  GROUP BY c.dx_group, c.yr, c.person_key
)
SELECT dx_group, yr, count(*) AS n, count(*) FILTER (a) AS au119, count(*) FILTER (b) AS au124,
       count(*) FILTER (d) AS du119
FROM r GROUP BY dx_group, yr ORDER BY dx_group, yr
"""


def _regional_ibis(tables):
    import ibis

    c = tables["contact"]
    c = c.filter(c.dx_group.notnull()).mutate(yr=c.date.year())
    c = c.select("contact_id", "person_key", "unit_id", "date", "dx_group", "yr")
    p = tables["procedure"]
    p = p.filter(p.kva_code.isin(["AU119", "AU124", "DU119"]))
    h1 = c.join(p.filter(p.contact_id.notnull()).select("contact_id", "kva_code"),
                "contact_id").select("dx_group", "yr", "person_key", "kva_code")
    p2 = p.filter(p.contact_id.isnull()).select("person_key", "unit_id", "date", "kva_code")
    h2 = c.join(p2, ["person_key", "unit_id", "date"]).select(
        "dx_group", "yr", "person_key", "kva_code")
    hits = ibis.union(h1, h2, distinct=True)
    persons = c.group_by("dx_group", "yr").aggregate(n=c.person_key.nunique())
    codes = hits.group_by("dx_group", "yr").aggregate(
        **{k.lower(): hits.person_key.nunique(where=hits.kva_code == k)
           for k in ("AU119", "AU124", "DU119")}
    )
    out = persons.left_join(codes, ["dx_group", "yr"])
    return out.select(
        "dx_group", "yr", "n",
        *[out[k].fill_null(0).name(k) for k in ("au119", "au124", "du119")],
    ).order_by("dx_group", "yr")


DUCKDB_OPTS: dict = {}


def _tables(data: Path):
    from utfall.analytics.executor.backends import duckdb_tables

    return duckdb_tables(data, **DUCKDB_OPTS)


def _measure(kind: str, data: Path) -> dict:
    # imports are not part of the timing
    import duckdb
    import ibis  # noqa: F401
    import pandas  # noqa: F401

    import utfall.analytics.executor.run  # noqa: F401

    t0 = time.perf_counter()
    extra: dict = {}
    if kind in ("catalogue", "catalogue_dashboard"):
        from utfall.analytics.executor.run import compute_catalogue

        kw = {}
        if kind == "catalogue_dashboard":  # the usual dashboard breakdowns
            kw["breakdowns"] = ["total", "unit_id", "dx_group", "sex", "age_band"]
        res = compute_catalogue(_tables(data), **kw)
        extra = {"rows": res.num_rows}
    elif kind in ("sql", "sql_reduced"):
        import duckdb

        from utfall.analytics.executor.backends import default_threads

        con = duckdb.connect()  # the same DuckDB settings as the engine's connection
        con.execute(f"SET threads = {default_threads()}")
        con.execute("SET preserve_insertion_order = false")
        if DUCKDB_OPTS.get("memory_limit"):
            con.execute(f"SET memory_limit = '{DUCKDB_OPTS['memory_limit']}'")
            con.execute(f"SET temp_directory = '{DUCKDB_OPTS['temp_directory']}'")
        sql = REGIONAL_SQL if kind == "sql" else REGIONAL_SQL_REDUCED
        res = con.sql(sql.format(d=data)).to_arrow_table()
        extra = {"rows": res.num_rows}
    elif kind == "ibis":
        res = _regional_ibis(_tables(data)).to_pyarrow()
        extra = {"rows": res.num_rows}
    elif kind == "engine":
        from utfall.analytics.executor.run import compute_catalogue

        res = compute_catalogue(
            _tables(data),
            indicators=["kva_au119", "kva_au124", "kva_du119", "persons_substance_dx"],
            breakdowns=["dx_group"],
        )
        extra = {"rows": res.num_rows}
    elif kind == "pandas":
        import pandas as pd

        cols = ["contact_id", "person_key", "unit_id", "date", "dx_group"]
        c = pd.read_parquet(data / "contact", columns=cols)
        c = c[c.dx_group.notna()]
        c["yr"] = pd.to_datetime(c["date"]).dt.year
        p = pd.read_parquet(data / "procedure")
        p = p[p.kva_code.isin(["AU119", "AU124", "DU119"])]
        h1 = c.merge(p[p.contact_id.notna()][["contact_id", "kva_code"]], on="contact_id")
        h2 = c.merge(p[p.contact_id.isna()][["person_key", "unit_id", "date", "kva_code"]],
                     on=["person_key", "unit_id", "date"])
        hits = pd.concat([h1, h2])[["dx_group", "yr", "person_key", "kva_code"]]
        hits = hits.drop_duplicates()
        persons = c.groupby(["dx_group", "yr"]).person_key.nunique().rename("n")
        codes = hits.groupby(["dx_group", "yr", "kva_code"]).person_key.nunique().unstack(
            fill_value=0)
        res = persons.to_frame().join(codes).fillna(0)
        extra = {"rows": len(res)}
    wall = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "wall_s": round(wall, 2), "peak_rss_mb": round(rss_mb), **extra}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--contacts-per-person", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    ap.add_argument(
        "--only", nargs="*",
        default=["catalogue", "catalogue_dashboard", "sql", "sql_reduced", "ibis", "engine",
                 "pandas"],
    )
    ap.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit ('' = default)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per measurement (the median is reported)")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_limit:
        DUCKDB_OPTS["memory_limit"] = args.memory_limit
        DUCKDB_OPTS["temp_directory"] = str(args.out / "duckdb-tmp")
    if args.measure:
        print(json.dumps(_measure(args.measure, args.data)))
        return
    data = args.out / f"canonical-{args.persons}-{args.contacts_per_person}"
    if not (data / "READY").exists():
        t0 = time.perf_counter()
        print(f"generating {data} …", flush=True)
        generate(data, args.persons, args.contacts_per_person)
        print(f"  generated in {time.perf_counter() - t0:.1f} s", flush=True)
    results = {}
    for kind in args.only:
        runs = []
        for _ in range(args.repeat):
            proc = subprocess.run(
                [sys.executable, __file__, "--measure", kind, "--data", str(data),
                 "--memory-limit", args.memory_limit, "--out", str(args.out)],
                capture_output=True, text=True, check=True,
            )
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        # the median run by wall time; every run's wall time and the highest peak RSS kept
        runs.sort(key=lambda r: r["wall_s"])
        results[kind] = {**runs[len(runs) // 2], "runs_wall_s": [r["wall_s"] for r in runs],
                         "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
        print(json.dumps(results[kind]), flush=True)
    hand = [k for k in ("sql", "sql_reduced") if k in results]
    if hand:
        # ratios to the faster of the hand-written SQL variants in this run
        best = min(hand, key=lambda k: results[k]["wall_s"])
        base = results[best]["wall_s"]
        for kind in ("sql", "sql_reduced", "ibis", "engine", "pandas"):
            if kind in results:
                results[kind]["ratio_to_sql"] = round(results[kind]["wall_s"] / base, 2)
                results[kind]["ratio_base"] = best
                print(f"{kind}/{best} = {results[kind]['ratio_to_sql']}")
    from utfall.analytics.executor.backends import default_threads

    meta = {"persons": args.persons, "contacts": args.persons * args.contacts_per_person,
            "duckdb_memory_limit": args.memory_limit, "duckdb_threads": default_threads(),
            "repeat": args.repeat,
            "load_average_at_end": __import__("os").getloadavg(),
            "cpus": __import__("os").cpu_count(), "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(meta, indent=2))
    recorded = ROOT / "benchmarks" / "results" / "indicators.json"
    recorded.parent.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
