"""The indicator catalogue: Pydantic models for ``content/indicators/*.yaml``.

An indicator is data, not code. The models below validate the YAML; the
compiler in :mod:`utfall.analytics.semantics.compiler` turns one validated definition into
one Ibis expression over the canonical tables. See ``docs/indicators.md``.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from utfall.content import content_text, list_content

Kind = Literal["proportion", "change", "retention", "time_to", "count", "rate"]
Source = Literal["contact", "enrolment", "assessment"]
PeriodAnchor = Literal[
    "event_date",  # calendar year of the contact/assessment date
    "start_date",  # calendar year the enrolment started
    "end_date",  # calendar year the enrolment / inpatient stay ended
    "active",  # enrolment active at any day of the calendar year
    "due_date",  # calendar year in which start + offset (follow-up due) falls
    "followup_date",  # calendar year of the follow-up measurement (change)
]
UnitAttribution = Literal["event_unit", "enrolment_unit", "assessment_unit"]
Breakdown = Literal[
    "total",
    "unit_id",
    "organisation",
    "principal_type",
    "care_level",
    "dx_group",
    "sex",
    "age_band",
    "municipality",
]
ALL_BREAKDOWNS: tuple[str, ...] = get_args(Breakdown)  # in the order of the Literal


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """A text in Swedish and English."""

    sv: str
    en: str


class PopulationFilter(_Strict):
    """Who (or which events) form the denominator."""

    source: Source = "contact"
    dx_groups: list[str] | None = None  # contact.dx_group in (F10..F19)
    dx_prefixes: list[str] | None = None  # contact.main_dx starts with one of these (F102)
    contact_types: list[str] | None = None
    require_psych_group: bool = False  # contact.psych_groups not empty
    programmes: list[str] | None = None  # enrolment.programme in
    instruments: list[str] | None = None  # assessment instruments (change kind)
    residents_only: bool = False  # rate: person.municipality in the population table
    # enrolment source: count persons (a person with overlapping enrolments once), not
    # enrolments; a unit cell counts the person's enrolments at that unit
    count_persons: bool = False


class NumeratorEvent(_Strict):
    """The event that puts a member of the population in the numerator."""

    event: Literal[
        "procedure",  # a KVÅ code on the qualifying contact
        "medication",  # a prescription of the ATC classes/prefixes active in the period
        "enrolment_or_medication",  # programme enrolment or medication active in the period
        "psych_contact",  # a contact with a psychiatric main diagnosis in the period
        "end_reason",  # the enrolment ended with one of end_reasons
        "favourable_status",  # continuing at period end, or ended with end_reasons
        "death_in_treatment",  # death_date (person) within the enrolment in the period
        "assessment_in_window",  # an assessment at stage within the window
        "retained",  # enrolment lasted >= window.days (or ended with end_reasons)
        "improved",  # follow-up score below intake score (change)
        "next_contact",  # next contact of contact_types (time_to)
    ]
    kva_codes: list[str] | None = None
    atc_classes: list[str] | None = None
    atc_prefixes: list[str] | None = None
    programmes: list[str] | None = None
    end_reasons: list[str] | None = None
    stages: list[str] | None = None
    contact_types: list[str] | None = None
    psych_prefixes: list[str] | None = None


class Window(_Strict):
    """Time window of the numerator event, in days."""

    days: int | None = None  # retention length
    offset_days: int | None = None  # follow-up due at start + offset
    before_days: int = 0
    after_days: int = 0


class Period(_Strict):
    """Period boundaries: calendar years, placed by ``anchor``."""

    type: Literal["calendar_year"] = "calendar_year"
    anchor: PeriodAnchor = "event_date"


class Change(_Strict):
    """Paired measurements for ``change`` indicators."""

    baseline_stage: str = "intake"
    followup_stages: list[str] = Field(default_factory=lambda: ["month-6", "month-12"])
    statistic: Literal["share_improved", "mean_change"] = "share_improved"
    require_dx_groups: list[str] | None = None  # contact in the intake year with dx_group in


class Indicator(_Strict):
    """One indicator of the catalogue."""

    id: str = Field(pattern=r"^[a-z0-9_.]+$")
    version: int = 1
    kind: Kind
    title: Text
    definition: Text
    direction: Literal["higher", "lower", "none"] = "higher"
    data_source: Text
    population: PopulationFilter
    numerator: NumeratorEvent | None = None
    period: Period = Period()
    unit: UnitAttribution = "event_unit"
    window: Window = Window()
    change: Change | None = None
    statistic: Literal["share", "median"] = "share"  # time_to: share within window.days or median
    per: int = 100_000  # rate multiplier
    target: float | None = None  # target level, same scale as value
    priority: int | None = Field(default=None, ge=1, le=10)
    notes: Text | None = None
    breakdowns: list[Breakdown] | None = None  # breakdowns that make sense (None = all)

    @model_validator(mode="after")
    def _check_kind(self) -> Indicator:
        kind = self.kind
        needs_num = {"proportion", "retention"}
        if kind in needs_num and self.numerator is None:
            raise ValueError(f"{self.id}: kind {kind} needs a numerator")
        if kind == "change" and self.change is None:
            raise ValueError(f"{self.id}: kind change needs a 'change' block")
        if kind == "retention" and not self.window.days:
            raise ValueError(f"{self.id}: retention needs window.days")
        if kind == "time_to" and (self.numerator is None or self.numerator.event != "next_contact"):
            raise ValueError(f"{self.id}: time_to needs numerator.event next_contact")
        if kind == "time_to" and self.statistic == "share" and not self.window.days:
            raise ValueError(f"{self.id}: time_to share needs window.days")
        event = self.numerator.event if self.numerator else None
        if event == "assessment_in_window" and self.window.offset_days is None:
            raise ValueError(f"{self.id}: assessment_in_window needs window.offset_days")
        return self

    @property
    def allowed_breakdowns(self) -> tuple[str, ...]:
        """Breakdowns this indicator can be computed for."""
        if self.breakdowns is not None:
            return tuple(self.breakdowns)
        if self.kind == "rate":
            return ("total", "sex", "municipality")
        if self.population.source != "contact":
            return tuple(b for b in ALL_BREAKDOWNS if b != "dx_group")
        return ALL_BREAKDOWNS


class ExternalIndicator(_Strict):
    """An indicator whose data lies outside the analysis tables (the register delivery
    log): defined here as data, computed by the named ``source`` over the operational
    store and protected in the same release as every other indicator."""

    id: str = Field(pattern=r"^[a-z0-9_.]+$")
    version: int = 1
    kind: Literal["proportion"] = "proportion"
    source: Literal["register_coverage", "goal_review"]
    mapping: str = ""  # register_coverage: content/registers/<mapping>-*.yaml
    title: Text
    definition: Text
    direction: Literal["higher", "lower", "none"] = "higher"
    data_source: Text
    target: float | None = None
    priority: int | None = Field(default=None, ge=1, le=10)
    notes: Text | None = None
    breakdowns: list[Breakdown] = ["total", "unit_id"]

    @property
    def allowed_breakdowns(self) -> tuple[str, ...]:
        """Breakdowns the source computes."""
        return tuple(self.breakdowns)


class Catalogue(_Strict):
    """The validated catalogue with a version derived from its content: ``indicators``
    computed by the engine over the analysis tables, ``external`` ones by their source."""

    version: str
    indicators: tuple[Indicator, ...]
    external: tuple[ExternalIndicator, ...] = ()

    @property
    def every(self) -> tuple[Indicator | ExternalIndicator, ...]:
        """Engine indicators, then external ones (what a release publishes)."""
        return (*self.indicators, *self.external)

    def describe(self, indicator_id: str) -> Indicator | ExternalIndicator:
        """Any indicator's definition, engine or external (KeyError if unknown)."""
        for ind in self.every:
            if ind.id == indicator_id:
                return ind
        raise KeyError(indicator_id)

    def get(self, indicator_id: str) -> Indicator:
        """The indicator with ``indicator_id`` (KeyError if unknown)."""
        for ind in self.indicators:
            if ind.id == indicator_id:
                return ind
        raise KeyError(indicator_id)

    @property
    def ids(self) -> list[str]:
        """Indicator ids in catalogue order."""
        return [i.id for i in self.indicators]


