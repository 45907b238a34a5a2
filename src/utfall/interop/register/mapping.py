"""The register mapping file: eligibility, form triggers, variables ← canonical
fields, required fields and code lists (validated when loaded)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from utfall.instruments.models import LocalText

SOURCES = ("unit_id", "trigger_date", "treatment_start", "end_reason", "stay_end",
           "person.sex", "person.birth_year", "person.municipality_code", "dx_group",
           "substance_count", "medication", "assessment", "psych_groups", "none")
TRIGGERS = ("established", "enrolment_end", "inpatient_stay")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Established(_Strict):
    contact_types: tuple[str, ...]
    min_visits: int = Field(ge=1)
    within_days: int = Field(ge=0)
    programmes: tuple[str, ...] = ()


class Eligibility(_Strict):
    dx_groups: tuple[str, ...]
    care_levels: tuple[str, ...]
    established: Established


class Form(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: LocalText
    trigger: Literal["established", "enrolment_end", "inpatient_stay"]
    offset_months: int = Field(default=0, ge=0)
    variables: tuple[str, ...]


class Variable(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    source: Literal["unit_id", "trigger_date", "treatment_start", "end_reason", "stay_end",
                    "person.sex", "person.birth_year", "person.municipality_code",
                    "dx_group", "substance_count", "medication", "assessment",
                    "psych_groups", "none"]
    required: bool = False
    code_list: str | None = None
    instrument: str | None = None
    measure: str | None = None
    window_days: tuple[int, int] = (-90, 30)
    atc_prefixes: tuple[str, ...] = ()
    note: str | None = None

    @model_validator(mode="after")
    def _source_fields(self) -> Variable:
        if self.source == "assessment" and not (self.instrument and self.measure):
            raise ValueError(f"{self.id}: source assessment needs instrument and measure")
        if self.source == "medication" and not self.atc_prefixes:
            raise ValueError(f"{self.id}: source medication needs atc_prefixes")
        if self.window_days[0] > self.window_days[1]:
            raise ValueError(f"{self.id}: window_days must be [before, after]")
        return self


class Mapping(_Strict):
    """A whole mapping file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    register_id: str = Field(alias="register", pattern=r"^[a-z][a-z0-9-]*$")
    version: str
    provisional: bool
    title: LocalText
    identity: Literal["person_key", "identity_number"] = "person_key"
    eligibility: Eligibility
    forms: tuple[Form, ...] = Field(min_length=1)
    variables: tuple[Variable, ...]
    code_lists: dict[str, dict[str, str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_check(self) -> Mapping:
        ids = [v.id for v in self.variables]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate variable id")
        forms = [f.id for f in self.forms]
        if len(set(forms)) != len(forms):
            raise ValueError("duplicate form id")
        for form in self.forms:
            for ref in form.variables:
                if ref not in ids:
                    raise ValueError(f"form {form.id}: unknown variable {ref!r}")
        for v in self.variables:
            if v.code_list and v.code_list not in self.code_lists:
                raise ValueError(f"variable {v.id}: unknown code_list {v.code_list!r}")
        return self

    def variable(self, ident: str) -> Variable:
        return next(v for v in self.variables if v.id == ident)

    @property
    def label(self) -> str:
        return f"{self.register_id}-{self.version}"


class MappingError(ValueError):
    """A mapping file that cannot be used: ``file: path: reason`` per problem."""


def _version_key(path: Path) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", path.stem)]


def mapping_files(register: str, folder: Path | None = None) -> list[Path]:
    """The register's mapping files, oldest version first."""
    if folder is None:
        base = resources.files("utfall.content") / "registers"
        folder = Path(str(base))
    return sorted(folder.glob(f"{register}-*.yaml"), key=_version_key)


def load_mapping(register: str, path: str | Path | None = None) -> Mapping:
    """The given mapping file, or the newest shipped version of ``register``."""
    if path is None:
        files = mapping_files(register)
        if not files:
            raise MappingError(f"no mapping file for register {register!r} "
                               f"(content/registers/{register}-<version>.yaml)")
        path = files[-1]
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise MappingError(f"{path}{line}: {exc}") from None
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                 for e in exc.errors()]
        raise MappingError("\n".join(lines)) from None
    if mapping.register_id != register:
        raise MappingError(f"{path}: register is {mapping.register_id!r}, not {register!r}")
    return mapping
