"""Reading user input into domain values: one parser per kind of value, used by every entry point.

The CLI, the Prefect forms, the loan-book file and code-built commands all
turn text into amounts, dates, times, vocabularies and ids through these
functions, so the same input is accepted or refused the same way
everywhere. A refusal is an ``InputError`` whose one-line message names the
field, the value as given, and what would be accepted.

Rules that hold for every parser:
- only ASCII digits count as digits (``１００`` and ``١٠٠`` are refused, not read);
- a value is never reinterpreted: ``12,34`` is refused (a comma is only a
  thousands separator between groups of three, as in ``12,345.67``);
- money has at most two decimal places and is never a float.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TypeVar

from states.errors import UserError
from states.money import FEN, MAX_AMOUNT
from states.vocabulary import AGENCY_PREFIX, LENDER

E = TypeVar("E", bound=Enum)


class InputError(UserError):
    """A value given by a user that cannot be read; the message names it and what is accepted."""


_NUMBER = re.compile(r"[+-]?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
OPERATOR_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
OPERATOR_RULE = "1 to 64 characters: letters, digits and . _ @ - (starting with a letter or digit)"
RESERVED_ACTORS = frozenset({"system"})
DATE_RULE = "use YYYY-MM-DD, e.g. 2026-03-31"
MONTH_RULE = "use YYYY-MM, e.g. 2026-03"
DATETIME_RULE = "use YYYY-MM-DDTHH:MM with the time of day, e.g. 2026-03-31T10:30 (or with an offset, 2026-03-31T10:30+08:00)"


def shown(value: object, limit: int = 60) -> str:
    """A value as an error message shows it: quoted, control characters escaped, long values cut."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


def parse_decimal(value: object, field: str) -> Decimal:
    """A decimal number from text, an int or a Decimal (never a float, never a bool)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InputError(f"{field}: {shown(value)} is a float; give the number as text, e.g. '100.50'")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InputError(f"{field}: {shown(str(value))} is not a finite number")
        return value
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        raise InputError(f"{field}: {shown(value)} is not a number")
    text = value.strip()
    if not _NUMBER.fullmatch(text):
        raise InputError(
            f"{field}: {shown(value)} is not a number; use digits 0-9 with an optional decimal point, "
            f"e.g. 1234.56 or 1,234.56"
        )
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        raise InputError(f"{field}: {shown(value)} is not a number") from None


def parse_money(value: object, field: str, *, positive: bool = True) -> Decimal:
    """An amount in yuan with at most two decimal places (fen), quantized to the fen."""
    amount = parse_decimal(value, field)
    if abs(amount) > MAX_AMOUNT:
        raise InputError(f"{field}: {shown(_text(value))} is larger than any amount collectflow takes (at most {MAX_AMOUNT:,})")
    if amount != amount.quantize(FEN):
        raise InputError(f"{field}: {shown(_text(value))} has more than two decimal places; amounts are in yuan to the fen (0.01)")
    if positive and amount <= 0:
        raise InputError(f"{field}: {shown(_text(value))} must be a positive amount, e.g. 100.00")
    if not positive and amount < 0:
        raise InputError(f"{field}: {shown(_text(value))} must not be negative")
    return amount.quantize(FEN)


def parse_int(value: object, field: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise InputError(f"{field}: {shown(value)} is not a whole number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,18}", value.strip()):
        number = int(value.strip())
    else:
        raise InputError(f"{field}: {shown(value)} is not a whole number (digits 0-9)")
    if minimum is not None and number < minimum:
        raise InputError(f"{field}: {number} must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise InputError(f"{field}: {number} must be at most {maximum}")
    return number


def parse_date(value: object, field: str) -> date:
    """A calendar date, YYYY-MM-DD (a ``date`` passes through; a date with a time is refused)."""
    if isinstance(value, datetime):
        raise InputError(f"{field}: {shown(value.isoformat())} has a time of day; {DATE_RULE}")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InputError(f"{field}: {shown(value)} is not a date; {DATE_RULE}")


def parse_month(value: object, field: str) -> date:
    """A calendar month, YYYY-MM; the month's last day (how ``states.credit`` names a month's records)."""
    from states.credit import month_end_of  # on use: it brings the lifecycle machine, which quick commands skip

    if isinstance(value, str):
        last_day = month_end_of(value.strip())
        if last_day is not None:
            return last_day
    raise InputError(f"{field}: {shown(value)} is not a month; {MONTH_RULE}")


def parse_datetime(value: object, field: str) -> datetime:
    """A date with its time of day (and optionally a UTC offset); a bare date is refused."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATETIME.fullmatch(value.strip()):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InputError(f"{field}: {shown(value)} is not a date and time; {DATETIME_RULE}")


