"""Statistical disclosure control: mandatory before anything is rendered, exported or served.

Split by concept:

* :mod:`.rules` — the versioned rules (``content/disclosure/rules-v<N>.yaml``);
* :mod:`.reasons` — one :class:`Reason` type for every masked cell;
* :mod:`.model` — the release as cells and linear relations (what a reader can combine);
* :mod:`.release` — the protection method: primary, linked secondary suppression over
  the whole release (:func:`protect_release`, :func:`apply_disclosure`);
* :mod:`.attacker` — the integer-programming attacker (HiGHS) that drives and audits it;
* :mod:`.audit` — the audit report behind ``utfall disclosure audit``;
* :mod:`.tables` — single 2-D tables with margins (exact cycle audit);
* :mod:`.results` — the protected long format, display strings, metadata stamps;
* :mod:`.cellkey` — the optional cell-key (noise) method.
"""

from utfall.analytics.disclosure.cellkey import (
    cell_key_noise,
    cell_key_of,
    coordinate_key,
    record_key,
)
from utfall.analytics.disclosure.reasons import WITHHELD_TEXT, Kind, Reason
from utfall.analytics.disclosure.release import (
    Release,
    apply_disclosure,
    end_reason_families,
    protect_release,
)
from utfall.analytics.disclosure.results import (
    DISPLAY_COLUMNS,
    PROTECTED_KEY,
    RESULT_COLUMNS,
    describe_applied,
    is_protected,
    protection_metadata,
)
from utfall.analytics.disclosure.rules import (
    DisclosureRules,
    Method,
    available_versions,
    load_rules,
    rules_from_mapping,
)
from utfall.analytics.disclosure.tables import ProtectedTable, suppress_table, unprotected_cells

WITHHELD = WITHHELD_TEXT

__all__ = [
    "DISPLAY_COLUMNS",
    "PROTECTED_KEY",
    "RESULT_COLUMNS",
    "WITHHELD",
    "DisclosureRules",
    "Kind",
    "Method",
    "ProtectedTable",
    "Reason",
    "Release",
    "apply_disclosure",
    "available_versions",
    "cell_key_noise",
    "cell_key_of",
    "coordinate_key",
    "describe_applied",
    "end_reason_families",
    "is_protected",
    "load_rules",
    "protect_release",
    "protection_metadata",
    "record_key",
    "rules_from_mapping",
    "suppress_table",
    "unprotected_cells",
]
