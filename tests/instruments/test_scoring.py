"""Scoring against the published manuals' rules and cut-offs.

Each test names its source. The answer patterns are worked by hand from the scoring
tables of those sources (item values, sums, cut-offs).
"""

from __future__ import annotations

import pytest

from tests.instruments.helpers import answers, answers_for_total, get
from utfall.instruments import score


class TestAudit:
    """Babor TF et al. AUDIT: Guidelines for use in primary care, 2nd ed., WHO 2001
    (items 1–8 score 0–4, items 9–10 score 0/2/4, total 0–40; domains 1–3, 4–6, 7–10);
    Swedish zones by sex: Bergman & Källmén 2002."""

    def test_maximum(self) -> None:
        result = score(get("audit"), answers(*[4] * 10), sex="M")
        assert result.summary() == {
            "instrument": "audit", "total": 40,
            "subscales": {"consumption": 12, "dependence": 12, "harm": 16}, "band": "IV",
        }

    def test_hand_worked_case(self) -> None:
        # 2–3 times a week (3), 3–4 drinks (1), six+ monthly (2), could not stop less than
        # monthly (1), failed expectations never (0), morning drink never (0), guilt
        # monthly (2), blackout less than monthly (1), injury: yes, not last year (2),
        # others concerned: yes, last year (4) → 3+1+2 + 1+0+0 + 2+1+2+4 = 16.
        result = score(get("audit"), answers(3, 1, 2, 1, 0, 0, 2, 1, 2, 4), sex="F")
        assert result.total == 16
        assert result.subscales == {"consumption": 6, "dependence": 1, "harm": 9}
        assert result.band == "III"  # women: III = 14–17
        assert score(get("audit"), answers(3, 1, 2, 1, 0, 0, 2, 1, 2, 4), sex="M").band == "III"

    def test_non_drinker_skips_items_2_to_8(self) -> None:
        # WHO manual: "Skip to Questions 9 and 10 if Total Score for Question 1 = 0".
        result = score(get("audit"), {"item_1": 0, "item_9": 0, "item_10": 2}, sex="M")
        assert result.total == 2 and result.band == "I" and result.missing == []

    def test_no_dependence_items_when_2_and_3_are_zero(self) -> None:
        # WHO manual: "Skip to Questions 9 and 10 if Total Score for Questions 2 and 3 = 0".
        result = score(get("audit"), answers(1, 0, 0, None, None, None, None, None, 0, 0))
        assert result.total == 1 and result.subscales["dependence"] == 0

    @pytest.mark.parametrize(
        ("sex", "total", "band"),
        [("M", 0, "I"), ("M", 7, "I"), ("M", 8, "II"), ("M", 15, "II"), ("M", 16, "III"),
         ("M", 19, "III"), ("M", 20, "IV"), ("M", 40, "IV"),
         ("F", 5, "I"), ("F", 6, "II"), ("F", 13, "II"), ("F", 14, "III"), ("F", 17, "III"),
         ("F", 18, "IV")],
    )
    def test_swedish_zones(self, sex: str, total: int, band: str) -> None:
        definition = get("audit")
        result = score(definition, answers_for_total(definition, total), sex=sex)
        assert (result.total, result.band) == (total, band)

    def test_no_band_without_sex(self) -> None:
        result = score(get("audit"), answers(*[4] * 10))
        assert result.total == 40 and result.band is None


class TestAuditC:
    """Bush K et al. 1998 (AUDIT-C = AUDIT items 1–3, 0–12); thresholds ≥6 men / ≥5 women
    as in Swedish national surveys (configurable per region)."""

    @pytest.mark.parametrize(
        ("sex", "total", "band"),
        [("M", 5, "below"), ("M", 6, "risk"), ("F", 4, "below"), ("F", 5, "risk"),
         ("M", 12, "risk"), ("F", 0, "below")],
    )
    def test_thresholds(self, sex: str, total: int, band: str) -> None:
        definition = get("audit-c")
        assert score(definition, answers_for_total(definition, total), sex=sex).band == band


class TestDudit:
    """Berman AH et al. DUDIT manual 2005 / Eur Addict Res 2005;11:22–31: items 1–9 score
    0–4, items 10–11 score 0/2/4 (total 0–44); drug-related problems ≥6 men, ≥2 women;
    ages 16–25 ≥7 / ≥3 (provisional); ≥25 probable dependence."""

    def test_hand_worked_case(self) -> None:
        # Weekly use 2–3 times (3), mixing 2–4 times a month (2), 3–4 times a day (2),
        # heavily influenced monthly (2), craving less than monthly (1), items 6–9 never,
        # hurt: yes, not last year (2), others worried: yes, last year (4) → 16.
        result = score(get("dudit"), answers(3, 2, 2, 2, 1, 0, 0, 0, 0, 2, 4), sex="M", age=40)
        assert result.total == 16 and result.band == "problems"

    @pytest.mark.parametrize(
        ("sex", "age", "total", "band", "provisional"),
        [("M", 40, 5, "none", False), ("M", 40, 6, "problems", False),
         ("F", 40, 1, "none", False), ("F", 40, 2, "problems", False),
         ("M", 20, 6, "none", True), ("M", 20, 7, "problems", True),
         ("F", 16, 2, "none", True), ("F", 25, 3, "problems", True),
         ("M", 26, 6, "problems", False), ("F", 30, 24, "problems", False),
         ("M", 40, 25, "dependence", False), ("F", 18, 44, "dependence", True)],
    )
    def test_cut_offs(self, sex: str, age: int, total: int, band: str, provisional: bool) -> None:
        definition = get("dudit")
        result = score(definition, answers_for_total(definition, total), sex=sex, age=age)
        assert (result.total, result.band, result.band_provisional) == (total, band, provisional)

    def test_unknown_age_uses_adult_cut_off(self) -> None:
        definition = get("dudit")
        assert score(definition, answers_for_total(definition, 6), sex="M").band == "problems"


