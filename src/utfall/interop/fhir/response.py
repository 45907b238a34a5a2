"""``QuestionnaireResponse`` in (checked against the Questionnaire, turned into the
answers Utfall's instrument engine scores) and out (from a stored assessment)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from utfall.instruments import InstrumentDefinition, UnknownInstrumentError, get_instrument
from utfall.interop.fhir.common import (
    CANONICAL,
    FhirError,
    parse,
    reference,
    text_fields,
    validated,
)
from utfall.interop.fhir.questionnaire import TOTAL_LINK_ID, answer_system, questionnaire_url

STOCKHOLM = ZoneInfo("Europe/Stockholm")
EXT_STAGE = f"{CANONICAL}/StructureDefinition/programme-stage"
PATIENT_PREFIX = "Patient/"


def _issue(where: str, en: str, sv: str, code: str = "invalid") -> dict[str, Any]:
    return {"severity": "error", "code": code, "details": {"text": en}, "diagnostics": sv,
            "expression": [where]}


def instrument_of_canonical(canonical: str | None) -> InstrumentDefinition:
    """The instrument a ``questionnaire`` canonical names (``…/Questionnaire/<id>[|v]``)."""
    if not canonical:
        raise FhirError(422, "required", "QuestionnaireResponse.questionnaire is required",
                        "QuestionnaireResponse.questionnaire saknas",
                        ["QuestionnaireResponse.questionnaire"])
    url, _, version = canonical.partition("|")
    ident = url.rstrip("/").rsplit("/", 1)[-1]
    if url not in (questionnaire_url(ident), f"Questionnaire/{ident}"):
        ident = ""
    try:
        definition = get_instrument(ident)
    except UnknownInstrumentError:
        raise FhirError(422, "not-found", f"unknown Questionnaire {canonical!r}",
                        f"okänt formulär {canonical!r}",
                        ["QuestionnaireResponse.questionnaire"]) from None
    if version and version != definition.version:
        raise FhirError(422, "business-rule",
                        f"Questionnaire version {version} is not the current "
                        f"{definition.version}", f"formulärets version {version} är inte "
                        f"den gällande {definition.version}",
                        ["QuestionnaireResponse.questionnaire"])
    return definition


def patient_key(ref: str | None, where: str) -> str:
    """The person key of a ``Patient/<key>`` reference."""
    if not ref or not ref.startswith(PATIENT_PREFIX):
        raise FhirError(422, "required", f"{where} must reference Patient/<id>",
                        f"{where} ska peka på Patient/<id>", [where])
    key = ref[len(PATIENT_PREFIX):]
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise FhirError(404, "not-found", "unknown Patient", "okänd patient", [where])
    return key


def _authored_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.date()
        return value.astimezone(STOCKHOLM).date()
    if isinstance(value, dt.date):
        return value
    return None


def _flat_items(items: list[dict[str, Any]], path: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for n, item in enumerate(items or []):
        where = f"{path}.item[{n}]"
        out.append((where, item))
        out.extend(_flat_items(item.get("item") or [], where))
    return out


def _answer_value(definition: InstrumentDefinition, link_id: str, answer: dict[str, Any],
                  where: str) -> tuple[Any, dict[str, Any] | None]:
    item = definition.item(link_id)
    keys = [k for k in answer if k.startswith("value")]
    kind = keys[0] if len(keys) == 1 else None
    value: Any = answer.get(kind) if kind else None  # a JSON value
    if item.type == "string":
        if kind == "valueString":
            return value, None
        return None, _issue(where, f"{link_id}: a text answer (valueString) is expected",
                            f"{link_id}: ett textsvar (valueString) förväntas")
    if item.type == "boolean" and kind == "valueBoolean":
        return int(bool(value)), None
    if kind == "valueCoding" and item.type in ("choice", "boolean"):
        system = value.get("system")
        if system not in (None, answer_system(definition.id, link_id)):
            return None, _issue(where, f"{link_id}: unknown code system {system}",
                                f"{link_id}: okänt kodsystem {system}", "code-invalid")
        try:
            return int(str(value.get("code"))), None
        except ValueError:
            return None, _issue(where, f"{link_id}: code {value.get('code')!r} is not an "
                                       "answer option", f"{link_id}: koden "
                                f"{value.get('code')!r} är inget svarsalternativ",
                                "code-invalid")
    if kind == "valueInteger" and item.type in ("choice", "integer", "boolean"):
        return int(value), None
    return None, _issue(where, f"{link_id}: answer type {kind} does not fit a {item.type} item",
                        f"{link_id}: svarstypen {kind} passar inte en fråga av typen "
                        f"{item.type}")


def read_response(resource: dict[str, Any]) -> dict[str, Any]:
    """Check an incoming QuestionnaireResponse against its Questionnaire.

    Returns ``{"definition", "person_key", "answers", "on_date", "stage"}``; raises
    :class:`FhirError` (422, one issue per problem with its FHIRPath location) otherwise.
    The answers then go through the instrument engine (values, required items,
    skip logic, missing-item rules) in the care service.
    """
    parsed = parse(resource, "QuestionnaireResponse")
    definition = instrument_of_canonical(resource.get("questionnaire"))
    person_key = patient_key((resource.get("subject") or {}).get("reference"),
                             "QuestionnaireResponse.subject")
    issues: list[dict[str, Any]] = []
    if resource.get("status") not in ("completed", "amended"):
        issues.append(_issue("QuestionnaireResponse.status",
                             "status must be completed or amended",
                             "status ska vara completed eller amended", "business-rule"))
    known = {i.linkId for i in definition.items}
    answers: dict[str, Any] = {}
    for where, item in _flat_items(resource.get("item") or [], "QuestionnaireResponse"):
        link_id = item.get("linkId")
        if link_id == TOTAL_LINK_ID:
            continue  # calculated: Utfall's engine computes the total itself
        if link_id not in known:
            issues.append(_issue(f"{where}.linkId", f"unknown item {link_id!r}",
                                 f"okänd fråga {link_id!r}"))
            continue
        if link_id in answers:
            issues.append(_issue(where, f"{link_id} answered twice", f"{link_id} besvarad två "
                                                                      "gånger"))
            continue
        given = item.get("answer") or []
        if len(given) > 1:
            issues.append(_issue(where, f"{link_id}: one answer is allowed",
                                 f"{link_id}: bara ett svar är tillåtet"))
            continue
        if not given:
            continue
        value, problem = _answer_value(definition, link_id, given[0], f"{where}.answer[0]")
        if problem:
            issues.append(problem)
        else:
            answers[link_id] = value
    on_date = _authored_date(parsed.authored) or dt.datetime.now(STOCKHOLM).date()
    stage = None
    for ext in resource.get("extension") or []:
        if ext.get("url") == EXT_STAGE:
            stage = ext.get("valueString") or ext.get("valueCode")
    if issues:
        raise FhirError(422, "invalid", "invalid QuestionnaireResponse",
                        "ogiltigt formulärsvar", issues=issues)
    return {"definition": definition, "person_key": person_key, "answers": answers,
            "on_date": on_date, "stage": stage}


def build_response(definition: InstrumentDefinition | None, row: Any) -> dict[str, Any]:
    """A stored assessment (``assessment`` row) as a QuestionnaireResponse."""
    answers = row.answers or {}
    if isinstance(answers, str):
        import json

        answers = json.loads(answers)
    items: list[dict[str, Any]] = []
    if definition is not None:
        for item in definition.items:
            if item.linkId not in answers:
                continue
            value = answers[item.linkId]
            entry: dict[str, Any] = {"linkId": item.linkId, **text_fields("text", item.text)}
            if item.type == "string":
                answer: dict[str, Any] = {"valueString": str(value)}
            elif item.type == "integer":
                answer = {"valueInteger": int(value)}
            elif item.type == "boolean":
                answer = {"valueBoolean": bool(value)}
            else:
                option = next((o for o in item.options if o.value == int(value)), None)
                answer = {"valueCoding": {"system": answer_system(definition.id, item.linkId),
                                          "code": str(int(value)),
                                          **text_fields("display", option.display
                                                        if option else None)}}
            entry["answer"] = [answer]
            items.append(entry)
        if definition.scoring.total is not None and row.score is not None:
            score = float(row.score)
            items.append({"linkId": TOTAL_LINK_ID, "answer": [
                {"valueInteger": int(score)} if score.is_integer() else
                {"valueDecimal": score}]})
    version = f"|{definition.version}" if definition is not None else ""
    resource = {
        "resourceType": "QuestionnaireResponse", "id": row.row_key,
        "questionnaire": questionnaire_url(row.instrument) + version,
        "status": "completed", "subject": reference("Patient", row.person_key),
        "authored": row.date.isoformat(), "item": items}
    if row.stage:
        resource["extension"] = [{"url": EXT_STAGE, "valueString": row.stage}]
    return validated(resource)
