"""FHIR R4 resources for Utfall (served under ``/fhir`` by ``utfall.web.fhir``).

Builders are pure functions from Utfall's data (instrument definitions, stored
assessments, timeline entries, disclosure-controlled indicator results) to FHIR R4
JSON; every resource is validated with ``fhir.resources`` (R4B models, which accept
the R4 resources used here) before it leaves. See ``docs/interoperability.md``.
"""

from utfall.interop.fhir.common import CANONICAL, FhirError, validated

__all__ = ["CANONICAL", "FhirError", "validated"]
