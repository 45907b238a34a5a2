"""Shipped programmes, programme-file validation, required data (ROP), end reasons."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.followup.helpers import INSTRUMENTS, PROGRAMMES
from utfall.content import load_yaml
from utfall.followup import (
    ProgrammeRegistry,
    UnknownProgrammeError,
    load_programme_file,
    parse_programme,
    validate_end,
    validate_enrolment_data,
)
from utfall.instruments import ContentError


def test_shipped_programmes() -> None:
    assert PROGRAMMES.ids() == ["laro", "rop", "vip-beroende"]


def test_vip_stage_ids() -> None:
    vip = PROGRAMMES.get("vip-beroende")
    assert [s.id for s in vip.stages] == [
        "intake", "month-6", "month-12", "discharge", "post-discharge-6"]
    assert vip.stage("post-discharge-6").anchor == "stage:discharge"


def test_laro_follow_up_every_six_months() -> None:
    review = PROGRAMMES.get("laro").stage("review")
    assert review.repeat is not None and review.repeat.every.months == 6
    assert review.offset.months == 6


def test_end_reasons_match_extract_format() -> None:
    expected = ["completed", "dropout", "involuntary_discharge", "transferred", "deceased",
                "other"]
    for programme in PROGRAMMES:
        assert [e.id for e in programme.end_reasons] == expected
        assert [e.id for e in programme.end_reasons if e.planned] == ["completed"]


def test_every_stage_instrument_exists() -> None:
    for programme in PROGRAMMES:
        assert programme.instrument_ids() <= set(INSTRUMENTS.ids())


def test_unknown_programme() -> None:
    with pytest.raises(UnknownProgrammeError, match="laro"):
        PROGRAMMES.get("tolvstegs")


class TestRop:
    ROP = PROGRAMMES.get("rop")
    COMPLETE: ClassVar[dict[str, Any]] = {
        "sip_consent": True,
        "sip_consent_date": dt.date(2024, 2, 1),
        "sip_consent_scope": "Journaluppgifter om behandling, mellan psykiatrin och "
                             "socialtjänsten, i ett år",
        "sip_date": "2024-02-15",
        "overall_responsibility": "municipality",
        "interventions_region": "Läkemedelsbehandling, psykiatrisk uppföljning",
        "interventions_municipality": "Boendestöd, sysselsättning",
        "psychiatric_treated_in_parallel": True,
    }

    def test_required_fields(self) -> None:
        assert set(self.ROP.required_data) >= {
            "sip_consent", "overall_responsibility", "interventions_region",
            "interventions_municipality", "psychiatric_treated_in_parallel"}

    def test_complete_data(self) -> None:
        assert validate_enrolment_data(self.ROP, self.COMPLETE) == []

    def test_missing_fields_named(self) -> None:
        data = {k: v for k, v in self.COMPLETE.items() if k != "overall_responsibility"}
        problems = validate_enrolment_data(self.ROP, data)
        assert [(p.link_id, p.code) for p in problems] == [
            ("overall_responsibility", "required_data_missing")]
        assert "övergripande ansvar" in problems[0].sv

    def test_no_consent_needs_no_sip_details(self) -> None:
        data = {"sip_consent": False, "psychiatric_treated_in_parallel": False}
        assert validate_enrolment_data(self.ROP, data) == []

    def test_sip_without_consent_refused(self) -> None:
        data = {"sip_consent": False, "psychiatric_treated_in_parallel": True,
                "sip_date": "2024-03-01"}
        problems = validate_enrolment_data(self.ROP, data)
        assert [p.code for p in problems] == ["rop.sip_without_consent"]

    def test_invalid_values(self) -> None:
        data = {**self.COMPLETE, "overall_responsibility": "state", "sip_consent_date": "igår",
                "psychiatric_group": "mood"}
        problems = validate_enrolment_data(self.ROP, data)
        assert {(p.link_id, p.code) for p in problems} == {
            ("overall_responsibility", "invalid_data"), ("sip_consent_date", "invalid_data")}


class TestEndReasons:
    VIP = PROGRAMMES.get("vip-beroende")

    def test_unknown(self) -> None:
        assert [p.code for p in validate_end(self.VIP, "bored")] == ["unknown_end_reason"]

    def test_involuntary_needs_medical_ground(self) -> None:
        problems = validate_end(self.VIP, "involuntary_discharge")
        assert [(p.link_id, p.code) for p in problems] == [
            ("medical_ground", "required_data_missing")]
        assert validate_end(self.VIP, "involuntary_discharge",
                            {"medical_ground": "Hot och våld mot personal"}) == []

    def test_others(self) -> None:
        for reason in ("completed", "dropout", "transferred", "deceased", "other"):
            assert validate_end(self.VIP, reason) == []


class TestProgrammeFiles:
    @staticmethod
    def base() -> dict[str, Any]:
        return copy.deepcopy(load_yaml("programmes/vip-beroende.yaml"))

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            (lambda d: d["stages"][4].update(anchor="stage:later"), "earlier stage"),
            (lambda d: d["stages"][0].update(anchor="yesterday"), "anchor must be"),
            (lambda d: d["stages"][0].update(responsible="police"), "responsible"),
            (lambda d: d["stages"][0].update(method="telepathy"), "method"),
            (lambda d: d["stages"][1].update(id="intake"), "duplicate stage id"),
            (lambda d: d["end_reasons"][2].update(requires=["nothing"]), "not in data_fields"),
            (lambda d: d["stages"][0].update(offset={"weeks": 2}), "weeks"),
        ],
    )
    def test_bad_file(self, mutate: Any, message: str) -> None:
        data = self.base()
        mutate(data)
        with pytest.raises(ContentError) as info:
            parse_programme(data, "region/vip.yaml")
        assert message in str(info.value) and "region/vip.yaml" in str(info.value)

    def test_unknown_instrument(self) -> None:
        data = self.base()
        data["stages"][0]["instruments"] = ["audit", "asi"]
        with pytest.raises(ContentError, match="asi"):
            parse_programme(data, "x.yaml", INSTRUMENTS)

    def test_bad_phase_model(self) -> None:
        data = copy.deepcopy(load_yaml("programmes/laro.yaml"))
        data["phase_model"]["transitions"]["ending"] = ["assessment"]
        with pytest.raises(ContentError, match="terminal"):
            parse_programme(data)

    def test_region_folder_and_override(self, tmp_path: Path) -> None:
        data = self.base()
        data["id"] = "region-alkohol"
        (tmp_path / "a.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
        registry = ProgrammeRegistry.load([tmp_path], instruments=INSTRUMENTS, use_env=False,
                                          use_entry_points=False)
        assert "region-alkohol" in registry
        assert load_programme_file(tmp_path / "a.yaml").id == "region-alkohol"
        data["id"] = "vip-beroende"
        (tmp_path / "a.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
        with pytest.raises(ContentError, match="override"):
            ProgrammeRegistry.load([tmp_path], instruments=INSTRUMENTS, use_env=False,
                                   use_entry_points=False)
