"""Reporting to national quality registers (issue 14): a versioned mapping file per
register (``content/registers/<register>-<version>.yaml``), forms built from the
canonical tables, validation with gaps per person and unit, a delivery log for
incremental exports, manifests and receipts. See ``docs/interoperability.md``."""

from utfall.interop.register.mapping import Mapping, MappingError, load_mapping

__all__ = ["Mapping", "MappingError", "load_mapping"]
