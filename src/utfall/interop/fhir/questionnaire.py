"""``Questionnaire`` generated from an instrument definition (SDC-style scoring).

* items keep their ``linkId``; Swedish ``text`` with the English text in the
  ``translation`` extension;
* choice answers are ``valueCoding`` (code = the stored value) carrying the score in
  the ``ordinalValue`` extension (reversed items: the reversed score);
* skip logic is ``enableWhen``; a comparison on a coded answer (``>``, ``<``…) is
  expanded to the matching codes, or, combined with other conditions under
  ``enableBehavior: all``, given as an SDC ``enableWhenExpression`` (FHIRPath);
* a summed total is a read-only item ``total`` with an SDC ``calculatedExpression``
  (FHIRPath over the answers); Utfall's engine stays the authority (missing-item
  rules, disabled items) and ignores a ``total`` answer sent in.
"""

from __future__ import annotations

import operator
import re
from typing import Any

from utfall.instruments import InstrumentDefinition
from utfall.instruments.models import EnableWhen, Item, Scale
from utfall.interop.fhir.common import (
    CANONICAL,
    EXT_CALCULATED,
    EXT_ENABLE_WHEN_EXPRESSION,
    EXT_ORDINAL,
    local_system,
    text_fields,
    translated,
    validated,
)

TOTAL_LINK_ID = "total"
_OPS = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
        ">=": operator.ge, "<=": operator.le}
_FHIR_TYPES = {"choice": "choice", "integer": "integer", "boolean": "boolean",
               "string": "text"}


def questionnaire_url(instrument_id: str) -> str:
    """Canonical URL of an instrument's Questionnaire."""
    return f"{CANONICAL}/Questionnaire/{instrument_id}"


def answer_system(instrument_id: str, link_id: str) -> str:
    """Code system of one item's answers (code = stored value)."""
    return local_system(instrument_id, link_id)


def score_system(instrument_id: str) -> str:
    """Local code system of an instrument's scores (total, subscales, flags)."""
    return local_system(instrument_id, "scores")


def total_coding(definition: InstrumentDefinition) -> dict[str, Any]:
    """The code of the total score: LOINC where verified (instrument file), else local."""
    codes = definition.codes
    if codes is not None and codes.total is not None:
        return {k: v for k, v in codes.total.model_dump().items() if v is not None}
    return {"system": score_system(definition.id), "code": TOTAL_LINK_ID,
            "display": f"{definition.title.en}: total"}


def _name(definition: InstrumentDefinition) -> str:
    name = re.sub(r"[^A-Za-z0-9]", "", definition.id.upper())
    return name if name[:1].isalpha() else f"U{name}"


def _raw_value_expr(item: Item) -> str:
    """FHIRPath giving the item's stored (raw) value (empty when unanswered)."""
    base = f"%resource.repeat(item).where(linkId='{item.linkId}').answer.value"
    if item.type == "choice":
        base += ".code.toInteger()"
    elif item.type == "boolean":
        base += ".select(iif($this, 1, 0))"
    return base


def _item_value_expr(definition: InstrumentDefinition, item: Item) -> str:
    """FHIRPath giving the item's score (empty when unanswered)."""
    base = _raw_value_expr(item)
    if item.reverse:
        lo, hi = item.value_range
        base += f".select({lo + hi} - $this)"
    return base


def total_expression(definition: InstrumentDefinition, scale: Scale) -> str | None:
    """FHIRPath summing the scale's item scores (None for non-sum scales)."""
    if scale.aggregate != "sum":
        return None
    terms = [_item_value_expr(definition, i) for i in definition.scale_items(scale)]
    expr = terms[0]
    for term in terms[1:]:
        expr += f".combine({term})"
    return f"{expr}.sum()"


def _option(definition: InstrumentDefinition, item: Item, value: int, display: Any
            ) -> dict[str, Any]:
    coding = {"system": answer_system(definition.id, item.linkId), "code": str(value),
              **text_fields("display", display),
              "extension": [{"url": EXT_ORDINAL, "valueDecimal": item.item_score(value)}]}
    return {"valueCoding": coding}


def _condition_codes(source: Item, cond: EnableWhen) -> list[int]:
    compare = _OPS[cond.operator]
    return [o.value for o in source.options if compare(o.value, int(cond.answer or 0))]


