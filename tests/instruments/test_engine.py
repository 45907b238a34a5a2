"""The generic engine: content checks, validation problems, registry, change/RCI."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.instruments.helpers import REGISTRY, answers, get
from utfall.content import load_yaml
from utfall.instruments import (
    ContentError,
    InstrumentRegistry,
    InvalidAnswersError,
    UnknownInstrumentError,
    answers_from_row,
    change,
    load_instrument_file,
    parse_instrument,
    score,
    validate_answers,
)
from utfall.instruments import loading as loading_module

SHIPPED = ["audit", "audit-c", "dudit", "gad-7", "life-situation", "phq-9", "who-5"]


def minimal(**extra: Any) -> dict[str, Any]:
    """A small valid instrument as parsed YAML."""
    data: dict[str, Any] = {
        "id": "demo",
        "version": "1",
        "title": {"sv": "Demo", "en": "Demo"},
        "licence": {"sv": "Fri", "en": "Free"},
        "items": [
            {"linkId": f"item_{n}", "type": "integer", "minValue": 0, "maxValue": 4,
             "text": {"sv": f"Fråga {n}", "en": f"Item {n}"}}
            for n in (1, 2, 3)
        ],
    }
    data.update(extra)
    return data


class TestShippedContent:
    def test_all_instruments_load(self) -> None:
        assert REGISTRY.ids() == SHIPPED

    @pytest.mark.parametrize(
        ("instrument", "items", "maximum"),
        [("audit", 10, 40), ("audit-c", 3, 12), ("dudit", 11, 44), ("phq-9", 9, 27),
         ("gad-7", 7, 21), ("who-5", 5, 25)],
    )
    def test_item_counts_and_ranges(self, instrument: str, items: int, maximum: int) -> None:
        definition = get(instrument)
        assert len(definition.numeric_items) == items
        assert definition.scoring.total is not None
        assert definition.scale_range(definition.scoring.total) == (0, maximum)

    @pytest.mark.parametrize("instrument", ["audit", "dudit"])
    def test_last_two_items_score_0_2_4(self, instrument: str) -> None:
        items = get(instrument).numeric_items
        assert [i.allowed_values for i in items[-2:]] == [[0, 2, 4], [0, 2, 4]]
        assert all(i.allowed_values == [0, 1, 2, 3, 4] for i in items[:-2])

    def test_audit_subscales(self) -> None:
        subs = {s.id: s.items for s in get("audit").scoring.subscales}
        assert subs == {
            "consumption": ("item_1", "item_2", "item_3"),
            "dependence": ("item_4", "item_5", "item_6"),
            "harm": ("item_7", "item_8", "item_9", "item_10"),
        }

    @pytest.mark.parametrize("instrument", SHIPPED)
    def test_texts_in_swedish_and_english(self, instrument: str) -> None:
        definition = get(instrument)
        for item in definition.items:
            assert item.text.sv.strip() and item.text.en.strip()
            assert item.text.sv != item.text.en or len(item.text.sv) < 4
            for option in item.options:
                assert option.display.sv and option.display.en

    def test_life_situation_text_item_is_not_an_item_column(self) -> None:
        definition = get("life-situation")
        text_items = [i for i in definition.items if i.type == "string"]
        assert [i.linkId for i in text_items] == ["goal_text"]
        assert len(definition.numeric_items) == 19
        assert {s.id for s in definition.scoring.subscales} == {
            "substance_use", "health", "occupation", "housing", "crime", "relationships",
            "quality_of_life", "own_goals"}


class TestValidation:
    def test_valid_answers_have_no_problems(self) -> None:
        assert validate_answers(get("audit"), answers(1, 1, 1, 1, 1, 1, 1, 1, 2, 4)) == []

    def test_value_not_allowed(self) -> None:
        problems = validate_answers(get("audit"), answers(1, 1, 1, 1, 1, 1, 1, 1, 3, 4))
        assert [(p.link_id, p.code) for p in problems] == [("item_9", "not_allowed")]
        assert "0, 2, 4" in problems[0].sv and "allowed" in problems[0].en

    def test_out_of_range(self) -> None:
        values = answers(0, 0, 0, 0, 0, 0, 0, None, 0, 10, 10, 0, 0, 0, 0, 0, 10, 10, 5)
        values["item_12"] = 29
        problems = validate_answers(get("life-situation"), values)
        assert [(p.link_id, p.code) for p in problems] == [("item_12", "out_of_range")]
        assert "0–28" in problems[0].sv

    def test_not_integer_and_unknown_item(self) -> None:
        values: dict[str, Any] = {**answers(1, 1, 1, 1, 1, 1, 1), "item_3": "many",
                                  "item_8": 1}
        problems = validate_answers(get("gad-7"), values)
        assert {(p.link_id, p.code) for p in problems} == {
            ("item_3", "not_integer"), ("item_8", "unknown_item")}

    def test_numeric_strings_are_accepted(self) -> None:
        assert validate_answers(get("gad-7"), {f"item_{n}": "2" for n in range(1, 8)}) == []
        assert score(get("gad-7"), {f"item_{n}": "2" for n in range(1, 8)}).total == 14

    def test_required_missing_without_prorating(self) -> None:
        problems = validate_answers(get("audit"), answers(1, 1, 1, 1, 1, 1, 1, 1, 2))
        codes = {(p.link_id, p.code, p.severity) for p in problems}
        assert ("item_10", "required_missing", "error") in codes
        assert ("total", "too_many_missing", "error") in codes

    def test_prorated_missing_is_a_warning(self) -> None:
        problems = validate_answers(get("phq-9"), answers(1, 1, 1, 1, 1, 1, 1, 1))
        assert [(p.link_id, p.code, p.severity) for p in problems] == [
            ("item_9", "missing_prorated", "warning")]

    def test_optional_subscale_missing_is_a_warning(self) -> None:
        values = answers(0, 0, 0, 0, 0, 0, 0, None, 0, 10, 10, 0, 0, 0, 0, 0, 10, 10)
        problems = validate_answers(get("life-situation"), values)
        assert [(p.link_id, p.code, p.severity) for p in problems] == [
            ("own_goals", "too_many_missing", "warning")]

    def test_text_too_long(self) -> None:
        values = {**answers(0, 0, 0, 0, 0, 0, 0, None, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1),
                  "goal_text": "x" * 1001}
        problems = validate_answers(get("life-situation"), values)
        assert [(p.link_id, p.code) for p in problems] == [("goal_text", "too_long")]

    def test_score_refuses_invalid_values(self) -> None:
        with pytest.raises(InvalidAnswersError) as info:
            score(get("phq-9"), answers(4, 0, 0, 0, 0, 0, 0, 0, 0))
        assert info.value.problems[0].link_id == "item_1"
        assert "item_1" in str(info.value)

    def test_unknown_sex(self) -> None:
        with pytest.raises(ValueError, match="unknown sex"):
            score(get("audit"), answers(*[0] * 10), sex="X")


class TestDefinitionErrors:
    def test_minimal_is_valid(self) -> None:
        definition = parse_instrument(minimal())
        assert score(definition, answers(1, 2, 3)).total == 6

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            (lambda d: d["items"].pop(1), "item_1 … item_2 in order"),
            (lambda d: d["items"][0].pop("maxValue"), "needs minValue and maxValue"),
            (lambda d: d["items"][0].update(type="choice"), "needs answerOption"),
            (lambda d: d["items"][0].update(type="string"), "linkId item_N"),
            (lambda d: d.update(scoring={"subscales": [
                {"id": "a", "title": {"sv": "A", "en": "A"}, "items": ["item_9"]}]}),
             "item_9 is not a numeric item"),
            (lambda d: d.update(bands=[{"bands": [
                {"id": "lo", "min": 0, "max": 5, "label": {"sv": "l", "en": "l"}},
                {"id": "hi", "min": 5, "label": {"sv": "h", "en": "h"}}]}]), "overlap"),
            (lambda d: d.update(scoring={"missing": {"max_missing": 1}}), "method: prorate"),
            (lambda d: d.update(reliable_change={"sd": 3, "source": "x"}), "both sd"),
            (lambda d: d["title"].pop("en"), "title.en"),
            (lambda d: d.update(colour="red"), "colour"),
        ],
    )
    def test_bad_definition_gives_clear_error(self, mutate: Any, message: str) -> None:
        data = copy.deepcopy(minimal())
        mutate(data)
        with pytest.raises(ContentError) as info:
            parse_instrument(data, "region/demo.yaml")
        assert "region/demo.yaml" in str(info.value)
        assert message in str(info.value)

    def test_bad_yaml_syntax(self, tmp_path: Path) -> None:
        path = tmp_path / "broken.yaml"
        path.write_text("id: demo\nitems: [\n", encoding="utf-8")
        with pytest.raises(ContentError, match="YAML"):
            load_instrument_file(path)

    def test_shipped_yaml_round_trip(self) -> None:
        # The package data parses with the shared content loader too.
        assert load_yaml("instruments/audit.yaml")["id"] == "audit"


class TestRegistry:
    def test_unknown_instrument(self) -> None:
        with pytest.raises(UnknownInstrumentError, match="audit"):
            REGISTRY.get("asi")

    def test_extra_folder(self, tmp_path: Path) -> None:
        (tmp_path / "demo.yaml").write_text(yaml.safe_dump(minimal()), encoding="utf-8")
        registry = InstrumentRegistry.load([tmp_path], use_env=False, use_entry_points=False)
        assert "demo" in registry and registry.source("demo").endswith("demo.yaml")

    def test_env_folder(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (tmp_path / "demo.yaml").write_text(yaml.safe_dump(minimal()), encoding="utf-8")
        monkeypatch.setenv("UTFALL_INSTRUMENT_DIRS", str(tmp_path))
        assert "demo" in InstrumentRegistry.load(use_entry_points=False)

    def test_duplicate_needs_override(self, tmp_path: Path) -> None:
        region = load_yaml("instruments/audit-c.yaml")
        region = copy.deepcopy(region)
        region["bands"][0]["bands"][0]["max"] = 4
        region["bands"][0]["bands"][1]["min"] = 5
        (tmp_path / "audit-c.yaml").write_text(yaml.safe_dump(region), encoding="utf-8")
        with pytest.raises(ContentError, match="override: true"):
            InstrumentRegistry.load([tmp_path], use_env=False, use_entry_points=False)
        region["override"] = True
        (tmp_path / "audit-c.yaml").write_text(yaml.safe_dump(region), encoding="utf-8")
        registry = InstrumentRegistry.load([tmp_path], use_env=False, use_entry_points=False)
        assert score(registry.get("audit-c"), answers(2, 1, 2), sex="M").band == "risk"

    def test_entry_points(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        (tmp_path / "other.yaml").write_text(
            yaml.safe_dump(minimal(id="other")), encoding="utf-8")

        class FakeEntryPoint:
            name = "region-pack"
            value = "region_pack:instruments"

            def load(self) -> Any:
                return lambda: [minimal(), tmp_path / "other.yaml"]

        monkeypatch.setattr(loading_module.metadata, "entry_points",
                            lambda group: [FakeEntryPoint()] if group == "utfall.instruments"
                            else [])
        registry = InstrumentRegistry.load(use_env=False)
        assert {"demo", "other"} <= set(registry.ids())

    def test_broken_entry_point_names_itself(self, monkeypatch: pytest.MonkeyPatch) -> None:
        class Broken:
            name = "broken"
            value = "nowhere:thing"

            def load(self) -> Any:
                raise ImportError("no module nowhere")

        monkeypatch.setattr(loading_module.metadata, "entry_points", lambda group: [Broken()])
        with pytest.raises(ContentError, match="broken"):
            InstrumentRegistry.load(use_env=False)


class TestReverseAndAggregates:
    def test_reverse_item(self) -> None:
        data = minimal()
        data["items"][1]["reverse"] = True
        definition = parse_instrument(data)
        assert score(definition, answers(4, 0, 4)).total == 12
        assert score(definition, answers(0, 4, 0)).total == 0

    def test_mean_and_max_subscales(self) -> None:
        definition = parse_instrument(minimal(scoring={"subscales": [
            {"id": "avg", "title": {"sv": "m", "en": "m"}, "items": ["item_1", "item_2"],
             "aggregate": "mean"},
            {"id": "top", "title": {"sv": "x", "en": "x"}, "items": ["item_1", "item_3"],
             "aggregate": "max"}]}))
        result = score(definition, answers(1, 2, 4))
        assert result.subscales == {"avg": 1.5, "top": 4}


class TestChange:
    def test_direction_lower_is_better(self) -> None:
        result = change(get("audit"), answers(*[4] * 10), answers(*[2] * 8, 2, 2))
        assert result.total is not None
        assert (result.total.difference, result.total.outcome) == (-20, "improved")
        assert result.subscales["harm"].outcome == "improved"

    def test_direction_higher_is_better(self) -> None:
        worse = change(get("who-5"), answers(4, 4, 4, 4, 4), answers(2, 2, 2, 2, 2))
        assert worse.total is not None and worse.total.outcome == "worsened"
        assert worse.band_before == "good" and worse.band_after == "poor"

    def test_unchanged(self) -> None:
        same = change(get("gad-7"), answers(*[1] * 7), answers(*[1] * 7))
        assert same.total is not None and same.total.outcome == "unchanged"
        assert same.total.reliable_outcome == "no_reliable_change"

    def test_threshold_reliable_change(self) -> None:
        # NHS Talking Therapies: PHQ-9 reliable change = 6 points.
        phq = get("phq-9")
        five = change(phq, answers(*[2] * 9), answers(2, 2, 2, 2, 1, 1, 1, 1, 1))
        six = change(phq, answers(*[2] * 9), answers(2, 2, 2, 1, 1, 1, 1, 1, 1))
        assert five.total is not None and five.total.reliable is False
        assert six.total is not None and six.total.reliable_outcome == "reliably_improved"

    def test_jacobson_truax_rci(self) -> None:
        # Jacobson & Truax 1991: RCI = diff / (√2 · SD · √(1 − r)).
        definition = parse_instrument(minimal(
            reliable_change={"sd": 2.0, "reliability": 0.8, "source": "test"}))
        s_diff = math.sqrt(2) * 2.0 * math.sqrt(0.2)
        result = change(definition, answers(4, 4, 4), answers(2, 2, 1))
        assert result.total is not None
        assert result.total.rci == pytest.approx(-7 / s_diff, abs=1e-4)
        assert result.total.reliable is True  # |−5.53| > 1.96
        small = change(definition, answers(4, 4, 4), answers(4, 3, 3))
        assert small.total is not None and small.total.reliable is False
        assert small.total.reliable_outcome == "no_reliable_change"

    def test_missing_score_gives_no_outcome(self) -> None:
        result = change(get("audit"), answers(*[4] * 10), answers(*[4] * 9))
        assert result.total is not None
        assert result.total.outcome is None and result.total.difference is None

    def test_other_instrument_refused(self) -> None:
        with pytest.raises(ValueError, match="phq-9"):
            change(get("gad-7"), score(get("phq-9"), answers(*[1] * 9)), answers(*[1] * 7))


class TestExtractRows:
    def test_answers_from_row(self) -> None:
        row = {"person_id": "x", "instrument": "gad-7", "stage": "intake",
               **{f"item_{n}": 1 for n in range(1, 8)},
               "item_8": float("nan"), "item_9": None, "item_10": ""}
        values = answers_from_row(row)
        assert set(values) == {f"item_{n}" for n in range(1, 11)}
        assert validate_answers(get("gad-7"), values) == []
        assert score(get("gad-7"), values).total == 7

    def test_nan_is_missing(self) -> None:
        values = answers_from_row({**{f"item_{n}": 1.0 for n in range(1, 7)},
                                   "item_7": float("nan")})
        result = score(get("gad-7"), values)
        assert result.total == 7 and result.prorated == ["total"]

    def test_filled_extra_column_is_an_error(self) -> None:
        values = answers_from_row({**{f"item_{n}": 1 for n in range(1, 9)}})
        problems = validate_answers(get("gad-7"), values)
        assert [(p.link_id, p.code) for p in problems] == [("item_8", "unknown_item")]
