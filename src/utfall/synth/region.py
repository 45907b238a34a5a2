"""The synthetic region: units, municipalities, calibration targets and planted findings.

Everything here is data. Magnitudes come from the regional indicator report in
DOMAIN.md §6 (one region of about 1.7 M inhabitants), expressed per 20,000
generated persons and scaled linearly with the number of persons.
"""

from __future__ import annotations

from dataclasses import dataclass

REFERENCE_PERSONS = 20_000
ORGANISATION_REGION = "Region Skåne (syntetisk)"

# Ten Skåne municipalities: code, name, approximate population (thousands), catchment area.
# Areas: 0 Malmö, 1 Helsingborg, 2 Lund, 3 Kristianstad.
MUNICIPALITIES: list[tuple[str, str, int, int]] = [
    ("1280", "Malmö", 360, 0),
    ("1283", "Helsingborg", 151, 1),
    ("1281", "Lund", 129, 2),
    ("1290", "Kristianstad", 87, 3),
    ("1293", "Hässleholm", 53, 3),
    ("1287", "Trelleborg", 47, 0),
    ("1282", "Landskrona", 47, 1),
    ("1292", "Ängelholm", 44, 1),
    ("1285", "Eslöv", 35, 2),
    ("1286", "Ystad", 31, 0),
]

# Unit categories used by the generator (not part of the extract format).
BER, AVG, PSYK, VC, LARO, UNG, SOC = range(7)


@dataclass(frozen=True)
class Unit:
    """One row of units.csv plus the generator's category and catchment area."""

    unit_id: str
    name: str
    organisation: str
    principal_type: str
    care_level: str
    municipality_code: str
    category: int
    dot_codes: bool = True  # writes ICD-10 codes as F10.2 (True) or F102 (False)


HEALTH_UNITS: list[Unit] = [
    Unit("ber-malmo", "Beroendemottagning Malmö", ORGANISATION_REGION, "region",
         "specialist_outpatient", "1280", BER),
    Unit("ber-hbg", "Beroendemottagning Helsingborg", ORGANISATION_REGION, "region",
         "specialist_outpatient", "1283", BER),
    Unit("ber-lund", "Beroendemottagning Lund", ORGANISATION_REGION, "region",
         "specialist_outpatient", "1281", BER),
    Unit("ber-kstad", "Beroendemottagning Kristianstad", ORGANISATION_REGION, "region",
         "specialist_outpatient", "1290", BER, dot_codes=False),
    Unit("ber-privat", "Beroendekliniken Öresund", "Öresund Beroendevård AB (syntetisk)",
         "private", "specialist_outpatient", "1280", BER),
    Unit("avg-malmo", "Avgiftningsavdelning Malmö", ORGANISATION_REGION, "region",
         "specialist_inpatient", "1280", AVG),
    Unit("psyk-malmo", "Allmänpsykiatrisk mottagning Malmö", ORGANISATION_REGION, "region",
         "specialist_outpatient", "1280", PSYK),
    Unit("psyk-hbg", "Allmänpsykiatrisk mottagning Helsingborg", ORGANISATION_REGION, "region",
         "specialist_outpatient", "1283", PSYK, dot_codes=False),
    Unit("vc-malmo", "Vårdcentral Malmö Centrum", ORGANISATION_REGION, "region",
         "primary_care", "1280", VC),
    Unit("vc-lund", "Vårdcentral Lund Norr", ORGANISATION_REGION, "region",
         "primary_care", "1281", VC, dot_codes=False),
    Unit("vc-kstad", "Vårdcentral Kristianstad", ORGANISATION_REGION, "region",
         "primary_care", "1290", VC),
    Unit("vc-hbg", "Läkarhuset Helsingborg", "Läkarhuset Helsingborg AB (syntetisk)",
         "private", "primary_care", "1283", VC),
    Unit("laro-malmo", "LARO-mottagning Malmö", ORGANISATION_REGION, "region",
         "laro", "1280", LARO),
    Unit("laro-hbg", "LARO-mottagning Helsingborg", ORGANISATION_REGION, "region",
         "laro", "1283", LARO, dot_codes=False),
    Unit("laro-kstad", "LARO-mottagning Kristianstad", ORGANISATION_REGION, "region",
         "laro", "1290", LARO),
    Unit("ung-malmo", "Ungdomsmottagning beroende Malmö", ORGANISATION_REGION, "region",
         "youth", "1280", UNG),
]
SOCIAL_UNITS: list[Unit] = [
    Unit(f"soc-{code}", f"Socialtjänsten {name} vuxenenheten beroende", name, "municipality",
         "social_services", code, SOC)
    for code, name, _pop, _area in MUNICIPALITIES
]
UNITS: list[Unit] = HEALTH_UNITS + SOCIAL_UNITS
UNIT_INDEX = {u.unit_id: i for i, u in enumerate(UNITS)}

