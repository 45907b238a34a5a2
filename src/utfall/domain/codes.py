"""Code systems (ICD-10-SE F-chapter, KVÅ, ATC): normalisation and classification.

The tables themselves are versioned data in ``utfall/content/codes``; this module
holds only the rules. Unknown codes are reported by callers, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from utfall.content import load_yaml

ICD10_PATTERN = re.compile(r"^[A-Z]\d{2}(\d{1,2}[A-Z0-9]?)?$")
KVA_PATTERN = re.compile(r"^[A-Z]{2}\d{3}$|^[A-Z]{3}\d{2}$")
ATC_PATTERN = re.compile(r"^[A-Z](\d{2}([A-Z]([A-Z](\d{2})?)?)?)?$")


def normalise_icd10(code: str) -> str:
    """Upper-case, strip spaces and the dot: ``f10.2`` → ``F102``."""
    return code.strip().upper().replace(".", "")


def is_wellformed_icd10(code: str) -> bool:
    """True if the normalised ``code`` has the form of an ICD-10-SE code."""
    return bool(ICD10_PATTERN.match(code))


def substance_group(code: str) -> str | None:
    """The F10–F19 group of a normalised ICD-10 code, else None."""
    if len(code) >= 3 and code[0] == "F" and code[1] == "1" and code[2].isdigit():
        return code[:3]
    return None


def clinical_state(code: str) -> str | None:
    """The fourth character (clinical state) of an F10–F19 code, else None."""
    if substance_group(code) and len(code) >= 4:
        return code[3]
    return None


@dataclass(frozen=True)
class CodeSystems:
    """Loaded code tables with their versions."""

    substance_groups: dict[str, dict]
    clinical_states: dict[str, dict]
    psychiatric_groups: dict[str, dict]
    kva: dict[str, dict]
    atc: dict[str, dict]
    versions: dict[str, str] = field(default_factory=dict)

    def psychiatric_group(self, code: str) -> str | None:
        """Co-occurring psychiatric group id (``mood``, ``adhd``…) of a normalised code."""
        for group, spec in self.psychiatric_groups.items():
            if any(code.startswith(p) for p in spec["prefixes"]):
                return group
        return None

    def atc_class(self, atc: str) -> str | None:
        """Class of a known ATC code (e.g. ``opioid_agonist_treatment``), else None."""
        spec = self.atc.get(atc)
        return spec["class"] if spec else None

    def atc_codes_of_class(self, cls: str) -> list[str]:
        """All known ATC codes of a class."""
        return sorted(c for c, s in self.atc.items() if s["class"] == cls)


@cache
def code_systems() -> CodeSystems:
    """The shipped code tables."""
    icd = load_yaml("codes/icd10.yaml")
    kva = load_yaml("codes/kva.yaml")
    atc = load_yaml("codes/atc.yaml")
    return CodeSystems(
        substance_groups=icd["substance_groups"],
        clinical_states=icd["clinical_states"],
        psychiatric_groups=icd["psychiatric_groups"],
        kva=kva["codes"],
        atc=atc["codes"],
        versions={"ICD-10-SE": icd["version"], "KVÅ": kva["version"], "ATC": atc["version"]},
    )