class TestPhq9:
    """Kroenke K, Spitzer RL, Williams JBW. J Gen Intern Med 2001;16:606–13: items 0–3,
    total 0–27; 5, 10, 15, 20 = mild, moderate, moderately severe, severe."""

    @pytest.mark.parametrize(
        ("total", "band"),
        [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
         (14, "moderate"), (15, "moderately_severe"), (19, "moderately_severe"),
         (20, "severe"), (27, "severe")],
    )
    def test_bands(self, total: int, band: str) -> None:
        definition = get("phq-9")
        assert score(definition, answers_for_total(definition, total)).band == band

    def test_prorating_two_missing(self) -> None:
        # 7 answered items summing to 14 → 14 × 9/7 = 18 (prorated; Kroenke-style rule).
        result = score(get("phq-9"), answers(2, 2, 2, 2, 2, 2, 2, None, None))
        assert result.total == 18 and result.prorated == ["total"]
        assert result.band == "moderately_severe"

    def test_prorating_rounds_half_up(self) -> None:
        # 8 answered items summing to 11 → 11 × 9/8 = 12.375 → 12; sum 5 → 5.625 → 6.
        assert score(get("phq-9"), answers(2, 2, 2, 2, 1, 1, 1, 0, None)).total == 12
        assert score(get("phq-9"), answers(1, 1, 1, 1, 1, 0, 0, 0, None)).total == 6

    def test_three_missing_gives_no_score(self) -> None:
        result = score(get("phq-9"), answers(3, 3, 3, 3, 3, 3, None, None, None))
        assert result.total is None and result.band is None

    def test_item_9_flag(self) -> None:
        result = score(get("phq-9"), answers(0, 0, 0, 0, 0, 0, 0, 0, 1))
        assert result.flags == ["suicidal_thoughts"]


class TestGad7:
    """Spitzer RL et al. Arch Intern Med 2006;166:1092–7: total 0–21; 5, 10, 15 = mild,
    moderate, severe."""

    @pytest.mark.parametrize(
        ("total", "band"),
        [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
         (14, "moderate"), (15, "severe"), (21, "severe")],
    )
    def test_bands(self, total: int, band: str) -> None:
        definition = get("gad-7")
        assert score(definition, answers_for_total(definition, total)).band == band

    def test_prorating_one_missing(self) -> None:
        # 6 answered items summing to 10 → 10 × 7/6 = 11.67 → 12.
        assert score(get("gad-7"), answers(2, 2, 2, 2, 1, 1, None)).total == 12
        assert score(get("gad-7"), answers(2, 2, 2, 2, 1, None, None)).total is None


class TestWho5:
    """Topp CW et al. Psychother Psychosom 2015;84:167–76: raw 0–25 × 4 = percentage;
    ≤ 50 poor well-being, ≤ 28 likely depression; higher is better."""

    @pytest.mark.parametrize(
        ("raw", "percentage", "band"),
        [(0, 0, "likely_depression"), (7, 28, "likely_depression"), (8, 32, "poor"),
         (12, 48, "poor"), (13, 52, "good"), (25, 100, "good")],
    )
    def test_percentage_and_bands(self, raw: int, percentage: int, band: str) -> None:
        definition = get("who-5")
        result = score(definition, answers_for_total(definition, raw))
        assert (result.total, result.transformed, result.band) == (raw, percentage, band)
        assert result.transform_id == "percentage"

    def test_worked_example(self) -> None:
        # "Most of the time" (4) on all five items: raw 20, 80 %.
        result = score(get("who-5"), answers(4, 4, 4, 4, 4))
        assert (result.total, result.transformed, result.band) == (20, 80, "good")


class TestLifeSituation:
    """Utfall's own TOP-style profile (domain model after Marsden et al. 2008)."""

    def test_domains(self) -> None:
        values = answers(2, 0, 20, 5, 0, 0, 10, 1, 3, 8, 12, 0, 4, 1, 1, 0, 9, 7, 3)
        values["goal_text"] = "Få eget boende"
        result = score(get("life-situation"), values)
        assert result.total is None
        assert result.subscales == {
            "substance_use": 20, "health": 20, "occupation": 4, "housing": 2, "crime": 3,
            "relationships": 9, "quality_of_life": 7, "own_goals": 3,
        }
        assert set(result.flags) == {"sharing_injecting_equipment", "acute_housing_problem"}

    def test_sharing_not_asked_without_injecting(self) -> None:
        values = answers(0, 0, 0, 0, 0, 0, 0, None, 0, 15, 15, 20, 0, 0, 0, 0, 15, 16, 8)
        result = score(get("life-situation"), values)
        assert result.missing == [] and result.subscales["substance_use"] == 0
