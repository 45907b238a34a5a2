"""Swedish personal identity numbers (personnummer) and coordination numbers.

python-stdnum's ``se.personnummer`` validates personnummer but rejects
samordningsnummer (day of birth + 60). This module accepts both with the same
rules (date, Luhn check digit via ``stdnum.luhn``, ``+`` for 100 years or older);
a property test checks that it agrees with ``stdnum.se.personnummer`` on every
ordinary personnummer.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from stdnum import luhn

_PATTERN = re.compile(r"^(\d{2})?(\d{2})(\d{2})(\d{2})([-+]?)(\d{3})(\d)$")


class IdentityNumberError(ValueError):
    """Raised for an invalid identity number; the message never repeats the number."""


@dataclass(frozen=True, slots=True)
class IdentityNumber:
    """A validated identity number in canonical 12-digit form (``YYYYMMDDNNNC``)."""

    canonical: str
    birth_date: dt.date
    sex: str  # "M" or "F"
    coordination: bool  # samordningsnummer

    @property
    def birth_year(self) -> int:
        return self.birth_date.year

    def masked(self) -> str:
        """Form safe for screens that must hint at the number: ``YYYYMMDD-****``."""
        return f"{self.canonical[:8]}-****"


def parse_identity_number(raw: str, today: dt.date | None = None) -> IdentityNumber:
    """Validate ``raw`` (10 or 12 digits, optional ``-``/``+``) and return its canonical form.

    For 10 digits the century is inferred: the latest century that puts the birth
    date on or before ``today``; ``+`` means the person has turned 100.
    """
    today = today or dt.date.today()
    text = (raw or "").strip()
    match = _PATTERN.match(text)
    if not match:
        raise IdentityNumberError("must have 10 or 12 digits, optionally with '-' or '+'")
    century, yy, mm, dd, sep, serial, check = match.groups()
    if century and sep == "+":
        raise IdentityNumberError("'+' is only used with 10 digits")
    day = int(dd)
    coordination = day > 60
    real_day = day - 60 if coordination else day
    if century:
        year = int(century + yy)
    else:
        year = _infer_year(int(yy), int(mm), real_day, sep == "+", today)
    try:
        birth = dt.date(year, int(mm), real_day)
    except ValueError as exc:
        raise IdentityNumberError("the date part is not a valid date") from exc
    if birth > today:
        raise IdentityNumberError("the date of birth is in the future")
    ten = f"{yy}{mm}{dd}{serial}{check}"
    if not luhn.is_valid(ten):
        raise IdentityNumberError("the check digit is wrong")
    sex = "M" if int(serial[2]) % 2 == 1 else "F"
    return IdentityNumber(f"{year:04d}{mm}{dd}{serial}{check}", birth, sex, coordination)


def _infer_year(yy: int, mm: int, dd: int, plus: bool, today: dt.date) -> int:
    year = today.year // 100 * 100 + yy
    try:
        if dt.date(year, mm, dd) > today:
            year -= 100
    except ValueError:
        # 29 February in a non-leap candidate year: compare on year/month only
        if (year, mm) > (today.year, today.month):
            year -= 100
    if plus:
        year -= 100
    return year


def is_valid_identity_number(raw: str, today: dt.date | None = None) -> bool:
    """True if ``raw`` is a valid personnummer or samordningsnummer."""
    try:
        parse_identity_number(raw, today)
    except IdentityNumberError:
        return False
    return True


def with_check_digit(first_nine: str) -> str:
    """Append the Luhn check digit to the 9 digits ``YYMMDDNNN`` (used by the generator)."""
    return first_nine + luhn.calc_check_digit(first_nine)
