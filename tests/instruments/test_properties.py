"""Property-based tests (hypothesis): ranges, missing-item rules, change symmetry."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.instruments.helpers import REGISTRY, get
from utfall.instruments import (
    InstrumentDefinition,
    InvalidAnswersError,
    change,
    score,
    validate_answers,
)

SMALL = settings(max_examples=60, deadline=None)

TOTAL_SCORED = ["audit", "audit-c", "dudit", "gad-7", "phq-9", "who-5"]


def complete_answers(definition: InstrumentDefinition) -> st.SearchStrategy[dict[str, int]]:
    """Complete, valid answers to every numeric item."""
    parts = {}
    for item in definition.numeric_items:
        allowed = item.allowed_values
        if allowed is None:
            lo, hi = item.value_range
            parts[item.linkId] = st.integers(lo, hi)
        else:
            parts[item.linkId] = st.sampled_from(allowed)
    return st.fixed_dictionaries(parts)


@pytest.mark.parametrize("instrument", TOTAL_SCORED)
@SMALL
@given(data=st.data(), sex=st.sampled_from(["M", "F"]), age=st.integers(16, 90))
def test_complete_answers_score_within_range(
    instrument: str, data: st.DataObject, sex: str, age: int
) -> None:
    definition = get(instrument)
    values = data.draw(complete_answers(definition))
    assert validate_answers(definition, values) == []
    result = score(definition, values, sex=sex, age=age)
    assert definition.scoring.total is not None
    lo, hi = definition.scale_range(definition.scoring.total)
    assert result.total is not None and lo <= result.total <= hi
    assert result.band is not None  # bands cover the whole range for every sex and age
    for sub in definition.scoring.subscales:
        s_lo, s_hi = definition.scale_range(sub)
        value = result.subscales[sub.id]
        assert value is not None and s_lo <= value <= s_hi
    if definition.scoring.subscales and all(
        s.aggregate == "sum" for s in definition.scoring.subscales
    ):
        assert sum(v or 0 for v in result.subscales.values()) == result.total


@SMALL
@given(data=st.data())
def test_life_situation_subscales_within_range(data: st.DataObject) -> None:
    definition = get("life-situation")
    values = data.draw(complete_answers(definition))
    result = score(definition, values)
    for sub in definition.scoring.subscales:
        lo, hi = definition.scale_range(sub)
        assert lo <= result.subscales[sub.id] <= hi  # type: ignore[operator]


@pytest.mark.parametrize(("instrument", "max_missing"), [("phq-9", 2), ("gad-7", 1)])
@SMALL
@given(data=st.data())
def test_prorating_rule(instrument: str, max_missing: int, data: st.DataObject) -> None:
    """Kroenke/Spitzer-style prorating: ≤ N missing → mean × item count, else no score."""
    definition = get(instrument)
    values: dict[str, int | None] = dict(data.draw(complete_answers(definition)))
    n_items = len(values)
    missing = data.draw(st.sets(st.sampled_from(sorted(values)), max_size=n_items - 1))
    for key in missing:
        values[key] = None
    result = score(definition, values)
    problems = validate_answers(definition, values)
    if len(missing) <= max_missing:
        answered = [v for v in values.values() if v is not None]
        expected = math.floor(sum(answered) * n_items / len(answered) + 0.5)
        assert result.total == expected
        assert 0 <= result.total <= 3 * n_items
        assert all(p.severity == "warning" for p in problems)
    else:
        assert result.total is None and result.band is None
        assert any(p.code == "too_many_missing" and p.severity == "error" for p in problems)


@pytest.mark.parametrize("instrument", ["audit", "dudit", "who-5"])
@SMALL
@given(data=st.data())
def test_no_prorating_when_not_allowed(instrument: str, data: st.DataObject) -> None:
    definition = get(instrument)
    values: dict[str, int | None] = dict(data.draw(complete_answers(definition)))
    # item 9 and later are always asked in AUDIT; any item in DUDIT and WHO-5
    key = data.draw(st.sampled_from([i.linkId for i in definition.numeric_items][-2:]))
    values[key] = None
    assert score(definition, values).total is None


@pytest.mark.parametrize("instrument", TOTAL_SCORED)
@SMALL
@given(data=st.data(), bad=st.integers(-50, 50))
def test_invalid_value_is_named(instrument: str, data: st.DataObject, bad: int) -> None:
    definition = get(instrument)
    values = data.draw(complete_answers(definition))
    item = data.draw(st.sampled_from(definition.numeric_items))
    allowed = item.allowed_values or []
    if bad in allowed or (not allowed and item.value_range[0] <= bad <= item.value_range[1]):
        return
    values[item.linkId] = bad
    problems = validate_answers(definition, values)
    assert [p.link_id for p in problems] == [item.linkId]
    with pytest.raises(InvalidAnswersError):
        score(definition, values)


@pytest.mark.parametrize("instrument", TOTAL_SCORED)
@SMALL
@given(data=st.data())
def test_change_is_antisymmetric(instrument: str, data: st.DataObject) -> None:
    definition = get(instrument)
    a = data.draw(complete_answers(definition))
    b = data.draw(complete_answers(definition))
    forward, backward = change(definition, a, b), change(definition, b, a)
    assert forward.total is not None and backward.total is not None
    assert forward.total.difference == -backward.total.difference  # type: ignore[operator]
    flipped = {"improved": "worsened", "worsened": "improved", "unchanged": "unchanged"}
    assert backward.total.outcome == flipped[forward.total.outcome]  # type: ignore[index]
    assert forward.total.reliable == backward.total.reliable


def test_registry_is_complete() -> None:
    assert set(TOTAL_SCORED) | {"life-situation"} == set(REGISTRY.ids())
