"""The one generic engine: validate answers, score them and compare two scores.

Nothing here knows a particular instrument; all rules come from the
:class:`~utfall.instruments.models.InstrumentDefinition`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from utfall.instruments.models import (
    Direction,
    EnableWhen,
    InstrumentDefinition,
    Item,
    LocalText,
    Scale,
)

Answer = int | str | bool | float | None
Number = int | float


class Problem(BaseModel):
    """One problem with a set of answers; ``link_id`` names the item (or the scale)."""

    model_config = ConfigDict(frozen=True)

    link_id: str | None
    code: str
    severity: Literal["error", "warning"] = "error"
    sv: str
    en: str

    def __str__(self) -> str:
        where = f"{self.link_id}: " if self.link_id else ""
        return f"{where}{self.sv} / {self.en}"


class InvalidAnswersError(ValueError):
    """Answers that cannot be scored (a value out of range, not allowed, unknown item…)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class Score(BaseModel):
    """The result of scoring one set of answers."""

    instrument: str
    version: str
    total: Number | None
    transform_id: str | None = None
    transformed: Number | None = None
    subscales: dict[str, Number | None]
    band: str | None = None
    band_label: LocalText | None = None
    band_provisional: bool = False
    prorated: list[str] = []
    missing: list[str] = []
    flags: list[str] = []
    items: dict[str, int | None] = {}

    def summary(self) -> dict[str, object]:
        """The compact form ``{"instrument", "total", "subscales", "band"}``."""
        return {
            "instrument": self.instrument,
            "total": self.total,
            "subscales": dict(self.subscales),
            "band": self.band,
        }


class MeasureChange(BaseModel):
    """Change in one measure (the total or a subscale) from ``before`` to ``after``."""

    before: Number | None
    after: Number | None
    difference: Number | None
    direction: Direction
    outcome: Literal["improved", "worsened", "unchanged"] | None
    rci: float | None = None
    reliable: bool | None = None
    reliable_outcome: (
        Literal["reliably_improved", "reliably_worsened", "no_reliable_change"] | None
    ) = None


class Change(BaseModel):
    """Change between two scorings of the same instrument."""

    instrument: str
    total: MeasureChange | None
    subscales: dict[str, MeasureChange]
    band_before: str | None = None
    band_after: str | None = None


# -- answers ---------------------------------------------------------------------------

_VALUE_CODES = {"unknown_item", "not_integer", "not_allowed", "out_of_range", "not_text",
                "too_long"}
_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}


def _problem(link_id: str | None, code: str, sv: str, en: str, severity: str = "error") -> Problem:
    return Problem(link_id=link_id, code=code, sv=sv, en=en, severity=severity)  # type: ignore[arg-type]


def _as_int(value: Answer) -> int | None:
    """An integer answer, or None if the value is not an integer."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit():
            return int(text)
    return None


def _is_blank(value: object) -> bool:
    """None, an empty string or NaN (as pandas gives for empty cells)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def _check_value(item: Item, value: Answer) -> tuple[int | str | None, Problem | None]:
    """Normalised value of one answer, or a problem."""
    if item.type == "string":
        if not isinstance(value, str):
            return None, _problem(item.linkId, "not_text", "svaret ska vara text",
                                  "the answer must be text")
        if item.maxLength is not None and len(value) > item.maxLength:
            return None, _problem(item.linkId, "too_long",
                                  f"texten är längre än {item.maxLength} tecken",
                                  f"the text is longer than {item.maxLength} characters")
        return value, None
    number = _as_int(value)
    if number is None:
        return None, _problem(item.linkId, "not_integer",
                              f"{value!r} är inte ett heltal", f"{value!r} is not an integer")
    allowed = item.allowed_values
    if allowed is not None:
        if number not in allowed:
            shown = ", ".join(str(v) for v in allowed)
            return None, _problem(item.linkId, "not_allowed",
                                  f"{number} är inte ett tillåtet svar (tillåtna: {shown})",
                                  f"{number} is not an allowed answer (allowed: {shown})")
    else:
        lo, hi = item.value_range
        if not lo <= number <= hi:
            return None, _problem(item.linkId, "out_of_range",
                                  f"{number} ligger utanför {lo}–{hi}",
                                  f"{number} is outside {lo}–{hi}")
    return number, None


