"""Pydantic models of an instrument definition (``content/instruments/<id>.yaml``).

The file is shaped like a FHIR R4 Questionnaire (``id``, ``version``, ``title``,
``items`` with ``linkId``, ``text``, ``type``, ``answerOption``, ``required``,
``enableWhen``) plus Utfall's own scoring, interpretation bands and reliable-change
data. Everything is validated when loaded so a bad file fails with a clear message.
"""

from __future__ import annotations

import itertools
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ITEM_ID = re.compile(r"^item_([1-9]\d*)$")
Direction = Literal["lower_is_better", "higher_is_better"]
Sex = Literal["M", "F"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalText(_Model):
    """A text in Swedish (first) and English."""

    sv: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def __str__(self) -> str:
        return f"{self.sv} / {self.en}"


class AnswerOption(_Model):
    """One allowed answer: the stored ``value`` and its display text."""

    value: int
    display: LocalText


class EnableWhen(_Model):
    """FHIR-style condition: the item is asked only when another answer matches."""

    question: str
    operator: Literal["exists", "=", "!=", ">", "<", ">=", "<="]
    answer: int | bool | None = None

    @model_validator(mode="after")
    def _answer_given(self) -> EnableWhen:
        if self.operator != "exists" and self.answer is None:
            raise ValueError(
                f"enableWhen on {self.question}: operator {self.operator} needs answer"
            )
        return self


ItemType = Literal["integer", "choice", "boolean", "string"]

_BOOLEAN_OPTIONS = (
    AnswerOption(value=0, display=LocalText(sv="Nej", en="No")),
    AnswerOption(value=1, display=LocalText(sv="Ja", en="Yes")),
)


class Item(_Model):
    """One question. Numeric items have linkId ``item_N`` (the extract's ``item_N`` column)."""

    linkId: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: LocalText
    type: ItemType
    required: bool = True
    answerOption: tuple[AnswerOption, ...] | None = None
    minValue: int | None = None
    maxValue: int | None = None
    maxLength: int | None = None
    unit: LocalText | None = None
    reverse: bool = Field(default=False, description="Score as (min + max) - value")
    enableWhen: tuple[EnableWhen, ...] = ()
    enableBehavior: Literal["all", "any"] = "all"
    disabledScore: int = Field(default=0, description="Score of an unanswered disabled item")

    @model_validator(mode="after")
    def _check_type(self) -> Item:
        numeric = self.type != "string"
        if numeric != bool(ITEM_ID.match(self.linkId)):
            raise ValueError(
                f"{self.linkId}: numeric items must have linkId item_N and text items must not"
            )
        if self.type == "choice":
            if not self.answerOption:
                raise ValueError(f"{self.linkId}: a choice item needs answerOption")
            values = [o.value for o in self.answerOption]
            if len(set(values)) != len(values):
                raise ValueError(f"{self.linkId}: duplicate answerOption values")
        if self.type == "integer":
            if self.minValue is None or self.maxValue is None:
                raise ValueError(f"{self.linkId}: an integer item needs minValue and maxValue")
            if self.minValue > self.maxValue:
                raise ValueError(f"{self.linkId}: minValue > maxValue")
        if self.type == "boolean" and self.answerOption and (
            sorted(o.value for o in self.answerOption) != [0, 1]
        ):
            raise ValueError(f"{self.linkId}: boolean answerOption values must be 0 and 1")
        if self.type == "string" and self.reverse:
            raise ValueError(f"{self.linkId}: a text item cannot be reversed")
        return self

    @property
    def numeric(self) -> bool:
        """True for items stored in an ``item_N`` column."""
        return self.type != "string"

    @property
    def options(self) -> tuple[AnswerOption, ...]:
        """Allowed answers (booleans get Nej/No = 0, Ja/Yes = 1 unless given)."""
        if self.answerOption:
            return self.answerOption
        return _BOOLEAN_OPTIONS if self.type == "boolean" else ()

    @property
    def allowed_values(self) -> list[int] | None:
        """Allowed raw values, or None for a range (integer) or text item."""
        if self.type in ("choice", "boolean"):
            return [o.value for o in self.options]
        return None

    @property
    def value_range(self) -> tuple[int, int]:
        """Smallest and largest raw value of a numeric item."""
        if self.type == "integer":
            assert self.minValue is not None and self.maxValue is not None
            return self.minValue, self.maxValue
        values = self.allowed_values or [0]
        return min(values), max(values)

    def item_score(self, value: int) -> int:
        """Score of a raw answer (reversed if the item says so)."""
        if self.reverse:
            lo, hi = self.value_range
            return lo + hi - value
        return value

    @property
    def score_range(self) -> tuple[int, int]:
        """Smallest and largest score of the item."""
        lo, hi = self.value_range
        return (lo, hi)


class MissingRule(_Model):
    """What to do with unanswered (enabled) items of a scale.

    ``max_missing`` items may be missing; with ``method: prorate`` the sum is then scaled
    to the full number of items (mean of answered items × item count). More missing items,
    or any missing item with ``method: none``, give no score.
    """

    max_missing: int = Field(default=0, ge=0)
    method: Literal["prorate", "none"] = "none"
    rounding: Literal["nearest", "none"] = Field(
        default="nearest", description="Round a prorated score half up to an integer"
    )

    @model_validator(mode="after")
    def _consistent(self) -> MissingRule:
        if self.max_missing > 0 and self.method != "prorate":
            raise ValueError("max_missing > 0 needs method: prorate")
        return self


class Transform(_Model):
    """A linear transform of the total, e.g. WHO-5 raw × 4 = percentage."""

    id: str
    label: LocalText
    multiply: float = 1.0
    add: float = 0.0

    def apply(self, value: float) -> float:
        """The transformed value."""
        return value * self.multiply + self.add


Aggregate = Literal["sum", "mean", "max"]


class Scale(_Model):
    """How a total or subscale is computed from item scores."""

    items: tuple[str, ...] | None = Field(default=None, description="None = all numeric items")
    aggregate: Aggregate = "sum"
    missing: MissingRule | None = Field(default=None, description="Default: scoring.missing")
    direction: Direction | None = Field(default=None, description="Default: scoring.direction")


class Subscale(Scale):
    """A named part score (e.g. AUDIT consumption = items 1–3)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: LocalText
    items: tuple[str, ...]


class Flag(_Model):
    """A result that needs attention: an item answer at or above ``min`` (e.g. PHQ-9
    item 9 ≥ 1), or a total in one of ``bands`` (e.g. AUDIT zone IV)."""

    id: str
    item: str | None = None
    min: int | None = None
    bands: tuple[str, ...] = ()
    label: LocalText

    @model_validator(mode="after")
    def _one_rule(self) -> Flag:
        by_item = self.item is not None and self.min is not None
        if by_item == bool(self.bands) or (self.item is None) != (self.min is None):
            raise ValueError(f"flag {self.id}: give either item and min, or bands")
        return self


class Scoring(_Model):
    """Scoring rules: total, subscales, missing-item rule, transform, direction."""

    total: Scale | None = Field(default_factory=Scale, description="null = no total score")
    subscales: tuple[Subscale, ...] = ()
    missing: MissingRule = Field(default_factory=MissingRule)
    transform: Transform | None = None
    direction: Direction = "lower_is_better"
    flags: tuple[Flag, ...] = ()


class BandCondition(_Model):
    """When a band set applies: sex and/or age bounds (inclusive); empty = always."""

    sex: Sex | None = None
    age_min: int | None = None
    age_max: int | None = None

    def matches(self, sex: str | None, age: int | None) -> bool:
        """True if the person's sex and age meet the condition (unknown never matches)."""
        if self.sex is not None and sex != self.sex:
            return False
        if self.age_min is not None and (age is None or age < self.age_min):
            return False
        return not (self.age_max is not None and (age is None or age > self.age_max))


class Band(_Model):
    """An interpretation band: inclusive ``min``..``max`` (open end when omitted)."""

    id: str
    label: LocalText
    min: float | None = None
    max: float | None = None

    def contains(self, value: float) -> bool:
        """True if ``value`` is in the band."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class BandSet(_Model):
    """Bands for one group of persons; the first matching set in the file wins."""

    when: BandCondition = Field(default_factory=BandCondition)
    measure: str = Field(default="total", description="'total' or the transform id")
    provisional: bool = False
    note: LocalText | None = None
    bands: tuple[Band, ...] = Field(min_length=1)

    @field_validator("bands")
    @classmethod
    def _ordered(cls, bands: tuple[Band, ...]) -> tuple[Band, ...]:
        ids = [b.id for b in bands]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate band ids in one band set")
        for a, b in itertools.pairwise(bands):
            if a.max is None or b.min is None or b.min <= a.max:
                raise ValueError(f"bands {a.id} and {b.id} overlap or are not in rising order")
        return bands


class ReliableChange(_Model):
    """Data for judging reliable change.

    With ``sd`` and ``reliability`` the Jacobson–Truax reliable change index is
    computed: RCI = (after − before) / (√2 · SD · √(1 − r)); |RCI| > ``z`` is reliable.
    With only ``threshold`` a change of at least that many points is reliable.
    """

    sd: float | None = Field(default=None, gt=0)
    reliability: float | None = Field(default=None, gt=0, lt=1)
    threshold: float | None = Field(default=None, gt=0)
    z: float = 1.96
    source: str

    @model_validator(mode="after")
    def _complete(self) -> ReliableChange:
        if (self.sd is None) != (self.reliability is None):
            raise ValueError("reliable_change needs both sd and reliability")
        if self.sd is None and self.threshold is None:
            raise ValueError("reliable_change needs sd + reliability or threshold")
        return self


class Coding(_Model):
    """A code from a standard or local code system (interoperability data)."""

    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    display: str | None = None


class InstrumentCodes(_Model):
    """Standard codes of an instrument (FHIR, registers). Only verified codes belong
    here; without them Utfall uses instrument-local codes (docs/interoperability.md)."""

    questionnaire: Coding | None = Field(default=None, description="panel / form code")
    total: Coding | None = Field(default=None, description="code of the total score")
    source: str | None = Field(default=None, description="where the codes were verified")


class InstrumentDefinition(_Model):
    """A whole instrument file."""

    resourceType: Literal["Questionnaire"] = "Questionnaire"
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: str
    title: LocalText
    licence: LocalText
    status: Literal["active", "draft", "retired"] = "active"
    description: LocalText | None = None
    recall_period: LocalText | None = None
    references: tuple[str, ...] = ()
    override: bool = Field(
        default=False, description="A region file may replace a shipped instrument of the same id"
    )
    items: tuple[Item, ...] = Field(min_length=1)
    scoring: Scoring = Field(default_factory=Scoring)
    bands: tuple[BandSet, ...] = ()
    reliable_change: ReliableChange | None = None
    codes: InstrumentCodes | None = None

    @model_validator(mode="after")
    def _cross_check(self) -> InstrumentDefinition:
        ids = [i.linkId for i in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate linkId")
        numeric = [i.linkId for i in self.items if i.numeric]
        expected = [f"item_{n}" for n in range(1, len(numeric) + 1)]
        if numeric != expected:
            raise ValueError(f"numeric items must be item_1 … item_{len(numeric)} in order")
        seen: set[str] = set()
        for item in self.items:
            for cond in item.enableWhen:
                if cond.question not in seen:
                    raise ValueError(
                        f"{item.linkId}: enableWhen must refer to an earlier item, "
                        f"not {cond.question}"
                    )
            seen.add(item.linkId)
        scales: list[tuple[str, Scale]] = [(s.id, s) for s in self.scoring.subscales]
        if self.scoring.total is not None:
            scales.append(("total", self.scoring.total))
        sub_ids = [s.id for s in self.scoring.subscales]
        if len(set(sub_ids)) != len(sub_ids):
            raise ValueError("duplicate subscale id")
        numeric_set = set(numeric)
        for name, scale in scales:
            for ref in scale.items or ():
                if ref not in numeric_set:
                    raise ValueError(f"scale {name}: {ref} is not a numeric item")
            rule = scale.missing or self.scoring.missing
            count = len(scale.items) if scale.items is not None else len(numeric)
            if rule.max_missing >= count:
                raise ValueError(f"scale {name}: max_missing must be below its item count")
        band_ids = {b.id for band_set in self.bands for b in band_set.bands}
        for flag in self.scoring.flags:
            if flag.item is not None and flag.item not in numeric_set:
                raise ValueError(f"flag {flag.id}: {flag.item} is not a numeric item")
            for band_id in flag.bands:
                if band_id not in band_ids:
                    raise ValueError(f"flag {flag.id}: unknown band {band_id!r}")
        transform_ids = {"total"}
        if self.scoring.transform:
            transform_ids.add(self.scoring.transform.id)
        for band_set in self.bands:
            if band_set.measure not in transform_ids:
                raise ValueError(f"band set measure {band_set.measure!r}: unknown score")
        if self.bands and self.scoring.total is None:
            raise ValueError("bands need a total score")
        return self

    @property
    def numeric_items(self) -> list[Item]:
        """Items stored in ``item_N`` columns, in order."""
        return [i for i in self.items if i.numeric]

    def item(self, link_id: str) -> Item:
        """The item with ``link_id`` (KeyError if unknown)."""
        for i in self.items:
            if i.linkId == link_id:
                return i
        raise KeyError(link_id)

    def scale_items(self, scale: Scale) -> list[Item]:
        """The items of a total or subscale."""
        if scale.items is None:
            return self.numeric_items
        return [self.item(ref) for ref in scale.items]

    def scale_range(self, scale: Scale) -> tuple[float, float]:
        """Smallest and largest possible value of a scale."""
        ranges = [i.score_range for i in self.scale_items(scale)]
        if scale.aggregate == "sum":
            return float(sum(r[0] for r in ranges)), float(sum(r[1] for r in ranges))
        if scale.aggregate == "max":
            return float(max(r[0] for r in ranges)), float(max(r[1] for r in ranges))
        n = len(ranges)
        return sum(r[0] for r in ranges) / n, sum(r[1] for r in ranges) / n
