"""Personal data in the domain: national ids (GB 11643), mobile numbers, names, addresses,
masking, and the events that record an amendment or a read without a clear value."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from states import borrower
from states.borrower import BorrowerDetails, BorrowerError, check_character
from states.events import BorrowerDetailsAmended, DetailChange, PersonalDataRead
from tests.unit.conftest import DUE, POLICY, contact_cmd, open_case, stored

# A valid id: Beijing Dongcheng, born 1990-03-07, sequence 123, and its check digit.
ID = "11010119900307123" + check_character("11010119900307123")


def details(**overrides) -> BorrowerDetails:
    values = dict(borrower_name="张三", national_id=ID, phone="13812341234", address="北京市东城区东长安街1号")
    values.update(overrides)
    return BorrowerDetails(**values)


# --------------------------------------------------------------------------- national id


@pytest.mark.parametrize(
    "first17, check",
    [
        ("11010519491231002", "X"),  # the standard's own worked example
        ("44052419800101001", "3"),  # worked by hand: weighted sum 196, 196 mod 11 = 9 -> "3"
    ],
)
def test_the_check_character_is_iso_7064_mod_11_2(first17, check):
    assert check_character(first17) == check
    assert borrower.national_id(first17 + check) == first17 + check


def test_a_lower_case_x_is_read_as_x():
    assert borrower.national_id("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    "value, problem",
    [
        (ID[:17], "has 17 characters, not 18"),
        (ID + "1", "has 19 characters, not 18"),
        ("1101011990030712A4", "a character other than a digit"),
        ("11010119900307123Y", "ends in a character other than a digit or X"),
        ("99010119900307123" + check_character("99010119900307123"), "starts with 99, which is not a province code"),
        ("11010119900230123" + check_character("11010119900230123"), "no real birth date"),
        ("11010118890307123" + check_character("11010118890307123"), "no real birth date"),
        (ID[:17] + str((int(ID[17]) + 1) % 10) if ID[17] != "X" else ID[:17] + "0", "fails its checksum"),
    ],
    ids=["17-digits", "19-digits", "letter-inside", "bad-last-char", "province", "feb-30", "before-1900", "checksum"],
)
def test_a_bad_national_id_is_refused_with_the_value_masked(value, problem):
    with pytest.raises(BorrowerError, match=problem) as caught:
        borrower.national_id(value)
    assert value not in str(caught.value) and value.upper() not in str(caught.value)
    assert caught.value.shown == borrower.mask_national_id(value.strip().upper())
    assert "17 digits and a check digit" in caught.value.accepted


def test_the_birth_date_and_age_come_from_the_id():
    assert borrower.birth_date(ID) == date(1990, 3, 7)
    assert borrower.age_on(ID, date(2008, 3, 6)) == 17
    assert borrower.age_on(ID, date(2008, 3, 7)) == 18


def test_a_leap_day_birthday_comes_of_age_on_the_first_of_march():
    leap = "11010120000229123" + check_character("11010120000229123")
    assert borrower.age_on(leap, date(2018, 2, 28)) == 17
    assert borrower.age_on(leap, date(2018, 3, 1)) == 18


def test_no_lending_to_a_minor_or_someone_not_yet_born():
    borrower.check_adult(ID, date(2008, 3, 7))
    with pytest.raises(BorrowerError, match="under 18 on the contract date 2008-03-06"):
        borrower.check_adult(ID, date(2008, 3, 6))
    with pytest.raises(BorrowerError, match="birth date after the contract date"):
        borrower.check_adult(ID, date(1989, 1, 1))


# --------------------------------------------------------------------------- phone, name, address


@pytest.mark.parametrize(
    "given", ["13812341234", " 138 1234 1234 ", "138-1234-1234", "+86 138 1234 1234", "008613812341234", "8613812341234"]
)
def test_a_mobile_number_is_normalised_to_eleven_digits(given):
    assert borrower.phone(given) == "13812341234"


@pytest.mark.parametrize(
    "given, problem",
    [
        ("1381234123", "has 10 digits, not 11"),
        ("12812341234", "does not start 13-19"),
        ("010-12345678", "does not start 13-19"),  # a landline
        ("1381234123x", "characters other than digits"),
        ("", "is empty"),
    ],
)
def test_a_bad_mobile_number_is_refused_masked(given, problem):
    with pytest.raises(BorrowerError, match=problem) as caught:
        borrower.phone(given)
    digits = given.replace("-", "")
    assert not digits or digits not in str(caught.value)


@pytest.mark.parametrize("given", ["张三", "欧阳娜娜", "阿依古丽·吐尔逊", "John Smith", "Anne-Marie O'Neil"])
def test_names_of_any_script_with_their_separators_are_accepted(given):
    assert borrower.name(given) == given


@pytest.mark.parametrize(
    "given, problem", [("张", "has 1 characters"), ("张3", "contains a digit"), ("·张三", "does not start with a letter"), ("张三@", "neither a letter")]
)
def test_a_bad_name_is_refused(given, problem):
    with pytest.raises(BorrowerError, match=problem):
        borrower.name(given)


def test_an_address_needs_a_letter_and_no_line_break():
    assert borrower.address("  北京市东城区东长安街1号 ") == "北京市东城区东长安街1号"
    with pytest.raises(BorrowerError, match="control character"):
        borrower.address("北京市东城区\n东长安街1号")
    with pytest.raises(BorrowerError, match="has no letter"):
        borrower.address("123456")
    with pytest.raises(BorrowerError, match="has 4 characters"):
        borrower.address("北京东城")


# --------------------------------------------------------------------------- masking


def test_masks_follow_the_house_formats():
    assert borrower.mask_phone("13812341234") == "138****1234"
    assert borrower.mask_national_id("310101199001011234") == "3101**********1234"
    assert borrower.mask_name("张三") == "张*"
    assert borrower.mask_name("欧阳娜娜") == "欧***"
    assert borrower.mask_address("北京市东城区东长安街1号") == "北京市东城区****"
    assert borrower.mask_address("北京东城区") == "北京****"  # at most half of a short address
    assert borrower.mask_phone("1234567") == "*******"  # too short to show any part


def test_the_repr_of_borrower_details_is_masked():
    person = details(guarantor_name="李四", guarantor_phone="13998765432")
    text = repr(person) + str(person) + repr([person])
    for clear in ("张三", ID, "13812341234", "东长安街", "李四", "13998765432"):
        assert clear not in text
    assert "138****1234" in text and "张*" in text


def test_borrower_details_are_valid_however_they_are_built():
    with pytest.raises(BorrowerError, match="phone"):
        details(phone="1381234")
    assert details(phone="+86 138-1234-1234").phone == "13812341234"


def test_changes_name_each_field_masked():
    before = details()
    after = details(phone="13998765432", address=None)
    assert before.changes_to(after) == (
        DetailChange("phone", "138****1234", "139****5432"),
        DetailChange("address", "北京市东城区****", None),
    )
    assert before.changes_to(details()) == ()


# --------------------------------------------------------------------------- the events


def test_an_amendment_is_an_event_of_masked_values_that_replays():
    case = open_case()
    events = case.amend_borrower_details(
        details().changes_to(details(phone="13998765432")), DUE, actor="op-1", source="loans.csv row 7"
    )
    (event,) = events
    assert isinstance(event, BorrowerDetailsAmended) and event.actor == "op-1"
    assert "13998765432" not in event.canonical_json() and "139****5432" in event.canonical_json()
    again = type(case).replay(stored(case.log))
    assert again.snapshot() == case.snapshot()


def test_a_new_phone_number_clears_the_unreachable_count():
    case = open_case()
    case.advance(DUE.replace(day=5), POLICY)
    for hour in (9, 10, 11):
        case.record_contact(contact_cmd(case, "call", "borrower", "invalid_number", datetime(2024, 3, 5, hour), operator="op-1"))
    assert case.contact.number_invalid and case.contact.failed_in_a_row == 3
    case.amend_borrower_details(details().changes_to(details(phone="13998765432")), date(2024, 3, 5), actor="op-1")
    assert not case.contact.number_invalid and case.contact.failed_in_a_row == 0
    refused = case.record_contact(contact_cmd(case, "call", "guarantor", "connected", datetime(2024, 3, 5, 14), operator="op-1"))
    assert refused[0].type == "ContactRefused"  # the borrower may be reachable again: no third party yet


def test_a_read_of_personal_data_records_the_fields_and_the_purpose_never_the_value():
    case = open_case()
    (event,) = case.record_personal_data_read(("phone",), DUE, actor="collector-9", purpose="collection call")
    assert isinstance(event, PersonalDataRead)
    assert json.loads(event.canonical_json())["payload"] == {"fields": ["phone"], "purpose": "collection call"}
    with pytest.raises(ValueError, match="named operator"):
        case.record_personal_data_read(("phone",), DUE, actor="system", purpose="x")
    with pytest.raises(ValueError, match="name the personal fields"):
        case.record_personal_data_read((), DUE, actor="op", purpose="x")
