"""Password policy (OWASP ASVS V2.1): length, a common/breached-password list, no
username, no trivial patterns. No composition rules (ASVS 2.1.9): any Unicode
character, spaces included, is allowed.

The list ships as data (``content/security/common-passwords.txt``);
``UTFALL_PASSWORD_BLOCKLIST`` may name a larger file in the same format (one
password a line, ``#`` comments), used in addition.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from utfall.content import content_text

MIN_LENGTH = 12  # ASVS 2.1.1
MAX_LENGTH = 128  # ASVS 2.1.2 allows at least 64
MIN_DISTINCT = 5  # fewer distinct characters than this is a pattern, not a secret
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i", "|": "i", "€": "e"})
_KEYBOARD_ROWS = ("1234567890", "qwertyuiopå", "asdfghjklöä", "zxcvbnm",
                  "abcdefghijklmnopqrstuvwxyzåäö")


@dataclass(frozen=True)
class PasswordProblem:
    """Why a password is refused (code + Swedish and English text)."""

    code: str
    sv: str
    en: str

    def text(self, locale: str = "sv") -> str:
        return self.en if locale == "en" else self.sv


def _parse(text: str) -> set[str]:
    return {line.strip().lower() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")}


@cache
def _shipped() -> frozenset[str]:
    return frozenset(_parse(content_text("security/common-passwords.txt")))


@cache
def _extra(path: str) -> frozenset[str]:
    return frozenset(_parse(Path(path).read_text(encoding="utf-8")))


def blocklist() -> frozenset[str]:
    """The common/breached passwords in force (shipped list + configured file)."""
    extra = os.environ.get("UTFALL_PASSWORD_BLOCKLIST")
    return _shipped() | _extra(extra) if extra else _shipped()


def _variants(password: str) -> set[str]:
    """Normalised forms a guesser tries first: case, leet spelling, digits or symbols
    added at either end, whitespace removed."""
    low = unicodedata.normalize("NFKC", password).lower()
    forms = {low, low.replace(" ", ""), low.translate(_LEET)}
    for form in list(forms):
        stripped = form.strip("0123456789!#%&/()=?+*-_.,:;<>'\"^~ ")
        forms.add(stripped)
        forms.add(stripped.translate(_LEET))
    return {f for f in forms if f}


def _is_sequence(text: str) -> bool:
    """Repeats of one short unit ("abcabc", "aaaa") or a run along a keyboard row or
    the alphabet/digits, forwards or backwards, possibly wrapping ("0123456789012")."""
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            return True
    for row in _KEYBOARD_ROWS:
        for line in (row * 3, row[::-1] * 3):
            if text in line:
                return True
    return False


def password_problems(password: str, username: str | None = None) -> list[PasswordProblem]:
    """Every reason ``password`` is refused (empty list: acceptable)."""
    problems: list[PasswordProblem] = []
    length = len(password)
    if length < MIN_LENGTH:
        problems.append(PasswordProblem(
            "too_short", f"Lösenordet måste ha minst {MIN_LENGTH} tecken.",
            f"The password needs at least {MIN_LENGTH} characters."))
    if length > MAX_LENGTH:
        problems.append(PasswordProblem(
            "too_long", f"Lösenordet får ha högst {MAX_LENGTH} tecken.",
            f"The password may have at most {MAX_LENGTH} characters."))
    low = unicodedata.normalize("NFKC", password).lower()
    name = (username or "").strip().lower()
    if name and len(name) >= 3 and (name in low or low in name):
        problems.append(PasswordProblem(
            "username", "Lösenordet får inte vara eller innehålla användarnamnet.",
            "The password must not be or contain the user name."))
    variants = _variants(password)
    if variants & blocklist():
        problems.append(PasswordProblem(
            "common", "Lösenordet är för vanligt (finns i listor över läckta lösenord).",
            "The password is too common (it is on lists of breached passwords)."))
    elif any(_is_sequence(v.replace(" ", "")) for v in variants) or \
            len(set(low)) < MIN_DISTINCT:
        problems.append(PasswordProblem(
            "pattern", "Lösenordet är ett enkelt mönster (upprepning eller tangentföljd).",
            "The password is a simple pattern (repetition or key sequence)."))
    return problems


def check_password(password: str, username: str | None = None, locale: str = "sv") -> None:
    """Raise ``ValueError`` with every problem (in ``locale``) if refused."""
    problems = password_problems(password, username)
    if problems:
        raise ValueError(" ".join(p.text(locale) for p in problems))
