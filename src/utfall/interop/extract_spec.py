"""The columns of extract format v1 (shared/spec/extract-v1.md), as data.

Every column has a kind (its type), a maximum length in characters and a character
class; these are checked before anything is loaded, so the embedded SQLite store
and PostgreSQL accept and reject exactly the same folders. The limits are no wider
than the store's columns (e.g. ``unit.unit_id`` VARCHAR(64)).
"""

from __future__ import annotations

import re
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

#: Longest identity number as written: 12 digits and a separator.
PNR_MAX = 13
#: Longest value of an ``item_N`` answer column.
ITEM_MAX = 20
#: Cap on one physical CSV line or quoted record, and on the average bytes per value of a
#: Parquet column chunk: far above any valid row, small enough to bound memory.
LINE_CAP = 64 * 1024
#: Cap on manifest.json.
MANIFEST_CAP = 1024 * 1024
#: ``manifest.json`` ``source``: the system the extract comes from; scopes ``contact_id``.
SOURCE_MAX = 30
SOURCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Characters never allowed: C0/C1 control characters, DEL, and invisible format
#: characters (zero-width, bidirectional overrides, BOM) that make two values look alike.
#: Free-text columns (names) may hold tab, CR and LF.
_INVISIBLE = r"\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
FORBIDDEN_CHARS = rf"[\x00-\x1f\x7f-\x9f{_INVISIBLE}]"
FORBIDDEN_IN_FREE_TEXT = rf"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_INVISIBLE}]"


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
    max_len: int = 64
    free_text: bool = False  # tab, CR and LF allowed (names); never other control characters


def _refs() -> list[Column]:
    return [Column("person_id", "ref_person", max_len=PNR_MAX), Column("unit_id", "ref_unit")]


TABLES: dict[str, list[Column]] = {
    "units": [
        Column("unit_id", "text"),
        Column("name", "text", max_len=200, free_text=True),
        Column("organisation", "text", max_len=200, free_text=True),
        Column("principal_type", "enum", values=PRINCIPAL_TYPES),
        Column("care_level", "enum", values=CARE_LEVELS),
        Column("municipality_code", "municipality", required=False),
    ],
    "persons": [
        Column("person_id", "pnr", max_len=PNR_MAX),
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
        Column("other_dx", "icd10_list", required=False, max_len=200),
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
        Column("instrument", "text", max_len=40),
        Column("stage", "text", required=False, max_len=40),
    ],
}

REQUIRED_FILES = ("units", "persons")
ORDER = ("units", "persons", "contacts", "procedures", "medications", "enrolments", "assessments")
ITEM_PREFIX = "item_"
ITEM_RE = re.compile(r"^item_[0-9]{1,3}$")
ITEM_COLUMN = Column("item", "item", required=False, max_len=ITEM_MAX)
MANIFEST = "manifest.json"