def _normalise(
    definition: InstrumentDefinition, answers: Mapping[str, Answer]
) -> tuple[dict[str, int | str | None], list[Problem]]:
    known = {i.linkId: i for i in definition.items}
    values: dict[str, int | str | None] = {i.linkId: None for i in definition.items}
    problems: list[Problem] = []
    for link_id, raw in answers.items():
        item = known.get(link_id)
        if item is None and _is_blank(raw):
            continue  # an empty column of a wide extract
        if item is None:
            problems.append(_problem(link_id, "unknown_item",
                                     f"okänd fråga i {definition.id}",
                                     f"unknown item of {definition.id}"))
            continue
        if _is_blank(raw):
            continue
        value, problem = _check_value(item, raw)
        if problem:
            problems.append(problem)
        values[link_id] = value
    return values, problems


def _condition(cond: EnableWhen, values: Mapping[str, int | str | None],
               enabled: Mapping[str, bool]) -> bool:
    value = values.get(cond.question) if enabled.get(cond.question, True) else None
    if cond.operator == "exists":
        return (value is not None) == bool(cond.answer if cond.answer is not None else True)
    if value is None or isinstance(value, str):
        return False
    return bool(_OPS[cond.operator](value, int(cond.answer)))  # type: ignore[arg-type]


def enabled_items(
    definition: InstrumentDefinition, values: Mapping[str, int | str | None]
) -> dict[str, bool]:
    """Which items are asked, given the answers (FHIR ``enableWhen`` semantics)."""
    enabled: dict[str, bool] = {}
    for item in definition.items:
        if not item.enableWhen:
            enabled[item.linkId] = True
            continue
        results = [_condition(c, values, enabled) for c in item.enableWhen]
        enabled[item.linkId] = all(results) if item.enableBehavior == "all" else any(results)
    return enabled


def _scales(definition: InstrumentDefinition) -> list[tuple[str, Scale]]:
    scales: list[tuple[str, Scale]] = []
    if definition.scoring.total is not None:
        scales.append(("total", definition.scoring.total))
    scales.extend((s.id, s) for s in definition.scoring.subscales)
    return scales


def validate_answers(
    definition: InstrumentDefinition, answers: Mapping[str, Answer]
) -> list[Problem]:
    """Every problem with ``answers`` (keys are linkIds such as ``item_1``).

    Errors: unknown item, not an integer, value not allowed or out of range, text too
    long, a required item missing where the missing-item rule allows no score
    (``required_missing``), a scale with more missing items than allowed
    (``too_many_missing``). Warnings: a missing item that will be prorated
    (``missing_prorated``), an optional scale left without a score.
    """
    values, problems = _normalise(definition, answers)
    invalid = {p.link_id for p in problems}
    enabled = enabled_items(definition, values)
    missing = {
        i.linkId for i in definition.numeric_items
        if values[i.linkId] is None and enabled[i.linkId] and i.linkId not in invalid
    }
    unscorable: set[str] = set()
    prorated: set[str] = set()
    for name, scale in _scales(definition):
        rule = scale.missing or definition.scoring.missing
        items = definition.scale_items(scale)
        scale_missing = {i.linkId for i in items if i.linkId in missing}
        count = len(scale_missing)
        if count == 0:
            continue
        if count > rule.max_missing:
            unscorable |= scale_missing
            required = any(i.required for i in items if i.linkId in missing)
            problems.append(_problem(
                name, "too_many_missing",
                f"{count} obesvarade frågor, högst {rule.max_missing} får saknas – ingen poäng",
                f"{count} unanswered items, at most {rule.max_missing} may be missing – no score",
                "error" if required else "warning"))
        else:
            prorated |= scale_missing
    for item in definition.items:
        if item.linkId in invalid or not (
            item.required and enabled[item.linkId] and values[item.linkId] is None
        ):
            continue
        if item.linkId in unscorable or (item.numeric is False) or item.linkId not in prorated:
            problems.append(_problem(item.linkId, "required_missing",
                                     "obligatorisk fråga saknar svar",
                                     "required item is not answered"))
        else:
            problems.append(_problem(item.linkId, "missing_prorated",
                                     "saknar svar; poängen räknas om (prorateras)",
                                     "not answered; the score is prorated", "warning"))
    return problems


