"""Size limits on what the care services store as free text or structured data.

The web layer refuses oversized request bodies before parsing (``utfall.web.limits``);
these checks hold for every caller (API, pages, CLI, FHIR), so one enrolment can never
carry megabytes of ``facts`` and a note stays a note. Refusals are :class:`CareError`
naming the field (422 in the API, a message next to the field on pages).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from utfall.care._common import CareError, Issue

MAX_TEXT = 2000  # characters of one free-text value (note, reason, text answer)
MAX_NAME = 200  # characters of a short text (responsible worker)
MAX_KEY = 64  # characters of a facts key or an answer's item id
MAX_FACTS = 50  # keys in one facts mapping
MAX_LIST = 50  # values in one list-valued fact
MAX_FACTS_BYTES = 16 * 1024  # the facts as JSON
MAX_ANSWERS = 200  # items in one set of answers

_SCALARS = (str, int, float, bool, dt.date, type(None))


def _refuse(where: str, sv: str, en: str) -> CareError:
    return CareError("too_large", "uppgifterna är för stora", "the data is too large",
                     [Issue(where, "too_large", sv, en)])


def check_text(value: str | None, where: str, limit: int = MAX_TEXT) -> None:
    """Refuse a text longer than ``limit`` characters."""
    if value is not None and len(value) > limit:
        raise _refuse(where, f"högst {limit} tecken ({len(value)} angavs)",
                      f"at most {limit} characters ({len(value)} given)")


def check_facts(facts: Mapping[str, Any] | None, where: str = "facts") -> None:
    """Refuse facts with too many keys, long keys or texts, nested values, or too many
    bytes in all."""
    if not facts:
        return
    if not isinstance(facts, Mapping):
        raise _refuse(where, "ska vara nyckel–värde-par", "must be key–value pairs")
    if len(facts) > MAX_FACTS:
        raise _refuse(where, f"högst {MAX_FACTS} uppgifter", f"at most {MAX_FACTS} entries")
    for key, value in facts.items():
        if not isinstance(key, str) or len(key) > MAX_KEY:
            raise _refuse(where, f"ett namn är längre än {MAX_KEY} tecken",
                          f"a name is longer than {MAX_KEY} characters")
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_LIST:
            raise _refuse(f"{where}.{key}", f"högst {MAX_LIST} värden",
                          f"at most {MAX_LIST} values")
        for item in values:
            if not isinstance(item, _SCALARS):
                raise _refuse(f"{where}.{key}", "nästlade värden tas inte emot",
                              "nested values are not accepted")
            if isinstance(item, str):
                check_text(item, f"{where}.{key}")
    size = len(json.dumps(facts, default=str).encode())
    if size > MAX_FACTS_BYTES:
        raise _refuse(where, f"högst {MAX_FACTS_BYTES // 1024} KiB sammanlagt",
                      f"at most {MAX_FACTS_BYTES // 1024} KiB in all")


def check_answer_sizes(answers: Mapping[str, Any]) -> None:
    """Refuse answer sets with too many items, long item ids or long texts."""
    if len(answers) > MAX_ANSWERS:
        raise _refuse("answers", f"högst {MAX_ANSWERS} svar", f"at most {MAX_ANSWERS} answers")
    for key, value in answers.items():
        if len(str(key)) > MAX_KEY:
            raise _refuse("answers", f"ett frågenamn är längre än {MAX_KEY} tecken",
                          f"an item id is longer than {MAX_KEY} characters")
        if isinstance(value, str):
            check_text(value, str(key))