def parse_enum(enum: type[E], value: object, field: str) -> E:
    """A member of a vocabulary, by its value; the message lists every accepted value."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value.strip())
        except ValueError:
            pass
    accepted = ", ".join(str(member.value) for member in enum)
    raise InputError(f"{field}: {shown(value)} is not one of {accepted}")


def parse_text(value: object, field: str, *, required: bool = True, max_chars: int = 500) -> str:
    """Free text (a reason, a note): trimmed, no control characters, bounded in length."""
    if not isinstance(value, str):
        raise InputError(f"{field}: {shown(value)} is not text")
    text = value.strip()
    if required and not text:
        raise InputError(f"{field}: must not be empty")
    if _CONTROL.search(text):
        raise InputError(f"{field}: {shown(value)} contains control characters")
    if len(text) > max_chars:
        raise InputError(f"{field}: {len(text)} characters is more than the {max_chars} accepted")
    return text


def parse_code(value: object, field: str, *, max_chars: int = 128) -> str:
    """An identifier from another system (a payment id, a case reference): trimmed, printable, no spaces inside."""
    text = parse_text(value, field, max_chars=max_chars)
    if any(ch.isspace() for ch in text):
        raise InputError(f"{field}: {shown(value)} contains spaces; an id is one word")
    return text


_FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def parse_flag(value: object, field: str) -> bool:
    """Yes or no: a bool, or true/false, yes/no, 1/0 as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _FLAGS:
        return _FLAGS[value.strip().lower()]
    raise InputError(f"{field}: {shown(value)} is not yes or no; use true or false")


def parse_contact_by(value: object, field: str = "by") -> str:
    """Who made a contact: ``lender`` or ``agency:NAME`` (NAME an id, as an agency registry would give it)."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.lower() == LENDER:
        return LENDER
    if isinstance(text, str) and text.lower().startswith(AGENCY_PREFIX):
        name = text[len(AGENCY_PREFIX):]
        if name.strip():
            return AGENCY_PREFIX + parse_code(name, f"{field} (agency name)", max_chars=64)
    raise InputError(f"{field}: {shown(value)} is not who made a contact; use {LENDER} or {AGENCY_PREFIX}NAME (e.g. {AGENCY_PREFIX}acme)")


def parse_operator(value: object, field: str = "operator") -> str:
    """An operator id: the actor recorded on every event an operator causes."""
    if not isinstance(value, str) or not OPERATOR_PATTERN.fullmatch(value.strip()):
        raise InputError(f"{field}: {shown(value)} is not an operator id; {OPERATOR_RULE}")
    operator = value.strip()
    if operator.lower() in RESERVED_ACTORS:
        raise InputError(f"{field}: {operator!r} is reserved for the system's own events; give your operator id")
    return operator


def renamed(message: str, names: Mapping[str, str]) -> str:
    """A refusal's message with each field named as an entry point names it (``received_on`` -> ``--on``).

    A message names its field first (``received_on: ...``); a name of two words or more
    (``backdate_reason``, an action's ``write-off-case``) is also renamed wherever the message names it."""
    for name, label in names.items():
        if message.startswith(f"{name}:") or message.startswith(f"{name} ("):
            message = label + message[len(name):]
        if "_" in name or "-" in name:
            message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", lambda _: label, message)
    return message


def _text(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value