# -- scoring ---------------------------------------------------------------------------


def _tidy(value: float) -> Number:
    """An int when the value is integral, else a float rounded to 4 decimals."""
    if float(value).is_integer():
        return int(value)
    return round(value, 4)


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _scale_value(
    definition: InstrumentDefinition, scale: Scale, values: Mapping[str, int | str | None],
    enabled: Mapping[str, bool],
) -> tuple[Number | None, bool]:
    """Value of a scale and whether it was prorated."""
    items = definition.scale_items(scale)
    scores: list[int] = []
    n_missing = 0
    for item in items:
        value = values.get(item.linkId)
        if value is None:
            if enabled[item.linkId]:
                n_missing += 1
            else:
                scores.append(item.disabledScore)
            continue
        scores.append(item.item_score(int(value)))
    rule = scale.missing or definition.scoring.missing
    if n_missing > rule.max_missing or not scores:
        return None, False
    if scale.aggregate == "max":
        return _tidy(max(scores)), n_missing > 0
    if scale.aggregate == "mean":
        return _tidy(sum(scores) / len(scores)), n_missing > 0
    total: float = sum(scores)
    if n_missing:
        total = total * len(items) / len(scores)
        if rule.rounding == "nearest":
            total = _round_half_up(total)
    return _tidy(total), n_missing > 0


def _normalise_sex(sex: str | None) -> str | None:
    if sex is None:
        return None
    key = sex.strip().upper()
    mapping = {"M": "M", "MAN": "M", "MALE": "M", "F": "F", "K": "F", "KVINNA": "F",
               "FEMALE": "F", "W": "F"}
    if key not in mapping:
        raise ValueError(f"okänt kön / unknown sex: {sex!r} (M|F)")
    return mapping[key]


def score(
    definition: InstrumentDefinition,
    answers: Mapping[str, Answer],
    sex: str | None = None,
    age: int | None = None,
) -> Score:
    """Score ``answers``: total, subscales, transform, band for the person's sex and age.

    Missing items follow the instrument's missing-item rule (a scale that cannot be
    scored is None). Raises :class:`InvalidAnswersError` for invalid values.
    """
    values, problems = _normalise(definition, answers)
    errors = [p for p in problems if p.code in _VALUE_CODES]
    if errors:
        raise InvalidAnswersError(errors)
    sex = _normalise_sex(sex)
    enabled = enabled_items(definition, values)
    scoring = definition.scoring
    prorated: list[str] = []
    total: Number | None = None
    if scoring.total is not None:
        total, was_prorated = _scale_value(definition, scoring.total, values, enabled)
        if was_prorated:
            prorated.append("total")
    subscales: dict[str, Number | None] = {}
    for sub in scoring.subscales:
        subscales[sub.id], was_prorated = _scale_value(definition, sub, values, enabled)
        if was_prorated:
            prorated.append(sub.id)
    transformed = None
    if scoring.transform is not None and total is not None:
        transformed = _tidy(scoring.transform.apply(total))
    result = Score(
        instrument=definition.id,
        version=definition.version,
        total=total,
        transform_id=scoring.transform.id if scoring.transform else None,
        transformed=transformed,
        subscales=subscales,
        prorated=prorated,
        missing=[i.linkId for i in definition.numeric_items
                 if values[i.linkId] is None and enabled[i.linkId]],
        flags=[f.id for f in scoring.flags if f.item is not None and f.min is not None
               and isinstance(values.get(f.item), int) and values[f.item] >= f.min],  # type: ignore[operator]
        items={i.linkId: values[i.linkId] for i in definition.numeric_items},  # type: ignore[misc]
    )
    if total is None:
        return result
    for band_set in definition.bands:
        if not band_set.when.matches(sex, age):
            continue
        value = total if band_set.measure == "total" else transformed
        if value is None:
            break
        for band in band_set.bands:
            if band.contains(value):
                return result.model_copy(update={
                    "band": band.id, "band_label": band.label,
                    "band_provisional": band_set.provisional,
                    "flags": [*result.flags, *(f.id for f in scoring.flags
                                               if band.id in f.bands)],
                })
        break
    return result


