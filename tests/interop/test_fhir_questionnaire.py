"""Every instrument's Questionnaire validates; the SDC calculatedExpression, evaluated
by an independent FHIRPath engine (fhirpathpy), gives the instrument engine's total."""

from __future__ import annotations

import random

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhirpathpy import evaluate
from fhirpathpy.models import models

from utfall.instruments import default_registry, score
from utfall.interop.fhir.common import EXT_CALCULATED, EXT_ORDINAL, EXT_TRANSLATION
from utfall.interop.fhir.questionnaire import build_questionnaire

DEFINITIONS = list(default_registry())


@pytest.mark.parametrize("definition", DEFINITIONS, ids=[d.id for d in DEFINITIONS])
def test_questionnaire_validates_and_mirrors_the_file(definition) -> None:
    q = build_questionnaire(definition)
    Questionnaire.model_validate(q)  # independent re-validation of the served JSON
    assert q["id"] == definition.id and q["version"] == definition.version
    assert q["title"] == definition.title.sv
    en = q["_title"]["extension"][0]
    assert en["url"] == EXT_TRANSLATION and en["extension"][1]["valueString"] == \
        definition.title.en
    by_link = {i["linkId"]: i for i in q["item"]}
    for item in definition.items:
        served = by_link[item.linkId]
        assert served["text"] == item.text.sv
        if item.type == "choice":
            ordinals = [o["valueCoding"]["extension"][0] for o in served["answerOption"]]
            assert all(x["url"] == EXT_ORDINAL for x in ordinals)
            assert [x["valueDecimal"] for x in ordinals] == [item.item_score(o.value)
                                                             for o in item.options]
        if item.enableWhen:
            assert "enableWhen" in served or served.get("extension")


def test_loinc_codes_only_where_verified() -> None:
    codes = {d.id: build_questionnaire(d).get("code") for d in DEFINITIONS}
    assert codes["phq-9"] == [{"system": "http://loinc.org", "code": "44249-1"}]
    assert codes["gad-7"] == [{"system": "http://loinc.org", "code": "69737-5"}]
    assert codes["audit-c"] == [{"system": "http://loinc.org", "code": "72109-2"}]
    for unverified in ("audit", "dudit", "who-5", "life-situation"):
        assert codes[unverified] is None


def test_audit_skip_logic_as_enable_when() -> None:
    q = build_questionnaire(next(d for d in DEFINITIONS if d.id == "audit"))
    item2 = next(i for i in q["item"] if i["linkId"] == "item_2")
    assert item2["enableWhen"] == [{"question": "item_1", "operator": "!=", "answerCoding": {
        "system": "https://utfall.se/fhir/CodeSystem/audit/item_1", "code": "0"}}]
    item4 = next(i for i in q["item"] if i["linkId"] == "item_4")
    # item_2 > 0 or item_3 > 0, expanded to the codes 1..4 of each
    assert item4["enableBehavior"] == "any"
    assert sorted((c["question"], c["answerCoding"]["code"]) for c in item4["enableWhen"]) == \
        sorted((q_, str(v)) for q_ in ("item_2", "item_3") for v in range(1, 5))


def _response(definition, answers):
    items = []
    for item in definition.items:
        if item.linkId not in answers:
            continue
        value = answers[item.linkId]
        if item.type == "choice":
            answer = {"valueCoding": {"code": str(value)}}
        elif item.type == "boolean":
            answer = {"valueBoolean": bool(value)}
        else:
            answer = {"valueInteger": value}
        items.append({"linkId": item.linkId, "answer": [answer]})
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "item": items}


@pytest.mark.parametrize("definition", [d for d in DEFINITIONS if d.scoring.total],
                         ids=[d.id for d in DEFINITIONS if d.scoring.total])
def test_calculated_expression_matches_engine(definition) -> None:
    q = build_questionnaire(definition)
    total = next(i for i in q["item"] if i["linkId"] == "total")
    ext = [e for e in total.get("extension", []) if e["url"] == EXT_CALCULATED]
    if definition.scoring.total.aggregate != "sum":
        assert not ext
        return
    expression = ext[0]["valueExpression"]["expression"]
    rng = random.Random(definition.id)
    for _ in range(20):
        answers = {}
        for item in definition.numeric_items:
            values = item.allowed_values or list(range(item.minValue, item.maxValue + 1))
            answers[item.linkId] = rng.choice(values)
        qr = _response(definition, answers)
        got = evaluate(qr, expression, {"resource": qr}, models["r4"])
        assert got == [score(definition, answers).total], answers
