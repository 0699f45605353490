"""A borrower's personal data: validated, normalised, and masked wherever it is shown.

Personal data here is the borrower's name, resident identity number
(national id), mobile phone and address, and the guarantor's name and phone.
Outside the encrypted store they only ever appear masked: ``138****1234``,
``3101**********1234``, ``张*``. Every error message in this module shows
the value masked (with its length), never in the clear, so that an error
can be logged, put in a Prefect artifact or printed safely.

Rules (each error names the field, the masked value and what is accepted):

- national id (GB 11643-1999): 18 characters, 17 digits and a check
  character 0-9 or X (a lower-case x is read as X); the first two digits a
  province code; digits 7-14 a real birth date (YYYYMMDD) from 1900 on; the
  check character the ISO 7064 MOD 11-2 checksum of the first 17 digits.
- mobile phone: 11 digits starting 13-19 (mainland China); spaces and
  dashes are ignored, as is a +86 / 0086 / 86 country prefix.
- names: 2 to 30 characters, letters of any script, with the separators
  ``·`` (as in minority names), space, hyphen, apostrophe and full stop.
- address: 5 to 200 characters, no control characters, at least one letter.
- a borrower is at least 18 years old on the contract date.
"""

from __future__ import annotations

from states.errors import UserError

import re
import unicodedata
from dataclasses import dataclass, fields
from datetime import date

from states.defaults import DEFAULT_TIMEZONE
from states.events import DetailChange

NATIONAL_ID_LENGTH = 18
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"  # indexed by (weighted sum mod 11)
# Provinces, Taiwan, Hong Kong, Macau, Taiwan residents' permits (83), foreigners' permanent residence (91)
PROVINCE_CODES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91}
)
MIN_BIRTH_YEAR = 1900
MIN_BORROWER_AGE = 18

MOBILE = re.compile(r"1[3-9]\d{9}")
_PHONE_NOISE = re.compile(r"[\s\-()]")
_NAME_SEPARATORS = frozenset("·• -'.")
NAME_LENGTH = (2, 30)
ADDRESS_LENGTH = (5, 200)

ACCEPTED = {
    "national_id": "18 characters: 17 digits and a check digit 0-9 or X (GB 11643), "
    "with a province code and a real birth date",
    "phone": "an 11-digit mainland mobile number starting 13-19 (a +86 prefix, spaces and dashes are ignored)",
    "name": f"{NAME_LENGTH[0]} to {NAME_LENGTH[1]} letters; the separators · space - ' . are allowed, digits are not",
    "address": f"{ADDRESS_LENGTH[0]} to {ADDRESS_LENGTH[1]} characters with at least one letter, no control characters",
}


class BorrowerError(UserError):
    """A personal value that is not valid. ``shown`` is the value masked, never the clear value."""

    def __init__(self, field: str, shown: str, problem: str, accepted: str):
        self.field, self.shown, self.problem, self.accepted = field, shown, problem, accepted
        super().__init__(f"{field}: {shown!r} {problem}; accepted: {accepted}")


# --------------------------------------------------------------------------
# masking: what may be shown of a personal value


def mask_phone(value: str) -> str:
    """``13812341234`` -> ``138****1234``: the carrier prefix and the last four digits."""
    return _mask_ends(value, 3, 4)


def mask_national_id(value: str) -> str:
    """``310101199001011234`` -> ``3101**********1234``: the first four and last four characters."""
    return _mask_ends(value, 4, 4)


def mask_name(value: str) -> str:
    """``张三`` -> ``张*``, ``欧阳娜娜`` -> ``欧***``: the first character only."""
    value = value.strip()
    return value[:1] + "*" * (len(value) - 1) if len(value) > 1 else "*" * len(value)


