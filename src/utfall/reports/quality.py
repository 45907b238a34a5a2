"""Data-quality notes per unit and year for reports, in the indicator result format.

Units code differently and stigma leads to under-coding (DOMAIN.md §6), so every
report shows, per unit and year, the checks of
:func:`utfall.analytics.quality.data_quality` (``uncoded_persons``,
``missing_main_dx``, ``volume_drop``) plus one check of the regional table's own
matching rule:

* ``dq_procedure_unlinked`` – procedures that match no contact (neither by
  ``contact_id`` nor by person, unit and date) / all procedures.

Everything is returned as raw indicator-format rows (``indicator_id = "dq_<check>"``,
``breakdown = "unit_id"``) with the check's ``flag``; pass them through
``apply_disclosure`` before showing them. Register coverage (which units reported
nothing) is a list of units, not a count of persons: see :func:`silent_units`.
"""

from __future__ import annotations

from utfall.analytics.quality import CHECKS, quality_results, silent_units

QUALITY_TITLES: dict[str, dict[str, str]] = {
    "dq_uncoded_persons": {
        "sv": "Personer med huvuddiagnos F10–F19 utan någon registrerad KVÅ-åtgärd vid enheten",
        "en": "Persons with main diagnosis F10–F19 without any KVÅ code registered by the unit",
    },
    "dq_missing_main_dx": {
        "sv": "Vårdkontakter utan huvuddiagnos",
        "en": "Health-care contacts without a main diagnosis",
    },
    "dq_volume_drop": {
        "sv": "Förändring av antalet kontakter jämfört med föregående år",
        "en": "Change in the number of contacts from the previous year",
    },
    "dq_procedure_unlinked": {
        "sv": "Åtgärder som inte kan kopplas till någon kontakt",
        "en": "Procedures that match no contact",
    },
}

__all__ = ["CHECKS", "QUALITY_TITLES", "quality_results", "silent_units"]
