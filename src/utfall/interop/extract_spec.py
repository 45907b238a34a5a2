"""The columns of extract format v1 (shared/spec/extract-v1.md), as data."""

from __future__ import annotations

from dataclasses import dataclass

PRINCIPAL_TYPES = ("region", "municipality", "private")
CARE_LEVELS = (
    "primary_care",
    "specialist_outpatient",
    "specialist_inpatient",
    "laro",
    "social_services",
    "youth",
)
CONTACT_TYPES = ("outpatient", "inpatient", "social_services", "digital")
DEFAULT_PROGRAMMES = ("laro", "vip-beroende", "rop")
END_REASONS = ("completed", "dropout", "involuntary_discharge", "transferred", "deceased", "other")
SEXES = ("M", "F")


@dataclass(frozen=True)
class Column:
    """One column of an extract table.

    ``kind`` is one of text, enum, date, pnr, municipality, icd10, icd10_list, kva,
    atc, ref_person, ref_unit, ref_contact, item.
    """

    name: str
    kind: str
    required: bool = True
    values: tuple[str, ...] = ()


def _refs() -> list[Column]:
    return [Column("person_id", "ref_person"), Column("unit_id", "ref_unit")]


TABLES: dict[str, list[Column]] = {
    "units": [
        Column("unit_id", "text"),
        Column("name", "text"),
        Column("organisation", "text"),
        Column("principal_type", "enum", values=PRINCIPAL_TYPES),
        Column("care_level", "enum", values=CARE_LEVELS),
        Column("municipality_code", "municipality", required=False),
    ],
    "persons": [
        Column("person_id", "pnr"),
        Column("sex", "enum", values=SEXES),
        Column("municipality_code", "municipality", required=False),
        Column("death_date", "date", required=False),
    ],
    "contacts": [
        Column("contact_id", "text"),
        *_refs(),
        Column("date", "date"),
        Column("end_date", "date", required=False),
        Column("contact_type", "enum", values=CONTACT_TYPES),
        Column("main_dx", "icd10", required=False),  # required unless social_services
        Column("other_dx", "icd10_list", required=False),
    ],
    "procedures": [
        *_refs(),
        Column("date", "date"),
        Column("contact_id", "ref_contact", required=False),
        Column("kva_code", "kva"),
    ],
    "medications": [
        *_refs(),
        Column("atc", "atc"),
        Column("start_date", "date"),
        Column("end_date", "date", required=False),
    ],
    "enrolments": [
        *_refs(),
        Column("programme", "enum", values=DEFAULT_PROGRAMMES),
        Column("start_date", "date"),
        Column("end_date", "date", required=False),
        Column("end_reason", "enum", required=False, values=END_REASONS),
    ],
    "assessments": [
        *_refs(),
        Column("date", "date"),
        Column("instrument", "text"),
        Column("stage", "text", required=False),
    ],
}

REQUIRED_FILES = ("units", "persons")
ORDER = ("units", "persons", "contacts", "procedures", "medications", "enrolments", "assessments")
ITEM_PREFIX = "item_"
MANIFEST = "manifest.json"