# Home unit per catchment area (Malmö, Helsingborg, Lund, Kristianstad) and category.
AREA_HOME: dict[int, list[str]] = {
    BER: ["ber-malmo", "ber-hbg", "ber-lund", "ber-kstad"],
    AVG: ["avg-malmo"] * 4,
    PSYK: ["psyk-malmo", "psyk-hbg", "psyk-malmo", "psyk-hbg"],
    VC: ["vc-malmo", "vc-hbg", "vc-lund", "vc-kstad"],
    LARO: ["laro-malmo", "laro-hbg", "laro-malmo", "laro-kstad"],
    UNG: ["ung-malmo"] * 4,
}
PRIVATE_BER = "ber-privat"
PRIVATE_BER_SHARE = [0.15, 0.04, 0.12, 0.02]  # by area

# Substance groups: code, persons per 20,000 in 2017 and in 2021 (DOMAIN.md §6; F13, F16
# and F18 are not in the report and kept small), share with dependence (.2) as usual state,
# mean age, share of adolescents/young adults (12-21 in mid-period), share of men.
GROUPS: list[tuple[str, float, float, float, float, float, float]] = [
    ("F10", 8455, 7378, 0.75, 51, 0.02, 0.66),
    ("F11", 1476, 1615, 0.92, 41, 0.02, 0.74),
    ("F12", 659, 485, 0.55, 28, 0.20, 0.80),
    ("F13", 260, 240, 0.70, 46, 0.03, 0.45),
    ("F14", 90, 78, 0.50, 32, 0.06, 0.80),
    ("F15", 337, 351, 0.70, 37, 0.04, 0.72),
    ("F16", 14, 20, 0.30, 26, 0.20, 0.80),
    ("F18", 9, 7, 0.40, 24, 0.30, 0.70),
    ("F19", 3643, 3235, 0.80, 35, 0.07, 0.72),
]
NO_GROUP_AGE = 40  # persons seen only for other diagnoses / in social services
GROUP_CODES = [g[0] for g in GROUPS]
G_F10, G_F11 = 0, 1

# Persons with a KVÅ code per group (2017, 2021), from DOMAIN.md §6; "<5" read as 3.
KVA_CALIBRATED: dict[str, dict[str, tuple[float, float]]] = {
    "F10": {"AU119": (632, 392), "AU124": (0, 70), "DU119": (200, 128)},
    "F11": {"AU119": (80, 116), "AU124": (0, 24), "DU119": (96, 72)},
    "F12": {"AU119": (46, 18), "AU124": (0, 3), "DU119": (10, 18)},
    "F14": {"AU119": (3, 3), "AU124": (0, 0), "DU119": (3, 3)},
    "F15": {"AU119": (20, 17), "AU124": (0, 3), "DU119": (11, 8)},
    "F19": {"AU119": (374, 280), "AU124": (0, 41), "DU119": (181, 158)},
}
KVA_FALLBACK_GROUP = "F19"  # groups missing from the report borrow its rates
# Other codes: share of person-group-years with the code (flat over years).
KVA_OTHER: dict[str, float] = {
    "AU118": 0.035, "AU006": 0.02, "DU011": 0.03, "DU118": 0.05, "DU007": 0.03,
    "AA085": 0.01, "DU999": 0.002, "AU998": 0.001,
}
UNKNOWN_KVA = ["DU999", "AU998"]
# Extra rows (repeated sessions) per person-group-year with the code.
KVA_REPEATS: dict[str, float] = {"DU119": 1.2, "DU011": 1.5, "DU118": 0.8, "DU007": 1.0}
# Relative propensity to register a code, by unit category.
KVA_CATEGORY_WEIGHT: dict[str, list[float]] = {
    # BER, AVG, PSYK, VC, LARO, UNG
    "AU119": [1.6, 1.2, 0.5, 0.4, 1.0, 1.6],
    "DU119": [1.5, 0.8, 0.6, 0.4, 1.2, 1.0],
    "AU124": [1.2, 0.8, 1.2, 0.6, 1.5, 1.5],
}

