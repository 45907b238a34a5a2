"""Validation of a programme's required data fields (e.g. ROP's SIP and responsibility)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from utfall.followup.models import DataField, Programme
from utfall.instruments.engine import Problem


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_field(spec: DataField, value: Any) -> Problem | None:
    """A problem with a present value of ``spec``'s type, else None."""
    def bad(sv: str, en: str) -> Problem:
        return Problem(link_id=spec.id, code="invalid_data", sv=f"{spec.title.sv}: {sv}",
                       en=f"{spec.title.en}: {en}")

    if spec.type == "boolean" and not isinstance(value, bool):
        return bad("ska vara ja eller nej", "must be yes or no")
    if spec.type == "date" and not isinstance(value, dt.date):
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            return bad("ska vara ett datum (ÅÅÅÅ-MM-DD)", "must be a date (YYYY-MM-DD)")
    if spec.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return bad("ska vara ett heltal", "must be an integer")
        if (spec.min is not None and value < spec.min) or (
            spec.max is not None and value > spec.max
        ):
            return bad(f"ska ligga i {spec.min}–{spec.max}",
                       f"must be within {spec.min}–{spec.max}")
    if spec.type == "text" and not isinstance(value, str):
        return bad("ska vara text", "must be text")
    if spec.type == "choice":
        allowed = [o.value for o in spec.options]
        if value not in allowed:
            shown = ", ".join(allowed)
            return bad(f"{value!r} är inte ett tillåtet värde ({shown})",
                       f"{value!r} is not an allowed value ({shown})")
    return None


def validate_fields(
    programme: Programme, field_ids: Iterable[str], data: Mapping[str, Any]
) -> list[Problem]:
    """Missing or invalid values of the listed fields (``required_when`` respected)."""
    problems: list[Problem] = []
    for field_id in field_ids:
        spec = programme.field(field_id)
        value = data.get(field_id)
        if _blank(value):
            if spec.required_when is None or spec.required_when.evaluate(dict(data)):
                problems.append(Problem(
                    link_id=field_id, code="required_data_missing",
                    sv=f"uppgift saknas: {spec.title.sv}",
                    en=f"missing required data: {spec.title.en}"))
            continue
        problem = check_field(spec, value)
        if problem:
            problems.append(problem)
    return problems


def validate_enrolment_data(programme: Programme, data: Mapping[str, Any]) -> list[Problem]:
    """Problems with the data an enrolment must carry: required fields, types, checks."""
    problems = validate_fields(programme, programme.required_data, data)
    required = set(programme.required_data)
    for spec in programme.data_fields:  # optional fields that are given must be valid
        if spec.id not in required and not _blank(data.get(spec.id)):
            problem = check_field(spec, data[spec.id])
            if problem:
                problems.append(problem)
    problems += [
        Problem(link_id=check.id, code=check.code, sv=check.message.sv, en=check.message.en)
        for check in programme.checks
        if not check.condition.evaluate(dict(data))
    ]
    return problems


def validate_end(
    programme: Programme, reason: str, data: Mapping[str, Any] | None = None
) -> list[Problem]:
    """Problems with ending an enrolment for ``reason`` (unknown reason, required data)."""
    try:
        end = programme.end_reason(reason)
    except KeyError:
        allowed = ", ".join(e.id for e in programme.end_reasons)
        return [Problem(link_id="end_reason", code="unknown_end_reason",
                        sv=f"okänd avslutsorsak {reason!r} (tillåtna: {allowed})",
                        en=f"unknown end reason {reason!r} (allowed: {allowed})")]
    return validate_fields(programme, end.requires, {**(data or {}), "end_reason": reason})