def _enable_when(definition: InstrumentDefinition, item: Item) -> dict[str, Any]:
    """``enableWhen``/``enableBehavior`` or an SDC ``enableWhenExpression``."""
    if not item.enableWhen:
        return {}
    out: list[dict[str, Any]] = []
    expanded = False
    for cond in item.enableWhen:
        source = definition.item(cond.question)
        if cond.operator == "exists":
            out.append({"question": cond.question, "operator": "exists", "answerBoolean": True})
        elif source.type in ("choice", "boolean") and cond.operator in ("=", "!="):
            out.append({"question": cond.question, "operator": cond.operator, "answerCoding": {
                "system": answer_system(definition.id, source.linkId),
                "code": str(int(cond.answer or 0))}} if source.type == "choice" else
                {"question": cond.question, "operator": cond.operator,
                 "answerBoolean": bool(cond.answer)})
        elif source.type == "choice":
            expanded = True
            out.extend({"question": cond.question, "operator": "=", "answerCoding": {
                "system": answer_system(definition.id, source.linkId), "code": str(v)}}
                for v in _condition_codes(source, cond))
        else:
            out.append({"question": cond.question, "operator": cond.operator,
                        "answerInteger": int(cond.answer or 0)})
    single = len(item.enableWhen) == 1
    if expanded and not single and item.enableBehavior == "all":
        joiner = " and "
        parts = []
        for cond in item.enableWhen:
            source = definition.item(cond.question)
            value = _raw_value_expr(source)
            if cond.operator == "exists":
                parts.append(f"{value}.exists()")
            else:
                op = "!=" if cond.operator == "!=" else cond.operator
                parts.append(f"({value} {op} {int(cond.answer or 0)})")
        return {"extension": [{"url": EXT_ENABLE_WHEN_EXPRESSION, "valueExpression": {
            "language": "text/fhirpath", "expression": joiner.join(parts)}}]}
    behavior = "any" if (expanded or item.enableBehavior == "any") else "all"
    result: dict[str, Any] = {"enableWhen": out}
    if len(out) > 1:
        result["enableBehavior"] = behavior
    return result


def _item(definition: InstrumentDefinition, item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": item.linkId, **text_fields("text", item.text),
                           "type": _FHIR_TYPES[item.type], "required": item.required}
    if item.type == "string" and item.maxLength:
        out["maxLength"] = item.maxLength
    if item.type == "choice":
        out["answerOption"] = [_option(definition, item, o.value, o.display)
                               for o in item.options]
    extensions: list[dict[str, Any]] = []
    if item.type == "integer":
        extensions += [{"url": "http://hl7.org/fhir/StructureDefinition/minValue",
                        "valueInteger": item.minValue},
                       {"url": "http://hl7.org/fhir/StructureDefinition/maxValue",
                        "valueInteger": item.maxValue}]
        if item.unit is not None:
            extensions.append({"url": "http://hl7.org/fhir/StructureDefinition/"
                                      "questionnaire-unit",
                               "valueCoding": {"display": item.unit.sv,
                                               "_display": translated(item.unit.sv,
                                                                      item.unit.en)}})
    when = _enable_when(definition, item)
    extensions += when.pop("extension", [])
    out.update(when)
    if extensions:
        out["extension"] = extensions
    return out


def build_questionnaire(definition: InstrumentDefinition) -> dict[str, Any]:
    """The validated FHIR R4 Questionnaire of an instrument."""
    items = [_item(definition, i) for i in definition.items]
    scoring = definition.scoring
    if scoring.total is not None:
        expression = total_expression(definition, scoring.total)
        total: dict[str, Any] = {
            "linkId": TOTAL_LINK_ID, "code": [total_coding(definition)],
            "text": "Totalpoäng", "_text": translated("Totalpoäng", "Total score"),
            "type": "decimal" if scoring.total.aggregate == "mean" else "integer",
            "readOnly": True, "required": False}
        if expression:
            total["extension"] = [{"url": EXT_CALCULATED, "valueExpression": {
                "language": "text/fhirpath", "expression": expression,
                "description": "Sum of the item scores (ordinal values); Utfall's engine "
                               "applies the missing-item rules"}}]
        items.append(total)
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire", "id": definition.id, "language": "sv",
        "url": questionnaire_url(definition.id), "version": definition.version,
        "name": _name(definition), **text_fields("title", definition.title),
        "status": definition.status, "subjectType": ["Patient"],
        **text_fields("copyright", definition.licence), "item": items}
    if definition.description is not None:
        resource.update(text_fields("description", definition.description))
    codes = definition.codes
    if codes is not None and codes.questionnaire is not None:
        resource["code"] = [{k: v for k, v in codes.questionnaire.model_dump().items()
                             if v is not None}]
    return validated(resource)