# -- change ----------------------------------------------------------------------------


def _measure_change(
    before: Number | None, after: Number | None, direction: Direction,
    definition: InstrumentDefinition | None = None,
) -> MeasureChange:
    if before is None or after is None:
        return MeasureChange(before=before, after=after, difference=None, direction=direction,
                             outcome=None)
    diff = after - before
    better = -diff if direction == "lower_is_better" else diff
    outcome = "improved" if better > 0 else "worsened" if better < 0 else "unchanged"
    change = MeasureChange(before=before, after=after, difference=_tidy(diff),
                           direction=direction, outcome=outcome)  # type: ignore[arg-type]
    rc = definition.reliable_change if definition else None
    if rc is None:
        return change
    rci = None
    if rc.sd is not None and rc.reliability is not None:
        s_diff = math.sqrt(2) * rc.sd * math.sqrt(1 - rc.reliability)
        rci = diff / s_diff
        reliable = abs(rci) > rc.z
    else:
        assert rc.threshold is not None
        reliable = abs(diff) >= rc.threshold
    if reliable:
        reliable_outcome = "reliably_improved" if better > 0 else "reliably_worsened"
    else:
        reliable_outcome = "no_reliable_change"
    return change.model_copy(update={
        "rci": None if rci is None else round(rci, 4), "reliable": reliable,
        "reliable_outcome": reliable_outcome,
    })


def change(
    definition: InstrumentDefinition,
    before: Score | Mapping[str, Answer],
    after: Score | Mapping[str, Answer],
) -> Change:
    """Change from ``before`` to ``after`` (Scores, or answers to be scored).

    ``outcome`` follows the instrument's direction (for AUDIT lower is better, for
    WHO-5 higher is better). For the total, the reliable change index
    (Jacobson–Truax) or threshold is applied when the file gives ``reliable_change``.
    """
    b = before if isinstance(before, Score) else score(definition, before)
    a = after if isinstance(after, Score) else score(definition, after)
    for s in (b, a):
        if s.instrument != definition.id:
            raise ValueError(f"score of {s.instrument}, not {definition.id}")
    scoring = definition.scoring
    total = None
    if scoring.total is not None:
        direction = scoring.total.direction or scoring.direction
        total = _measure_change(b.total, a.total, direction, definition)
    subs = {
        sub.id: _measure_change(b.subscales.get(sub.id), a.subscales.get(sub.id),
                                sub.direction or scoring.direction)
        for sub in scoring.subscales
    }
    return Change(instrument=definition.id, total=total, subscales=subs,
                  band_before=b.band, band_after=a.band)


def answers_from_list(values: Sequence[Answer]) -> dict[str, Answer]:
    """Map a list of answers onto ``item_1``, ``item_2``… (extra values become unknown items)."""
    return {f"item_{n}": v for n, v in enumerate(values, start=1)}


def answers_from_row(row: Mapping[str, object]) -> dict[str, Answer]:
    """The ``item_*`` answers of an extract row; other columns are left out.

    Empty cells (None, "", NaN) become None; empty ``item_*`` columns beyond the
    instrument's items are ignored by validation and scoring.
    """
    return {
        key: (None if _is_blank(value) else value)  # type: ignore[misc]
        for key, value in row.items()
        if key.startswith("item_")
    }
