"""A small, valid, hand-made extract (format v1) for foundation tests."""

from __future__ import annotations

import csv
from pathlib import Path

from utfall.domain.identity import with_check_digit


def pnr(yymmdd: str, serial: str, century: str = "19", sep: str = "-") -> str:
    """A valid identity number from date and 3-digit serial (check digit computed)."""
    ten = with_check_digit(yymmdd + serial)
    return f"{century}{ten[:6]}{sep}{ten[6:]}"


P1 = pnr("800101", "123")  # male (serial digit 3 odd)
P2 = pnr("900215", "246")  # female
P3 = pnr("850375", "111")  # samordningsnummer (day 15 + 60), male
P4 = pnr("020610", "228", century="20")  # born 2002, female

TABLES: dict[str, list[dict[str, str]]] = {
    "units": [
        {"unit_id": "U1", "name": "Beroendemottagningen Malmö", "organisation": "Region Skåne",
         "principal_type": "region", "care_level": "specialist_outpatient",
         "municipality_code": "1280"},
        {"unit_id": "U2", "name": "LARO-mottagningen Lund", "organisation": "Region Skåne",
         "principal_type": "region", "care_level": "laro", "municipality_code": ""},
        {"unit_id": "S1", "name": "Socialtjänsten Malmö", "organisation": "Malmö stad",
         "principal_type": "municipality", "care_level": "social_services",
         "municipality_code": "1280"},
    ],
    "persons": [
        {"person_id": P1, "sex": "M", "municipality_code": "1280", "death_date": ""},
        {"person_id": P2, "sex": "F", "municipality_code": "1280", "death_date": ""},
        {"person_id": P3, "sex": "M", "municipality_code": "", "death_date": "2023-05-01"},
        {"person_id": P4, "sex": "F", "municipality_code": "1281", "death_date": ""},
    ],
    "contacts": [
        {"contact_id": "C1", "person_id": P1, "unit_id": "U1", "date": "2021-03-01",
         "end_date": "", "contact_type": "outpatient", "main_dx": "F10.2", "other_dx": "F32.1"},
        {"contact_id": "C2", "person_id": P1, "unit_id": "U1", "date": "2021-06-01",
         "end_date": "", "contact_type": "outpatient", "main_dx": "F102", "other_dx": ""},
        {"contact_id": "C3", "person_id": P2, "unit_id": "U2", "date": "2021-02-10",
         "end_date": "", "contact_type": "outpatient", "main_dx": "F11.2",
         "other_dx": "F41.1;F90.0"},
        {"contact_id": "C4", "person_id": P3, "unit_id": "U1", "date": "2020-11-20",
         "end_date": "2020-11-27", "contact_type": "inpatient", "main_dx": "F19.3",
         "other_dx": ""},
        {"contact_id": "C5", "person_id": P4, "unit_id": "S1", "date": "2022-01-12",
         "end_date": "", "contact_type": "social_services", "main_dx": "", "other_dx": ""},
        {"contact_id": "C6", "person_id": P4, "unit_id": "U1", "date": "2022-02-01",
         "end_date": "", "contact_type": "digital", "main_dx": "F12.1", "other_dx": ""},
    ],
    "procedures": [
        {"person_id": P1, "unit_id": "U1", "date": "2021-03-01", "contact_id": "C1",
         "kva_code": "AU119"},
        {"person_id": P1, "unit_id": "U1", "date": "2021-06-01", "contact_id": "",
         "kva_code": "DU119"},
        {"person_id": P2, "unit_id": "U2", "date": "2021-02-10", "contact_id": "C3",
         "kva_code": "AU124"},
    ],
    "medications": [
        {"person_id": P1, "unit_id": "U1", "atc": "N07BB03", "start_date": "2021-03-01",
         "end_date": "2021-09-01"},
        {"person_id": P2, "unit_id": "U2", "atc": "N07BC02", "start_date": "2021-02-15",
         "end_date": ""},
    ],
    "enrolments": [
        {"person_id": P2, "unit_id": "U2", "programme": "laro", "start_date": "2021-02-15",
         "end_date": "", "end_reason": ""},
        {"person_id": P1, "unit_id": "U1", "programme": "vip-beroende",
         "start_date": "2021-03-01", "end_date": "2022-03-01", "end_reason": "completed"},
    ],
    "assessments": [
        {"person_id": P1, "unit_id": "U1", "date": "2021-03-01", "instrument": "audit",
         "stage": "intake", **{f"item_{i}": str(v) for i, v in
                               enumerate([4, 3, 3, 2, 2, 1, 1, 2, 2, 4], start=1)}},
        {"person_id": P1, "unit_id": "U1", "date": "2021-09-03", "instrument": "audit",
         "stage": "month-6", **{f"item_{i}": str(v) for i, v in
                                enumerate([2, 1, 1, 0, 1, 0, 0, 1, 0, 2], start=1)}},
    ],
}


def write_extract(folder: Path, tables: dict[str, list[dict[str, str]]] | None = None,
                  **overrides: list[dict[str, str]]) -> Path:
    """Write the extract (or ``tables``, with per-table ``overrides``) as CSV files."""
    folder.mkdir(parents=True, exist_ok=True)
    data = dict(tables or TABLES)
    data.update(overrides)
    for name, rows in data.items():
        if not rows:
            continue
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return folder
