"""``utfall score`` through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from utfall.cli import app

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["score", *args])


def test_json_exact_shape() -> None:
    # WHO AUDIT manual 2001 (Babor et al.): all items at maximum = 40; zone IV (Swedish).
    result = run("audit", "--answers", "4,4,4,4,4,4,4,4,4,4", "--sex", "M", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "instrument": "audit", "total": 40,
        "subscales": {"consumption": 12, "dependence": 12, "harm": 16}, "band": "IV",
        "flags": [{"id": "possible_dependence",
                   "sv": "Zon IV – möjligt alkoholberoende: bedöm beroende och erbjud behandling",
                   "en": "Zone IV – possible alcohol dependence: assess dependence and offer "
                         "treatment"}],
    }


def test_sex_specific_band() -> None:
    # Swedish AUDIT zones: 6 is zone II for women and zone I for men.
    women = json.loads(run("audit", "--answers", "2,1,1,1,0,0,1,0,0,0", "--sex", "F").stdout)
    men = json.loads(run("audit", "--answers", "2,1,1,1,0,0,1,0,0,0", "--sex", "M").stdout)
    assert (women["total"], women["band"], men["band"]) == (6, "II", "I")


def test_json_is_default_and_band_null_without_sex() -> None:
    out = json.loads(run("audit", "--answers", "0,,,,,,,,0,0").stdout)
    assert out == {"instrument": "audit", "total": 0,
                   "subscales": {"consumption": 0, "dependence": 0, "harm": 0}, "band": None,
                   "flags": []}


def test_dudit_with_age() -> None:
    # Berman et al. DUDIT manual 2005: 6 points = problems for men over 25; provisional ≥7
    # at ages 16–25.
    assert json.loads(run("dudit", "--answers", "2,1,1,1,1,0,0,0,0,0,0", "--sex", "M",
                          "--age", "40").stdout)["band"] == "problems"
    assert json.loads(run("dudit", "--answers", "2,1,1,1,1,0,0,0,0,0,0", "--sex", "M",
                          "--age", "20").stdout)["band"] == "none"


def test_who5_and_prorated_phq9() -> None:
    assert json.loads(run("who-5", "--answers", "3,3,2,2,2").stdout)["band"] == "poor"
    phq = json.loads(run("phq-9", "--answers", "2,2,2,2,2,2,2,,").stdout)
    assert (phq["total"], phq["band"]) == (18, "moderately_severe")


def test_table_format() -> None:
    result = run("audit", "--answers", "4,4,4,4,4,4,4,4,4,4", "--sex", "F", "--format", "table")
    assert result.exit_code == 0
    assert "Zon IV" in result.stdout and "40" in result.stdout


def test_invalid_answer_exits_1_naming_item_and_reason() -> None:
    result = run("audit", "--answers", "4,4,4,4,4,4,4,4,4,3")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "item_10" in result.stderr and "0, 2, 4" in result.stderr
    assert "not an allowed answer" in result.stderr


def test_too_many_answers_exits_1() -> None:
    result = run("gad-7", "--answers", "1,1,1,1,1,1,1,1")
    assert result.exit_code == 1 and "item_8" in result.stderr


def test_missing_required_exits_1() -> None:
    result = run("dudit", "--answers", "1,1,1")
    assert result.exit_code == 1 and "item_4" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["nope", "--answers", "1"],
        ["audit", "--answers", "1,x"],
        ["audit", "--answers", "1", "--sex", "X"],
        ["audit", "--answers", "1", "--format", "xml"],
        ["audit"],
        ["audit", "--answers", "1", "--age", "-3"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert run(*args).exit_code == 2