# Planted findings: unit-level differences that later analyses should detect.
UNDERCODE_UNIT = "ber-hbg"
UNDERCODE_FACTOR = 0.2
KVA_GAP_UNIT = "ber-kstad"
KVA_GAP_YEAR = 2022
# Format v1 requires main_dx outside social services, so "missing diagnosis" is planted the
# way it shows in real extracts: visits registered with a non-specific counselling Z-code
# (Z71.4 alcohol, Z71.5 drugs) instead of the F1x diagnosis (under-coding from stigma).
UNSPECIFIC_DX_UNIT = "ber-privat"
UNSPECIFIC_DX_SHARE = 0.45  # of its visits that may lose the F1x code (not anchors or coded)
UNSPECIFIC_DX_BASELINE = 0.004
COUNSELLING_DX = ["Z71.4", "Z71.5"]  # alcohol, drugs
LOW_RETENTION_UNIT = "laro-kstad"
LARO_EARLY_END = {"default": 0.17, LOW_RETENTION_UNIT: 0.55}
LOW_FOLLOWUP_UNIT = "ber-lund"
# Completion of vip-beroende stages (intake, month-6, month-12, discharge) by unit.
FOLLOWUP_COMPLETION: dict[str, tuple[float, float, float, float]] = {
    "ber-malmo": (0.80, 0.55, 0.40, 0.45),
    "ber-hbg": (0.75, 0.52, 0.36, 0.40),
    "ber-lund": (0.45, 0.15, 0.08, 0.15),
    "ber-kstad": (0.82, 0.58, 0.42, 0.45),
    "ber-privat": (0.72, 0.48, 0.33, 0.35),
}
# Follow-up visit after a detox stay, by catchment area (Malmö, Helsingborg, Lund,
# Kristianstad): share followed up in the same year and mean days from discharge.
DETOX_FOLLOW_UP_SHARE = [0.75, 0.70, 0.72, 0.45]
DETOX_FOLLOW_UP_DAYS = [8.0, 10.0, 9.0, 25.0]
DETOX_FOLLOW_UP_AREA = "Kristianstad (municipalities 1290, 1293)"
AUDIT_C_FOLLOWUP_UNITS = {"ber-malmo", "ber-privat"}  # short form at month-6

# Co-occurring psychiatric diagnoses (persistent per person): combination, weight.
COMORBIDITY: list[tuple[str, float]] = [
    ("F32.1", 0.16), ("F32.9", 0.08), ("F33.1", 0.06), ("F41.1", 0.12), ("F41.9", 0.06),
    ("F43.1", 0.07), ("F43.2", 0.06), ("F90.0", 0.12), ("F60.3", 0.06), ("F20.0", 0.04),
    ("F31.3", 0.03), ("F41.1;F32.1", 0.06), ("F90.0;F60.3", 0.04), ("F43.1;F32.9", 0.04),
]
COMORBIDITY_SHARE = 0.38
TOBACCO = "F17.2"
SOMATIC_DX = ["I10", "J06.9", "M54.5", "K70.3", "R53.9", "K29.7", "E11.9"]
FILLER_PSYCH_DX = ["F32.9", "F41.9", "F43.2"]

ALCOHOL_DRUGS = [("N07BB04", 0.40), ("N07BB03", 0.35), ("N07BB01", 0.18), ("N07BB05", 0.07)]
LARO_DRUGS = [("N07BC01", 0.40), ("N07BC02", 0.32), ("N07BC51", 0.28)]
ANALGESIC_OPIOIDS = [("N02AA05", 0.5), ("N02AA01", 0.2), ("N02AA59", 0.3)]
NALOXONE = "V03AB15"
