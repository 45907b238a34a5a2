"""Indicator semantics: what an indicator means, independent of how it is executed.

- :mod:`.catalogue` — the YAML catalogue validated into :class:`~.catalogue.Indicator`
  definitions (data, not code);
- :mod:`.compiler` — one definition → ONE Ibis expression (the reference), and the
  public stage helpers (bases, person/unit/substance-group stages, cells) that the
  executor's fast paths reuse.

Nothing here executes a query; :mod:`utfall.analytics.executor` does.
"""
