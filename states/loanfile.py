"""The loan file's columns and row rules: what a row must hold to be booked, each problem named.

A row is a mapping of column name to value as given (text from a CSV file,
a JSON value from JSON Lines). ``parse_row`` checks it column by column, then
as a whole, and returns a ``LoanRecord`` (the contract's ``LoanTerms`` and
its ``BorrowerDetails``), or raises ``RowRejected`` listing every problem:
row, column, the value (masked in a personal column) and what is accepted.
A loan built in code is checked by the same function (``check_record``).

The columns are the fields of those two classes: the financial ones are
``LoanTerms``' (what each accepts is declared beside the field, see
``states.loan.term``), the personal ones ``BorrowerDetails'``; an optional
column left empty takes the field's default. Values are read by
``states.parse``, as every other entry point reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, Field, asdict, dataclass, fields, replace
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from states import borrower as personal
from states.borrower import BorrowerDetails, BorrowerError
from states.caps import CapError, LprTable, annual_cap_rate
from states.loan import (
    CODE,
    TERM_FIELDS,
    LoanTerms,
    LoanTermsError,
    term_kind,
    term_value,
)
from states.parse import (
    parse_code,
    parse_date,
    parse_decimal,
    parse_enum,
    parse_int,
    parse_money,
)
from states.rows import Bad as _Bad
from states.rows import Column, RowCheck, RowError, RowRejected
from states.rows import parsed as _parsed
from states.schedule import MAX_FIRST_PERIOD_DAYS


@dataclass(frozen=True, repr=False)
class LoanRecord:
    """One loan to book: its terms and its borrower. Its repr is masked."""

    row: int
    terms: LoanTerms
    borrower: BorrowerDetails
    case_id: str | None = None  # default: case_id_for(contract_no)

    def __repr__(self) -> str:
        return f"LoanRecord(row={self.row}, contract_no={self.terms.contract_no!r}, borrower={self.borrower!r})"

    @property
    def contract_no(self) -> str:
        return self.terms.contract_no


def case_id_for(contract_no: str) -> str:
    """The case id of an imported loan: its contract number, prefixed (never clashes with the demo's CF ids)."""
    return f"C-{contract_no}"


# --------------------------------------------------------------------------
# reading one value


def _code(text: str, column: str) -> str:
    code = _parsed(lambda: parse_code(text, column, max_chars=64), text, column)
    if not CODE.fullmatch(code):
        raise _Bad("has characters other than letters, digits and - _ . /")
    return code


def _money(positive: bool) -> Callable[[str, str], Decimal]:
    return lambda text, column: _parsed(lambda: parse_money(text, column, positive=positive), text, column)


def _fraction(below: Decimal | None, at_most: Decimal | None) -> Callable[[str, str], Decimal]:
    def read(text: str, column: str) -> Decimal:
        if text.endswith("%"):
            raise _Bad("is a percentage; write it as a fraction (18 % is 0.18)")
        rate = _parsed(lambda: parse_decimal(text, column), text, column)
        if rate < 0:
            raise _Bad("is negative")
        if below is not None and rate >= below:
            raise _Bad(f"is {below} or more: it would be {(rate * 100).normalize():f} %; write 18 % as 0.18")
        if at_most is not None and rate > at_most:
            raise _Bad(f"is above {at_most}")
        return Decimal(f"{rate.normalize():f}")  # one spelling: 0.180 and 0.18 are the same rate

    return read


def _whole(maximum: int) -> Callable[[str, str], int]:
    def read(text: str, column: str) -> int:
        number = _parsed(lambda: parse_int(text, column), text, column)
        if not 1 <= number <= maximum:
            raise _Bad(f"is not between 1 and {maximum}")
        return number

    return read


def _date(text: str, column: str) -> date:
    return _parsed(lambda: parse_date(text, column), text, column)


def _choice(enum: type[Enum], aliases: Mapping[str, str]) -> Callable[[str, str], Enum]:
    spellings = {**{m.value.lower(): m.value for m in enum}, **aliases}  # act/360, 等额本息

    def read(text: str, column: str) -> Enum:
        value = spellings.get(text, spellings.get(text.lower(), text))
        return _parsed(lambda: parse_enum(enum, value, column), text, column)

    return read


_TRUE, _FALSE = {"true", "yes", "y", "1", "是"}, {"false", "no", "n", "0", "否"}


def _yes_no(text: str, column: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise _Bad("is neither true nor false")


def _zone(text: str, column: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Bad("is not an IANA time zone name") from None
    return text


def _personal(check: Callable[[str, str], str]) -> Callable[[str, str], str]:
    def read(text: str, column: str) -> str:
        try:
            return check(text, column)
        except BorrowerError as exc:
            raise _Bad(exc.problem, exc.accepted) from None

    return read


# --------------------------------------------------------------------------
# the columns


def _reader(name: str, about: Mapping[str, Any]) -> Callable[[str, str], Any]:
    """How a term's column is read, from the term's type and what its field declares."""
    kind = term_kind(name)
    if kind is str:
        return _code
    if kind is bool:
        return _yes_no
    if kind is int:
        return _whole(about["maximum"])
    if kind is date:
        return _date
    if issubclass(kind, Enum):
        return _choice(kind, about.get("aliases", {}))
    if about.get("money"):
        return _money(about.get("positive", False))
    return _fraction(about.get("below"), about.get("at_most"))


def _written(value: object) -> str:
    """A value as a loan file writes it: true/false, 2026-09-15, ACT/360, 0.5."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _optional(name: str, default: object, accepted: str, read: Callable[[str, str], Any], documented: str | None) -> Column:
    if default is None:
        return Column(name, False, documented or "none", accepted, read)
    text = f"{default.normalize():f}" if isinstance(default, Decimal) else _written(default)  # 0.00 is documented 0
    return Column(name, False, documented or text, accepted, read, fallback=text)


def _column(f: Field, accepted: str, read: Callable[[str, str], Any], documented: str | None = None) -> Column:
    if f.default is MISSING:
        return Column(f.name, True, None, accepted, read)
    return _optional(f.name, f.default, accepted, read, documented)


# The borrower's columns, in the file's order: how each is read and what it accepts.
_BORROWER: dict[str, tuple[Callable[[str, str], Any], str]] = {
    "borrower_name": (_personal(personal.name), personal.ACCEPTED["name"]),
    "national_id": (
        _personal(personal.national_id),
        personal.ACCEPTED["national_id"] + f"; the borrower {personal.MIN_BORROWER_AGE} or over on the contract date",
    ),
    "phone": (_personal(personal.phone), personal.ACCEPTED["phone"]),
    "guarantor_name": (_personal(personal.name), personal.ACCEPTED["name"]),
    "guarantor_phone": (
        _personal(personal.phone),
        personal.ACCEPTED["phone"] + "; only with guarantor_name, and not the borrower's phone",
    ),
    "address": (_personal(personal.address), personal.ACCEPTED["address"]),
    "timezone": (_zone, "an IANA time zone such as Asia/Shanghai or Asia/Urumqi (the borrower's local time)"),
}


def _columns() -> tuple[Column, ...]:
    terms = [
        _column(f, f.metadata["accepted"], _reader(f.name, f.metadata), f.metadata.get("documented_default"))
        for f in fields(LoanTerms)
        if f.name in TERM_FIELDS
    ]
    details = {f.name: f for f in fields(BorrowerDetails)}
    if set(details) != set(_BORROWER):
        raise RuntimeError(f"the loan file's borrower columns {sorted(_BORROWER)} are not BorrowerDetails' {sorted(details)}")
    people = [_column(details[name], accepted, read) for name, (read, accepted) in _BORROWER.items()]
    # the required columns first, the contract's before the borrower's
    return tuple(c for required in (True, False) for group in (terms, people) for c in group if c.required is required)


COLUMNS: tuple[Column, ...] = _columns()
COLUMN = {c.name: c for c in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
PERSONAL = tuple(personal.MASKS)  # the personal columns, always shown masked
# What an import never changes on a booked contract: every term but the contract number, which names it.
FINANCIAL = tuple(name for name in TERM_FIELDS if name != "contract_no")


# --------------------------------------------------------------------------
# one row


def _shown(column: str, text: str) -> str:
    """A value as an error message may show it: masked in a personal column."""
    return personal.mask(column, text) if column in personal.MASKS else text


def parse_row(raw: Mapping[str, object], row: int, business_date: date, lpr: LprTable) -> LoanRecord:
    """One row checked column by column, then as a whole; ``RowRejected`` lists every problem found."""
    check = RowCheck(raw, row, COLUMNS, _shown)
    values, texts, refuse, ok = check.values, check.texts, check.refuse, check.ok

    # the row as a whole
    if ok("disbursed_on") and values["disbursed_on"] > business_date:
        refuse("disbursed_on", texts["disbursed_on"], f"is after the import's business date {business_date}")
    if ok("disbursed_on", "first_due_on"):
        days = (values["first_due_on"] - values["disbursed_on"]).days
        if days < 1:
            refuse("first_due_on", texts["first_due_on"], f"is not after disbursed_on {values['disbursed_on']}")
        elif days > MAX_FIRST_PERIOD_DAYS:
            refuse("first_due_on", texts["first_due_on"], f"is {days} days after disbursed_on {values['disbursed_on']}")
    contract_date = values.get("contract_date") or values.get("disbursed_on")
    if ok("contract_date", "disbursed_on") and values["contract_date"] > values["disbursed_on"]:
        refuse("contract_date", texts["contract_date"], f"is after disbursed_on {values['disbursed_on']}")
    if contract_date is not None and ok("cap_regime"):
        try:
            annual_cap_rate(values["cap_regime"], contract_date, lpr)
        except CapError as exc:
            refuse("cap_regime", texts["cap_regime"] or COLUMN["cap_regime"].default, f"cannot apply: {exc}")
    if contract_date is not None and ok("national_id"):
        try:
            personal.check_adult(values["national_id"], contract_date)
        except BorrowerError as exc:
            refuse("national_id", texts["national_id"], exc.problem, exc.accepted)
    if values.get("guarantor_phone") is not None:
        if texts.get("guarantor_name") == "":
            refuse("guarantor_phone", texts["guarantor_phone"], "is given without guarantor_name")
        elif values["guarantor_phone"] == values.get("phone"):
            refuse("guarantor_phone", texts["guarantor_phone"], "is the borrower's own phone")
    check.done()

    try:
        terms = LoanTerms(**{name: values[name] for name in TERM_FIELDS})
    except LoanTermsError as exc:  # a rule of the contract itself no single column breaks
        column = str(exc).split(":")[0].split(" ")[0]
        column = column if column in COLUMN else "contract_no"
        raise RowRejected([RowError(row, column, _shown(column, texts.get(column, "")), f"is refused: {exc}", COLUMN[column].accepted)]) from None
    details = BorrowerDetails(**{name: values[name] for name in _BORROWER})
    return LoanRecord(row, terms, details)


def record_values(record: LoanRecord) -> dict[str, object]:
    """A record as a row of the loan file would give it."""
    return {**record.terms.record(), **asdict(record.borrower)}


def check_record(record: LoanRecord, business_date: date, lpr: LprTable) -> LoanRecord:
    """A record built in code, checked by the rules of a file's row (and spelled as one)."""
    return replace(parse_row(record_values(record), record.row, business_date, lpr), case_id=record.case_id)


# --------------------------------------------------------------------------
# a row against what is booked


def financial_differences(booked: Mapping[str, object], terms: LoanTerms) -> list[tuple[str, str, str]]:
    """(column, booked value, file value) for each financial term that differs, compared as values
    (0.180 == 0.18). ``booked`` holds the booked terms by name, as ``LoanTerms.record()`` or a stored row spells them."""
    differences = []
    for name in FINANCIAL:
        was, given = term_value(name, booked[name]), getattr(terms, name)
        if was != given:
            differences.append((name, _written(was), _written(given)))
    return differences


class People:
    """Who is who: one borrower_id is one person (one national id), and one person has one borrower_id.

    Built from what is booked, as (contract, borrower_id, national id hash),
    and told of each record booked; the hash is the keyed one the store
    keeps, so no national id is held in the clear."""

    def __init__(self, known: Iterable[tuple[str, str, str]]):
        self.by_id: dict[str, tuple[str, str]] = {}  # borrower_id -> (national id hash, contract)
        self.by_hash: dict[str, tuple[str, str]] = {}  # national id hash -> (borrower_id, contract)
        for contract_no, borrower_id, match_hash in known:
            self.by_id.setdefault(borrower_id, (match_hash, contract_no))
            self.by_hash.setdefault(match_hash, (borrower_id, contract_no))

    def add(self, record: LoanRecord, match_hash: str) -> None:
        self.by_id.setdefault(record.terms.borrower_id, (match_hash, record.contract_no))
        self.by_hash.setdefault(match_hash, (record.terms.borrower_id, record.contract_no))

    def conflict(self, record: LoanRecord, match_hash: str) -> RowError | None:
        borrower_id = record.terms.borrower_id
        seen = self.by_id.get(borrower_id)
        if seen is not None and seen[0] != match_hash and seen[1] != record.contract_no:
            return RowError(
                record.row, "national_id", personal.mask_national_id(record.borrower.national_id),
                f"differs from the national id of borrower_id {borrower_id} on contract {seen[1]}",
                "one borrower_id is one person: the same national id on all their loans",
            )
        other = self.by_hash.get(match_hash)
        if other is not None and other[0] != borrower_id and other[1] != record.contract_no:
            return RowError(
                record.row, "borrower_id", borrower_id,
                f"is not the borrower_id {other[0]} this national id has on contract {other[1]}",
                "one person has one borrower_id on all their loans",
            )
        return None
