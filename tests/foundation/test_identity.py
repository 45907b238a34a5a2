"""Identity numbers: personnummer and samordningsnummer (Skatteverket rules)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.exceptions import ValidationError
from stdnum.se import personnummer as stdnum_pnr

from utfall.domain.identity import (
    IdentityNumberError,
    is_valid_identity_number,
    parse_identity_number,
    with_check_digit,
)

TODAY = dt.date(2026, 11, 23)


@pytest.mark.parametrize(
    "raw",
    ["811218-9876", "8112189876", "19811218-9876", "198112189876"],
)
def test_published_example_in_all_forms(raw: str) -> None:
    # 811218-9876 is the example personnummer used in Skatteverket's and Wikipedia's
    # descriptions of the Luhn check digit: 8*2,1,1*2,2,1*2,8,9*2,8,7*2 → check digit 6.
    ident = parse_identity_number(raw, TODAY)
    assert ident.canonical == "198112189876"
    assert ident.birth_date == dt.date(1981, 12, 18)
    assert ident.sex == "M"  # 9th digit 7 is odd
    assert not ident.coordination


@pytest.mark.parametrize("raw", ["811218-9875", "811218-9877", "19811218-9870"])
def test_wrong_check_digit_is_rejected(raw: str) -> None:
    with pytest.raises(IdentityNumberError, match="check digit"):
        parse_identity_number(raw, TODAY)


def test_samordningsnummer_day_plus_60() -> None:
    ten = with_check_digit("811278987")  # born 1981-12-18, day 18 + 60 = 78
    ident = parse_identity_number(ten, TODAY)
    assert ident.coordination
    assert ident.birth_date == dt.date(1981, 12, 18)
    assert ident.canonical == "19" + ten


def test_samordningsnummer_with_wrong_check_digit() -> None:
    ten = with_check_digit("811278987")
    bad = ten[:-1] + str((int(ten[-1]) + 1) % 10)
    assert not is_valid_identity_number(bad, TODAY)


def test_plus_means_one_hundred_years_or_older() -> None:
    assert parse_identity_number("811218+9876", TODAY).birth_date.year == 1881
    assert parse_identity_number("811218-9876", TODAY).birth_date.year == 1981


def test_century_inferred_so_birth_is_not_in_future() -> None:
    ten = with_check_digit("250101123")  # 2025-01-01 is in the past on TODAY
    assert parse_identity_number(ten, TODAY).birth_date.year == 2025
    ten = with_check_digit("270101123")  # 2027 would be in the future → 1927
    assert parse_identity_number(ten, TODAY).birth_date.year == 1927


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "10 or 12 digits"),
        ("81121898", "10 or 12 digits"),
        ("811218-98765", "10 or 12 digits"),
        ("19811218+9876", "only used with 10 digits"),
        ("abcdefghij", "10 or 12 digits"),
        (with_check_digit("810230123"), "not a valid date"),  # 30 February
        (with_check_digit("811318123"), "not a valid date"),  # month 13
        ("20" + with_check_digit("300101123"), "future"),  # born 2030-01-01
    ],
)
def test_invalid_forms(raw: str, reason: str) -> None:
    with pytest.raises(IdentityNumberError, match=reason):
        parse_identity_number(raw, TODAY)


def test_error_messages_never_repeat_the_number() -> None:
    with pytest.raises(IdentityNumberError) as info:
        parse_identity_number("811218-9875", TODAY)
    assert "9875" not in str(info.value)
    assert "811218" not in str(info.value)


def test_sex_digit_even_is_female() -> None:
    assert parse_identity_number(with_check_digit("900215246"), TODAY).sex == "F"


@given(st.dates(min_value=dt.date(1910, 1, 1), max_value=dt.date(2024, 12, 31)),
       st.integers(min_value=0, max_value=999), st.booleans())
def test_generated_numbers_round_trip(birth: dt.date, serial: int, coordination: bool) -> None:
    day = birth.day + (60 if coordination else 0)
    ten = with_check_digit(f"{birth:%y%m}{day:02d}{serial:03d}")
    twelve = f"{birth.year}{ten[2:]}"
    ident = parse_identity_number(twelve, TODAY)
    assert ident.birth_date == birth
    assert ident.coordination is coordination
    assert ident.canonical == twelve
    # any single-digit change of the check digit is caught
    wrong = twelve[:-1] + str((int(twelve[-1]) + 3) % 10)
    assert not is_valid_identity_number(wrong, TODAY)


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2024, 12, 31)),
       st.integers(min_value=0, max_value=999), st.integers(min_value=0, max_value=9))
def test_agrees_with_python_stdnum_on_personnummer(birth: dt.date, serial: int,
                                                   check: int) -> None:
    # any check digit, right or wrong: both implementations must give the same verdict
    twelve = f"{birth:%Y%m%d}{serial:03d}{check}"
    try:
        stdnum_pnr.validate(twelve)
        theirs = True
    except ValidationError:
        theirs = False
    assert is_valid_identity_number(twelve, TODAY) is theirs
