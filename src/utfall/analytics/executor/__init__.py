"""The executor: runs the catalogue fast on an engine, with results identical to the
single expressions of :mod:`utfall.analytics.semantics.compiler`.

- :mod:`.run` — ``compute_catalogue`` (work units, staged execution, stored runs);
- :mod:`.fusion` — the fused contact pass (int64 bit flags);
- :mod:`.levelwords` — few-level unit attributes counted as bit words;
- :mod:`.timeto` — time_to indicators from one enriched table of index events;
- :mod:`.variants` — enrolment proportions differing only in end reasons;
- :mod:`.backends` — canonical tables on DuckDB, PostgreSQL, PySpark; materialisation.
"""