def mask_address(value: str) -> str:
    """The first few characters (about the province and city), then ``****`` whatever the length."""
    value = value.strip()
    return value[: min(6, len(value) // 2)] + "****" if value else ""


def _mask_ends(value: str, head: int, tail: int) -> str:
    value = value.strip()
    if len(value) <= head + tail:
        return "*" * len(value)  # too short to show any part of it safely
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


MASKS = {
    "borrower_name": mask_name,
    "guarantor_name": mask_name,
    "national_id": mask_national_id,
    "phone": mask_phone,
    "guarantor_phone": mask_phone,
    "address": mask_address,
}


def mask(field: str, value: str | None) -> str | None:
    """A personal value masked by its field's rule (``None`` stays ``None``)."""
    return None if value is None else MASKS[field](value)


# --------------------------------------------------------------------------
# validation


def national_id(value: str, field: str = "national_id") -> str:
    """The national id normalised (upper-case X), or ``BorrowerError``."""
    text = value.strip().upper()
    shown = f"{mask_national_id(text)}"

    def bad(problem: str) -> BorrowerError:
        return BorrowerError(field, shown, problem, ACCEPTED["national_id"])

    if len(text) != NATIONAL_ID_LENGTH:
        raise bad(f"has {len(text)} characters, not {NATIONAL_ID_LENGTH}")
    if not text[:17].isdigit() or not text[:17].isascii():
        raise bad("has a character other than a digit in its first 17")
    if text[17] not in "0123456789X":
        raise bad("ends in a character other than a digit or X")
    if int(text[:2]) not in PROVINCE_CODES:
        raise bad(f"starts with {text[:2]}, which is not a province code")
    if _birth_date(text) is None:
        raise bad(f"has no real birth date in characters 7-14 (YYYYMMDD, from {MIN_BIRTH_YEAR})")
    expected = check_character(text[:17])
    if text[17] != expected:
        raise bad("fails its checksum: the last character does not match the first 17 (a typo?)")
    return text


def check_character(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of a national id."""
    return ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS)) % 11]


def birth_date(valid_national_id: str) -> date:
    """The birth date a (valid) national id holds."""
    born = _birth_date(valid_national_id)
    if born is None:
        raise BorrowerError("national_id", mask_national_id(valid_national_id), "holds no birth date", ACCEPTED["national_id"])
    return born


def _birth_date(text: str) -> date | None:
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return None
    return born if born.year >= MIN_BIRTH_YEAR else None


def age_on(valid_national_id: str, day: date) -> int:
    """Whole years of age on ``day`` (a 29 February birthday comes on 1 March in other years)."""
    born = birth_date(valid_national_id)
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def check_adult(valid_national_id: str, on: date, field: str = "national_id") -> None:
    """Refuse a borrower born after ``on`` or younger than 18 on it (no lending to minors)."""
    born = birth_date(valid_national_id)
    shown = mask_national_id(valid_national_id)
    if born > on:
        raise BorrowerError(field, shown, f"holds a birth date after the contract date {on}", "a borrower born before the contract date")
    if age_on(valid_national_id, on) < MIN_BORROWER_AGE:
        raise BorrowerError(
            field, shown, f"belongs to a borrower under {MIN_BORROWER_AGE} on the contract date {on}",
            f"a borrower aged {MIN_BORROWER_AGE} or over on the contract date",
        )


def phone(value: str, field: str = "phone") -> str:
    """The mobile number as 11 digits, or ``BorrowerError``."""
    digits = _PHONE_NOISE.sub("", value.strip())
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    if not MOBILE.fullmatch(digits) or not digits.isascii():
        if not digits:
            problem = "is empty"
        elif not digits.isdigit() or not digits.isascii():
            problem = "has characters other than digits"
        elif len(digits) != 11:
            problem = f"has {len(digits)} digits, not 11"
        else:
            problem = "does not start 13-19, as a mainland mobile number does"
        raise BorrowerError(field, mask_phone(digits), problem, ACCEPTED["phone"])
    return digits


def name(value: str, field: str = "borrower_name") -> str:
    """A person's name with surrounding and repeated spaces removed, or ``BorrowerError``."""
    text = " ".join(value.split())
    low, high = NAME_LENGTH
    shown = mask_name(text)
    if not low <= len(text) <= high:
        raise BorrowerError(field, shown, f"has {len(text)} characters", ACCEPTED["name"])
    if not text[0].isalpha():
        raise BorrowerError(field, shown, "does not start with a letter", ACCEPTED["name"])
    for char in text:
        if not (char.isalpha() or char in _NAME_SEPARATORS or unicodedata.category(char) == "Mn"):
            kind = "a digit" if char.isdigit() else "a character that is neither a letter nor a separator"
            raise BorrowerError(field, shown, f"contains {kind}", ACCEPTED["name"])
    return text


def address(value: str, field: str = "address") -> str:
    """A postal address with surrounding spaces removed, or ``BorrowerError``."""
    text = value.strip()
    low, high = ADDRESS_LENGTH
    shown = mask_address(text)
    if not low <= len(text) <= high:
        raise BorrowerError(field, shown, f"has {len(text)} characters", ACCEPTED["address"])
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise BorrowerError(field, shown, "contains a control character (a line break?)", ACCEPTED["address"])
    if not any(c.isalpha() for c in text):
        raise BorrowerError(field, shown, "has no letter in it", ACCEPTED["address"])
    return text


# --------------------------------------------------------------------------
# the details of one loan's borrower


# The details an amendment may change; the national id says who the borrower is and never changes.
AMENDABLE = ("borrower_name", "phone", "address", "guarantor_name", "guarantor_phone", "timezone")


@dataclass(frozen=True)
class BorrowerDetails:
    """A loan's borrower as the contract gives them. Its repr is masked, so a traceback
    or a log line that prints one shows no clear personal value."""

    borrower_name: str
    national_id: str
    phone: str
    address: str | None = None
    guarantor_name: str | None = None
    guarantor_phone: str | None = None
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        # valid however it is built; each check raises BorrowerError with the value masked
        object.__setattr__(self, "borrower_name", name(self.borrower_name, "borrower_name"))
        object.__setattr__(self, "national_id", national_id(self.national_id))
        object.__setattr__(self, "phone", phone(self.phone))
        if self.address is not None:
            object.__setattr__(self, "address", address(self.address))
        if self.guarantor_name is not None:
            object.__setattr__(self, "guarantor_name", name(self.guarantor_name, "guarantor_name"))
        if self.guarantor_phone is not None:
            object.__setattr__(self, "guarantor_phone", phone(self.guarantor_phone, "guarantor_phone"))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.masked().items() if v is not None)
        return f"BorrowerDetails({shown})"

    __str__ = __repr__

    def masked(self) -> dict[str, str | None]:
        return {
            f.name: getattr(self, f.name) if f.name not in MASKS else mask(f.name, getattr(self, f.name))
            for f in fields(self)
        }

    def personal(self) -> dict[str, str | None]:
        """The personal fields in the clear (what the store encrypts)."""
        return {name_: getattr(self, name_) for name_ in MASKS}

    def changes_to(self, other: BorrowerDetails) -> tuple[DetailChange, ...]:
        """What differs from ``other``, field by field, masked."""
        return tuple(
            DetailChange(f.name, _shown(f.name, getattr(self, f.name)), _shown(f.name, getattr(other, f.name)))
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        )


def _shown(field: str, value: str | None) -> str | None:
    return mask(field, value) if field in MASKS else value