def _parse_external(doc: object, origin: str) -> list[ExternalIndicator]:
    items = doc.get("external_indicators", []) if isinstance(doc, dict) else []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError(f"{origin}: external_indicators must be a list of mappings")
    return [ExternalIndicator.model_validate(i) for i in items]


def _parse(doc: object, origin: str) -> list[Indicator]:
    if isinstance(doc, dict) and "external_indicators" in doc and "indicators" not in doc:
        return []
    if isinstance(doc, dict) and "indicators" in doc:
        items = doc["indicators"]
    elif isinstance(doc, list):
        items = doc
    else:
        items = [doc]
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"{origin}: an indicator must be a mapping")
        clean = {k: v for k, v in item.items() if not k.startswith("x-")}  # YAML anchors
        out.append(Indicator.model_validate(clean))
    return out


def build_catalogue(texts: dict[str, str]) -> Catalogue:
    """Validate indicator YAML texts (name → text) into a :class:`Catalogue`."""
    indicators: list[Indicator] = []
    external: list[ExternalIndicator] = []
    digest = hashlib.sha256()
    for name in sorted(texts):
        digest.update(name.encode() + b"\0" + texts[name].encode())
        doc = yaml.safe_load(texts[name])
        indicators.extend(_parse(doc, name))
        external.extend(_parse_external(doc, name))
    seen: set[str] = set()
    every: list[Indicator | ExternalIndicator] = [*indicators, *external]
    for one in every:
        if one.id in seen:
            raise ValueError(f"duplicate indicator id {one.id}")
        seen.add(one.id)
    return Catalogue(version=f"1+{digest.hexdigest()[:10]}", indicators=tuple(indicators),
                     external=tuple(external))


@cache
def load_catalogue(extra_dir: str | None = None) -> Catalogue:
    """The shipped catalogue, plus a region's own ``*.yaml`` files in ``extra_dir``."""
    texts = {p: content_text(p) for p in list_content("indicators")}
    if extra_dir:
        for path in sorted(Path(extra_dir).glob("*.yaml")):
            texts[f"extra/{path.name}"] = path.read_text(encoding="utf-8")
    return build_catalogue(texts)
