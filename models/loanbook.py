"""The loan book: import contracts and their borrowers from a CSV or JSON Lines file.

    import_file(store, path, business_date, ...)
      read     rows streamed from the file (CSV or JSON Lines, by extension; .gz too)
      check    every column of every row; a bad row is written to the rejects
               file with each problem named (row, column, value, what is accepted)
      chunk    ~2,000 good rows at a time, in one transaction each:
               new contract   -> loan, schedule, case, opening event, reviews up to
                                 the business date, and the encrypted borrower row
               same row again -> nothing
               changed row    -> refused; with ``amend`` a change of contact details
                                 is recorded as a ``BorrowerDetailsAmended`` event
                                 and the borrower row rewritten; financial terms and
                                 the borrower's identity are never amended

Idempotent on ``contract_no``: importing the same file twice books nothing
the second time, and a crash half-way is repaired by importing it again.
Memory is bounded by the chunk, whatever the file's size.

**What an amendment may change.** Contact details: ``borrower_name`` (a
corrected spelling), ``phone``, ``address``, ``guarantor_name``,
``guarantor_phone`` and ``timezone``. Refused, with the booked and the file
value named: every financial term (``principal``, ``annual_rate``,
``term_months``, ``repayment_method``, ``disbursed_on``, ``first_due_on``,
``day_count``, ``penalty_uplift``, ``compound_interest``, ``late_fee``,
``late_fee_rate``, ``cap_regime``, ``contract_date``): the schedule and every
posted charge and payment allocation derive from them, so a restructured
loan is booked under a new contract number. Also refused: ``borrower_id``
and ``national_id``, which say *who* owes the loan.

**A loan whose dues lie in the past.** Its case is opened at disbursement
and reviewed, in the same transaction, on every date a review falls due up
to the business date, exactly as the daily close would have done day by day
(accrual through a date includes that date; see ``states.case``). So it
starts with the stage, DPD and balances it would have had, and its history
reads as if collectflow had followed it from the start. Payments made
before the import are not in the file: import a book with payment history
only with those payments recorded (``collectflow pay``) on their dates.

**Personal data** (names, national id, phones, address) is encrypted at rest
(``models.crypto``) and otherwise only ever shown masked: error messages,
the summary, logs and events carry masked values. The rejects file is the
exception: it repeats the rejected rows as given, so they can be fixed and
imported again, and is written with owner-only permissions.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.crypto import Keyring
from models.store import CaseStore
from states import borrower as personal
from states.borrower import BorrowerDetails, BorrowerError
from states.caps import CapError, CapRegime, LprTable, annual_cap_rate
from states.case import CollectionCase, DomainError
from states.events import SYSTEM, DetailChange, Event, canonical_json
from states.loan import LoanTerms, LoanTermsError
from states.money import FEN, DayCount, MoneyError, from_fen, to_decimal
from states.policy import CollectionPolicy
from states.schedule import MAX_FIRST_PERIOD_DAYS, MAX_TERM_MONTHS, RepaymentMethod

CHUNK_ROWS = 2_000
REJECTIONS_KEPT = 100  # messages the report keeps (the rejects file has them all)
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
REJECT_COLUMNS = ("reject_row", "reject_reason")


class LoanBookError(ValueError):
    """A file that cannot be imported at all, or a request about a borrower that cannot be met."""


# --------------------------------------------------------------------------
# the columns


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    default: str | None  # as documented; None for a required column
    accepted: str


_CODE = "1 to 64 characters: letters, digits and - _ . / (no spaces)"
COLUMNS: tuple[Column, ...] = (
    Column("contract_no", True, None, f"{_CODE}; one per loan"),
    Column("borrower_id", True, None, f"{_CODE}; the lender's id of the person, the same on all their loans"),
    Column("principal", True, None, "the amount lent in yuan, above 0, at most two decimals (12000 or 12000.50)"),
    Column("annual_rate", True, None, "the yearly contract rate as a fraction, 0 <= rate < 1 (0.18 for 18 %)"),
    Column("term_months", True, None, f"a whole number of months, 1 to {MAX_TERM_MONTHS}"),
    Column("repayment_method", True, None, "equal_installment (等额本息), equal_principal (等额本金) or interest_first (先息后本)"),
    Column("disbursed_on", True, None, "a date YYYY-MM-DD, not after the import's business date"),
    Column(
        "first_due_on", True, None,
        f"a date YYYY-MM-DD 1 to {MAX_FIRST_PERIOD_DAYS} days after disbursed_on (later installments fall due "
        "monthly on the same day, or the month's last day)",
    ),
    Column("borrower_name", True, None, personal.ACCEPTED["name"]),
    Column("national_id", True, None, personal.ACCEPTED["national_id"] + f"; the borrower {personal.MIN_BORROWER_AGE} or over on the contract date"),
    Column("phone", True, None, personal.ACCEPTED["phone"]),
    Column("day_count", False, "ACT/360", "ACT/360 or ACT/365"),
    Column("penalty_uplift", False, "0.5", "the penalty rate's uplift on the contract rate as a fraction, 0 to 10 (0.5 for +50 %)"),
    Column("compound_interest", False, "false", "true or false (also yes/no, 1/0): whether overdue interest bears penalty interest"),
    Column("late_fee", False, "0", "a fixed fee in yuan per missed installment, 0 or more, at most two decimals"),
    Column("late_fee_rate", False, "0", "a fee per missed installment as a fraction of it, 0 <= rate < 1"),
    Column("cap_regime", False, "licensed", "licensed, private (contract_date from 2019-08-20) or legacy_2015 (contract_date before 2020-08-20)"),
    Column("contract_date", False, "disbursed_on", "a date YYYY-MM-DD, not after disbursed_on"),
    Column("guarantor_name", False, "none", personal.ACCEPTED["name"]),
    Column("guarantor_phone", False, "none", personal.ACCEPTED["phone"] + "; only with guarantor_name, and not the borrower's phone"),
    Column("address", False, "none", personal.ACCEPTED["address"]),
    Column("timezone", False, "Asia/Shanghai", "an IANA time zone such as Asia/Shanghai or Asia/Urumqi (the borrower's local time)"),
)
COLUMN = {c.name: c for c in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
PERSONAL = tuple(personal.MASKS)  # the personal columns, always shown masked
FINANCIAL = (
    "borrower_id", "principal", "annual_rate", "term_months", "repayment_method", "disbursed_on", "first_due_on",
    "day_count", "penalty_uplift", "compound_interest", "late_fee", "late_fee_rate", "cap_regime", "contract_date",
)


@dataclass(frozen=True)
class RowError:
    """One problem of one row. ``shown`` is the value as given, masked for a personal column."""

    row: int
    column: str
    shown: str
    problem: str
    accepted: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.shown!r} {self.problem}; accepted: {self.accepted}"


class RowRejected(Exception):
    def __init__(self, errors: list[RowError]):
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


class _Bad(Exception):
    """A column's value is refused: ``problem`` completes "'<value>' ..."."""

    def __init__(self, problem: str, accepted: str | None = None):
        super().__init__(problem)
        self.problem, self.accepted = problem, accepted


@dataclass(frozen=True, repr=False)
class LoanRecord:
    """One loan to book: its terms and its borrower. Its repr is masked."""

    row: int
    terms: LoanTerms
    borrower: BorrowerDetails
    case_id: str | None = None  # default: "C-" + contract_no

    def __repr__(self) -> str:
        return f"LoanRecord(row={self.row}, contract_no={self.terms.contract_no!r}, borrower={self.borrower!r})"

    @property
    def contract_no(self) -> str:
        return self.terms.contract_no


def case_id_for(contract_no: str) -> str:
    """The case id of an imported loan: its contract number, prefixed (never clashes with the demo's CF ids)."""
    return f"C-{contract_no}"


# --------------------------------------------------------------------------
# one row


_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/\-]{0,63}")
_TRUE, _FALSE = {"true", "yes", "y", "1", "是"}, {"false", "no", "n", "0", "否"}
_METHOD_ALIASES = {"等额本息": "equal_installment", "等额本金": "equal_principal", "先息后本": "interest_first"}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise _Bad(f"is a {type(value).__name__}, not a single value")


def _code(text: str) -> str:
    if not _CODE_RE.fullmatch(text):
        raise _Bad("has characters other than letters, digits and - _ . / or is longer than 64")
    return text


def _decimal(text: str) -> Decimal:
    try:
        return to_decimal(text)
    except MoneyError:
        raise _Bad("is not a number") from None


def _yuan(text: str, *, positive: bool) -> Decimal:
    amount = _decimal(text)
    if amount < 0 or (positive and amount == 0):
        raise _Bad("is not above 0" if positive else "is negative")
    if amount != amount.quantize(FEN):
        raise _Bad("has more than two decimals (fen)")
    return amount.quantize(FEN)


def _fraction(text: str, *, below: Decimal | None = None, at_most: Decimal | None = None) -> Decimal:
    if text.endswith("%"):
        raise _Bad("is a percentage; write it as a fraction (18 % is 0.18)")
    rate = _decimal(text)
    if rate < 0:
        raise _Bad("is negative")
    if below is not None and rate >= below:
        raise _Bad(f"is {below} or more: it would be {(rate * 100).normalize():f} %; write 18 % as 0.18")
    if at_most is not None and rate > at_most:
        raise _Bad(f"is above {at_most}")
    return Decimal(f"{rate.normalize():f}")  # one spelling: 0.180 and 0.18 are the same rate


def _whole(text: str) -> int:
    number = _decimal(text)
    if number != number.to_integral_value():
        raise _Bad("is not a whole number")
    if not 1 <= number <= MAX_TERM_MONTHS:
        raise _Bad(f"is not between 1 and {MAX_TERM_MONTHS}")
    return int(number)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _Bad("is not a date written YYYY-MM-DD") from None


def _choice(enum: type, aliases: Mapping[str, str] | None = None) -> Callable[[str], Any]:
    def parse(text: str):
        key = (aliases or {}).get(text, text)
        for member in enum:
            if member.value.lower() == key.lower():
                return member
        raise _Bad("is not an accepted value")

    return parse


def _boolean(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise _Bad("is neither true nor false")


def _zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Bad("is not an IANA time zone name") from None
    return text


def _personal(check: Callable[[str, str], str]) -> Callable[[str, str], str]:
    def parse(text: str, column: str) -> str:
        try:
            return check(text, column)
        except BorrowerError as exc:
            raise _Bad(exc.problem, exc.accepted) from None

    return parse


_PARSERS: dict[str, Callable[..., Any]] = {
    "contract_no": _code,
    "borrower_id": _code,
    "principal": lambda t: _yuan(t, positive=True),
    "annual_rate": lambda t: _fraction(t, below=Decimal(1)),
    "term_months": _whole,
    "repayment_method": _choice(RepaymentMethod, _METHOD_ALIASES),
    "disbursed_on": _day,
    "first_due_on": _day,
    "day_count": _choice(DayCount),
    "penalty_uplift": lambda t: _fraction(t, at_most=Decimal(10)),
    "compound_interest": _boolean,
    "late_fee": lambda t: _yuan(t, positive=False),
    "late_fee_rate": lambda t: _fraction(t, below=Decimal(1)),
    "cap_regime": _choice(CapRegime),
    "contract_date": _day,
    "timezone": _zone,
}
_PERSONAL_PARSERS: dict[str, Callable[[str, str], str]] = {
    "borrower_name": _personal(personal.name),
    "guarantor_name": _personal(personal.name),
    "national_id": _personal(personal.national_id),
    "phone": _personal(personal.phone),
    "guarantor_phone": _personal(personal.phone),
    "address": _personal(personal.address),
}
_DEFAULTS: dict[str, Any] = {
    "day_count": DayCount.ACT_360,
    "penalty_uplift": Decimal("0.5"),
    "compound_interest": False,
    "late_fee": Decimal("0.00"),
    "late_fee_rate": Decimal(0),
    "cap_regime": CapRegime.LICENSED,
    "timezone": "Asia/Shanghai",
}


def shown(column: str, text: str) -> str:
    """A value as an error message may show it: masked in a personal column."""
    return personal.mask(column, text) if column in personal.MASKS else text


def parse_row(raw: Mapping[str, object], row: int, business_date: date, lpr: LprTable) -> LoanRecord:
    """One row checked column by column, then as a whole; ``RowRejected`` lists every problem found."""
    errors: list[RowError] = []
    values: dict[str, Any] = {}

    def refuse(column: str, text: str, problem: str, accepted: str | None = None) -> None:
        errors.append(RowError(row, column, shown(column, text), problem, accepted or COLUMN[column].accepted))

    texts: dict[str, str] = {}
    for column in COLUMNS:
        try:
            text = _text(raw.get(column.name))
        except _Bad as bad:
            refuse(column.name, "", bad.problem)
            continue
        texts[column.name] = text
        if not text:
            if column.required:
                refuse(column.name, "", "is missing (required)")
            else:
                values[column.name] = _DEFAULTS.get(column.name)
            continue
        try:
            if column.name in _PERSONAL_PARSERS:
                values[column.name] = _PERSONAL_PARSERS[column.name](text, column.name)
            else:
                values[column.name] = _PARSERS[column.name](text)
        except _Bad as bad:
            refuse(column.name, text, bad.problem, bad.accepted)

    def ok(*names: str) -> bool:
        return all(values.get(n) is not None for n in names)

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
            refuse("cap_regime", texts["cap_regime"] or "licensed", f"cannot apply: {exc}")
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
    if errors:
        raise RowRejected(errors)

    try:
        terms = LoanTerms(
            contract_no=values["contract_no"],
            borrower_id=values["borrower_id"],
            principal=values["principal"],
            annual_rate=values["annual_rate"],
            term_months=values["term_months"],
            repayment_method=values["repayment_method"],
            disbursed_on=values["disbursed_on"],
            first_due_on=values["first_due_on"],
            day_count=values["day_count"],
            penalty_uplift=values["penalty_uplift"],
            compound_interest=values["compound_interest"],
            late_fee=values["late_fee"],
            late_fee_rate=values["late_fee_rate"],
            cap_regime=values["cap_regime"],
            contract_date=values.get("contract_date"),
        )
    except LoanTermsError as exc:  # a rule of the contract itself no single column breaks
        column = str(exc).split(":")[0].split(" ")[0]
        column = column if column in COLUMN else "contract_no"
        raise RowRejected([RowError(row, column, shown(column, texts.get(column, "")), f"is refused: {exc}", COLUMN[column].accepted)]) from None
    details = BorrowerDetails(
        borrower_name=values["borrower_name"],
        national_id=values["national_id"],
        phone=values["phone"],
        address=values.get("address"),
        guarantor_name=values.get("guarantor_name"),
        guarantor_phone=values.get("guarantor_phone"),
        timezone=values["timezone"],
    )
    return LoanRecord(row, terms, details)


# --------------------------------------------------------------------------
# reading a file


@dataclass
class SourceRow:
    """A row as read: its number, its values (None when unreadable) and why it could not be read."""

    row: int
    values: dict[str, Any] | None
    problem: str | None = None
    line: str | None = None  # the text of an unreadable JSON line, for the rejects file


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from the file (the progress bar's position)."""

    def __init__(self, raw: IO[bytes]):
        self.raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.count += n or 0
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = FORMATS.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise LoanBookError(
            f"{path.name}: {''.join(path.suffixes) or 'no extension'} is not a loan file extension; "
            f"use .csv or .jsonl (JSON Lines, also .ndjson), optionally gzipped (.csv.gz)"
        )
    return kind


class LoanFile:
    """A loan file opened for streaming: ``rows()`` yields ``SourceRow``s; ``position`` counts bytes read."""

    def __init__(self, path: Path, encoding: str = "utf-8"):
        self.path = Path(path)
        self.kind = file_format(self.path)
        if not self.path.is_file():
            raise LoanBookError(f"{self.path}: no such file")
        self.size = self.path.stat().st_size
        self.encoding = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        self.header: list[str] | None = None
        self.ignored: set[str] = set()
        self._counter: _CountingReader | None = None

    @property
    def position(self) -> int:
        return self._counter.count if self._counter else 0

    def rows(self) -> Iterator[SourceRow]:
        self._counter = _CountingReader(open(self.path, "rb"))
        binary: IO[bytes] = io.BufferedReader(self._counter, 1 << 16)
        if self.path.suffix.lower() == ".gz":
            binary = gzip.GzipFile(fileobj=binary)  # type: ignore[assignment]
        text = io.TextIOWrapper(binary, encoding=self.encoding, newline="")
        reader = self._csv(text) if self.kind == "csv" else self._jsonl(text)
        last = 0
        try:
            for source_row in reader:
                last = source_row.row
                yield source_row
        except UnicodeDecodeError as exc:
            raise LoanBookError(
                f"{self.path.name}: not {self.encoding} text after row {last} ({exc.reason}); "
                f"save the file as UTF-8, or give its encoding (e.g. --encoding gbk)"
            ) from None
        except csv.Error as exc:
            raise LoanBookError(f"{self.path.name}: not readable as CSV after row {last}: {exc}") from None
        finally:
            text.close()

    def _csv(self, text: IO[str]) -> Iterator[SourceRow]:
        reader = csv.reader(text)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise LoanBookError(f"{self.path.name}: the file is empty; its first line must be the header") from None
        twice = sorted({h for h in header if header.count(h) > 1})
        if twice:
            raise LoanBookError(f"{self.path.name}: the header names {', '.join(twice)} more than once")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise LoanBookError(
                f"{self.path.name}: the header lacks the required column(s) {', '.join(missing)}; "
                f"it has {', '.join(header) or 'nothing'} (see the README's column table)"
            )
        self.header = header
        self.ignored = {h for h in header if h not in COLUMN and h not in REJECT_COLUMNS}
        width = len(header)
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if len(cells) != width:
                yield SourceRow(
                    reader.line_num, dict(zip(header, cells)), f"has {len(cells)} values but the header has {width} columns"
                )
                continue
            yield SourceRow(reader.line_num, dict(zip(header, cells)))

    def _jsonl(self, text: IO[str]) -> Iterator[SourceRow]:
        for number, line in enumerate(text, 1):
            if not line.strip():
                continue
            try:
                values = json.loads(line, parse_float=Decimal)
            except ValueError as exc:
                yield SourceRow(number, None, f"is not JSON ({exc.msg} at character {exc.pos})", line.rstrip("\n"))
                continue
            if not isinstance(values, dict):
                yield SourceRow(number, None, "is not a JSON object {...}", line.rstrip("\n"))
                continue
            if len(self.ignored) < 100:
                self.ignored.update(k for k in values if k not in COLUMN and k not in REJECT_COLUMNS)
            yield SourceRow(number, values)


class RejectsFile:
    """The rejected rows as given plus ``reject_row`` and ``reject_reason``, in the input's format,
    so they can be fixed and imported again. Created (mode 0600) on the first rejected row."""

    def __init__(self, path: Path, source: LoanFile):
        self.path, self.source = Path(path), source
        self.kind = source.kind
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def write(self, source: SourceRow, reason: str) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            self._handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
            if self.kind == "csv":
                self._writer = csv.writer(self._handle)
                self._writer.writerow([*self._header, *REJECT_COLUMNS])
        if self.kind == "csv":
            values = source.values or {}
            self._writer.writerow([_cell(values.get(h)) for h in self._header] + [source.row, reason])
        else:
            record = dict(source.values) if source.values is not None else {"line": source.line}
            record.update(reject_row=source.row, reject_reason=reason)
            self._handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    @property
    def _header(self) -> list[str]:
        return [h for h in self.source.header or [c.name for c in COLUMNS] if h not in REJECT_COLUMNS]

    @property
    def written(self) -> bool:
        return self._handle is not None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def default_rejects_path(path: Path) -> Path:
    """``loans.csv`` -> ``loans.rejects.csv`` (``loans.jsonl.gz`` -> ``loans.rejects.jsonl``)."""
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    stem, dot, suffix = name.rpartition(".")
    return path.with_name(f"{stem}.rejects.{suffix}" if dot else f"{name}.rejects")


# --------------------------------------------------------------------------
# the report


@dataclass
class ImportReport:
    """What an import did. Personal values appear in it only masked."""

    source: str
    business_date: date
    rows: int = 0
    booked: int = 0
    unchanged: int = 0
    amended: int = 0
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)  # the first REJECTIONS_KEPT messages
    rejects_file: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    events: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.rejections) < REJECTIONS_KEPT:
            self.rejections.append(message)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "business_date": self.business_date.isoformat(),
            "rows": self.rows,
            "booked": self.booked,
            "unchanged": self.unchanged,
            "amended": self.amended,
            "rejected": self.rejected,
            "rejects_file": self.rejects_file,
            "rejections": list(self.rejections),
            "ignored_columns": list(self.ignored_columns),
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
        }


# --------------------------------------------------------------------------
# booking


@dataclass
class _Pending:
    record: LoanRecord
    source: SourceRow | None


class LoanBook:
    """Books records chunk by chunk; ``feed`` then ``finish``. One instance per import."""

    def __init__(
        self,
        store: CaseStore,
        keyring: Keyring,
        policy: CollectionPolicy,
        business_date: date,
        *,
        amend: bool = False,
        actor: str = SYSTEM,
        source: str = "",
        chunk_rows: int = CHUNK_ROWS,
        on_reject: Callable[[SourceRow | None, str], None] | None = None,
    ):
        self.store, self.keyring, self.policy = store, keyring, policy
        self.business_date, self.amend, self.actor = business_date, amend, actor
        self.source, self.chunk_rows, self.on_reject = source, chunk_rows, on_reject
        self.lpr = store.lpr_table()
        self.report = ImportReport(source, business_date)
        self._chunk: list[_Pending] = []
        self._in_chunk: set[str] = set()

    # ------------------------------------------------------------------

    def reject(self, source: SourceRow | None, errors: Iterable[RowError] | str, row: int) -> None:
        reason = errors if isinstance(errors, str) else "; ".join(map(str, errors))
        message = reason if reason.startswith("row ") else f"row {row}: {reason}"
        self.report.reject(message)
        if self.on_reject is not None:
            self.on_reject(source, message)

    def feed(self, record: LoanRecord, source: SourceRow | None = None) -> None:
        if record.contract_no in self._in_chunk:
            self.flush()  # the repeat is then checked against what the first occurrence booked
        self._chunk.append(_Pending(record, source))
        self._in_chunk.add(record.contract_no)
        if len(self._chunk) >= self.chunk_rows:
            self.flush()

    def finish(self) -> ImportReport:
        self.flush()
        return self.report

    # ------------------------------------------------------------------

    def flush(self) -> None:
        chunk, self._chunk, self._in_chunk = self._chunk, [], set()
        if not chunk:
            return
        booked = self.store.booked_loans([p.record.contract_no for p in chunk])
        hashes = {p.record.contract_no: self.keyring.match_hash(p.record.borrower.national_id) for p in chunk}
        known = self.store.borrower_identities([p.record.terms.borrower_id for p in chunk], list(hashes.values()))
        people = _People(known)
        fresh: list[_Pending] = []
        amendments: list[tuple[_Pending, Mapping[str, Any], Mapping[str, Any] | None]] = []
        for pending in chunk:
            record = pending.record
            identity = people.conflict(record, hashes[record.contract_no])
            if identity is not None:
                self.reject(pending.source, [identity], record.row)
                continue
            stored = booked.get(record.contract_no)
            if stored is None:
                fresh.append(pending)
                people.add(record, hashes[record.contract_no])
                continue
            loan_row, borrower_row = stored
            errors = self._compare(record, loan_row, borrower_row)
            if errors is None:
                self.report.unchanged += 1
            elif errors:
                self.reject(pending.source, errors, record.row)
            else:
                amendments.append((pending, loan_row, borrower_row))
        if fresh:
            self._book(fresh, hashes)
        if amendments:
            self._amend(amendments, hashes)

    def _compare(
        self, record: LoanRecord, loan_row: Mapping[str, Any], borrower_row: Mapping[str, Any] | None
    ) -> list[RowError] | None:
        """None: the same row again. [] : contact details changed and may be amended. Else why not."""
        errors = [
            RowError(
                record.row, column, file_value, f"differs from the booked {booked_value}",
                "the booked value: a booked contract's financial terms and borrower are never changed by an import "
                "(book a restructured loan under a new contract_no)",
            )
            for column, booked_value, file_value in financial_differences(loan_row, record.terms)
        ]
        if errors:
            return errors
        if borrower_row is not None and borrower_row["details_hash"] == self._details_hash(record.borrower):
            return None
        changes = self._changes(record, borrower_row)
        if not changes:
            return None
        fixed = [c for c in changes if c.field not in personal.AMENDABLE] if borrower_row is not None else []
        if fixed:  # who the borrower is: never amended
            return [
                RowError(
                    record.row, c.field, c.after or "", f"differs from the booked {c.before}",
                    "the booked value: the borrower of a booked loan never changes",
                )
                for c in fixed
            ]
        if self.amend:
            return []
        return [
            RowError(
                record.row, change.field, change.after or "", f"differs from the booked {change.before or 'nothing'}",
                "the booked value, or --amend to record the change of contact details",
            )
            for change in changes
        ]

    def _book(self, fresh: list[_Pending], hashes: Mapping[str, str]) -> None:
        items, rows = [], []
        for pending in fresh:
            record = pending.record
            case, events = CollectionCase.open(record.case_id or case_id_for(record.contract_no), record.terms, self.lpr, actor=self.actor)
            events += case.advance(self.business_date, self.policy)
            items.append((record.terms, case, events))
            rows.append(self._borrower_row(record, hashes[record.contract_no]))
        booking = self.store.add_cases(items, borrower_rows=rows)
        self.report.booked += len(booking.booked)
        self.report.unchanged += len(booking.already_booked)  # booked meanwhile by another import
        booked = set(booking.booked)
        self.report.events += sum(len(events) for _, case, events in items if case.case_id in booked)

    def _amend(self, amendments: list[tuple[_Pending, Mapping[str, Any], Mapping[str, Any] | None]], hashes: Mapping[str, str]) -> None:
        cases = self.store.load([loan_row["case_id"] for _, loan_row, _ in amendments])
        versions = {case_id: case.version for case_id, case in cases.items()}
        changes: list[tuple[CollectionCase, list[Event]]] = []
        rows = []
        for pending, loan_row, borrower_row in amendments:
            record, case = pending.record, cases[loan_row["case_id"]]
            on = max(self.business_date, case.accrued_through)
            where = f"{self.source} row {record.row}" if self.source else f"row {record.row}"
            events = case.amend_borrower_details(self._changes(record, borrower_row), on, actor=self.actor, source=where)
            changes.append((case, events))
            rows.append({**self._borrower_row(record, hashes[record.contract_no]), "amended_at": datetime.now(timezone.utc)})
        self.report.events += self.store.amend_borrowers(changes, expected_versions=versions, borrower_rows=rows)
        self.report.amended += len(changes)

    # ------------------------------------------------------------------

    def _changes(self, record: LoanRecord, borrower_row: Mapping[str, Any] | None) -> tuple[DetailChange, ...]:
        if borrower_row is None:  # booked without personal data: every given detail is new
            return tuple(
                DetailChange(name, None, value) for name, value in record.borrower.masked().items() if value is not None
            )
        return self.stored_details(record.contract_no, borrower_row).changes_to(record.borrower)

    def stored_details(self, contract_no: str, row: Mapping[str, Any]) -> BorrowerDetails:
        clear = {
            name: None if row[f"{name}_enc"] is None else self.keyring.decrypt(row[f"{name}_enc"], f"{contract_no}/{name}")
            for name in PERSONAL
        }
        return BorrowerDetails(**clear, timezone=row["timezone"])

    def _details_hash(self, details: BorrowerDetails) -> str:
        return self.keyring.digest("borrower details", canonical_json({**details.personal(), "timezone": details.timezone}))

    def _borrower_row(self, record: LoanRecord, match_hash: str) -> dict[str, Any]:
        details, contract_no = record.borrower, record.contract_no
        row: dict[str, Any] = {
            "contract_no": contract_no,
            "borrower_id": record.terms.borrower_id,
            "national_id_hash": match_hash,
            "key_id": self.keyring.key_id,
            "timezone": details.timezone,
            "details_hash": self._details_hash(details),
            "booked_at": datetime.now(timezone.utc),
            "amended_at": None,
        }
        for name, value in details.personal().items():
            row[f"{name}_enc"] = None if value is None else self.keyring.encrypt(value, f"{contract_no}/{name}")
            row[f"{name}_masked"] = personal.mask(name, value)
        return row


class _People:
    """Who is who: one borrower_id is one person (one national id), and one person has one borrower_id."""

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


def financial_differences(loan_row: Mapping[str, Any], terms: LoanTerms) -> list[tuple[str, str, str]]:
    """(column, booked value, file value) for each term that differs, compared as values (0.180 == 0.18)."""
    pairs = (
        ("borrower_id", loan_row["borrower_id"], terms.borrower_id),
        ("principal", from_fen(loan_row["principal_fen"]), terms.principal),
        ("annual_rate", Decimal(loan_row["annual_rate"]), terms.annual_rate),
        ("term_months", loan_row["term_months"], terms.term_months),
        ("repayment_method", loan_row["repayment_method"], terms.repayment_method.value),
        ("disbursed_on", loan_row["disbursed_on"], terms.disbursed_on),
        ("first_due_on", loan_row["first_due_on"], terms.first_due_on),
        ("day_count", loan_row["day_count"], terms.day_count.value),
        ("penalty_uplift", Decimal(loan_row["penalty_uplift"]), terms.penalty_uplift),
        ("compound_interest", bool(loan_row["compound_interest"]), terms.compound_interest),
        ("late_fee", from_fen(loan_row["late_fee_fen"]), terms.late_fee),
        ("late_fee_rate", Decimal(loan_row["late_fee_rate"]), terms.late_fee_rate),
        ("cap_regime", loan_row["cap_regime"], terms.cap_regime.value),
        ("contract_date", loan_row["contract_date"], terms.contract_date),
    )
    return [(name, _plain(booked), _plain(given)) for name, booked, given in pairs if booked != given]


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------
# entry points


def import_file(
    store: CaseStore,
    path: str | Path,
    *,
    business_date: date,
    policy: CollectionPolicy,
    keyring: Keyring,
    amend: bool = False,
    rejects: str | Path | None = None,
    actor: str = SYSTEM,
    encoding: str = "utf-8",
    chunk_rows: int = CHUNK_ROWS,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> ImportReport:
    """Import a CSV or JSON Lines loan file; ``on_progress(rows, bytes read, file bytes)`` after each chunk."""
    began = time.perf_counter()
    loan_file = LoanFile(Path(path), encoding)
    rejects_path = Path(rejects) if rejects else default_rejects_path(loan_file.path)
    if rejects_path.resolve() == loan_file.path.resolve():
        raise LoanBookError(f"--rejects {rejects_path}: that is the file being imported; give another path")
    rows_iter = loan_file.rows()
    rejects_file = RejectsFile(rejects_path, loan_file)
    book = LoanBook(
        store, keyring, policy, business_date, amend=amend, actor=actor, source=loan_file.path.name,
        chunk_rows=chunk_rows, on_reject=lambda source, message: rejects_file.write(source, message) if source else None,
    )
    report = book.report
    next_progress = chunk_rows
    try:
        for source in rows_iter:
            report.rows += 1
            if source.problem is not None or source.values is None:
                book.reject(source, f"row {source.row}: {source.problem}", source.row)
            else:
                try:
                    record = parse_row(source.values, source.row, business_date, book.lpr)
                except RowRejected as rejected:
                    book.reject(source, rejected.errors, source.row)
                else:
                    book.feed(record, source)
            if on_progress is not None and report.rows >= next_progress:
                next_progress += chunk_rows
                on_progress(report.rows, loan_file.position, loan_file.size)
        book.finish()
    finally:
        rejects_file.close()
    if on_progress is not None:
        on_progress(report.rows, loan_file.size, loan_file.size)
    report.ignored_columns = sorted(loan_file.ignored)
    report.rejects_file = str(rejects_path) if rejects_file.written else None
    report.seconds = time.perf_counter() - began
    return report


def book_records(
    store: CaseStore,
    records: Iterable[LoanRecord],
    *,
    business_date: date,
    policy: CollectionPolicy,
    keyring: Keyring,
    amend: bool = False,
    actor: str = SYSTEM,
    source: str = "",
) -> ImportReport:
    """Book records built in code (the demo's synthetic book) through the same checks and chunks."""
    began = time.perf_counter()
    book = LoanBook(store, keyring, policy, business_date, amend=amend, actor=actor, source=source)
    for record in records:
        book.report.rows += 1
        problem = _record_problem(record, business_date)
        if problem:
            book.reject(None, f"row {record.row}, contract {record.contract_no}: {problem}", record.row)
            continue
        book.feed(record)
    report = book.finish()
    report.seconds = time.perf_counter() - began
    return report


def _record_problem(record: LoanRecord, business_date: date) -> str | None:
    """The row-level rules ``parse_row`` applies that a record built in code has not met yet."""
    if record.terms.disbursed_on > business_date:
        return f"disbursed_on {record.terms.disbursed_on} is after the business date {business_date}"
    try:
        personal.check_adult(record.borrower.national_id, record.terms.contract_date)
        _zone(record.borrower.timezone)
    except BorrowerError as exc:
        return str(exc)
    except _Bad as bad:
        return f"timezone {record.borrower.timezone!r} {bad.problem}"
    return None


# --------------------------------------------------------------------------
# reading a borrower's details


REVEALABLE = {
    "name": "borrower_name",
    "phone": "phone",
    "national_id": "national_id",
    "address": "address",
    "guarantor_name": "guarantor_name",
    "guarantor_phone": "guarantor_phone",
}


def borrower_masked(store: CaseStore, case_ref: str) -> dict[str, Any]:
    """A case's borrower, masked: what any report or screen may show."""
    case_id, contract_no, row = store.borrower_row(case_ref)
    if row is None:
        raise LoanBookError(f"case {case_id} (contract {contract_no}): booked without borrower details")
    return {
        "case_id": case_id,
        "contract_no": contract_no,
        "borrower_id": row["borrower_id"],
        **{name: row[f"{name}_masked"] for name in PERSONAL},
        "timezone": row["timezone"],
        "amended_at": row["amended_at"].isoformat() if row["amended_at"] else None,
    }


def reveal(
    store: CaseStore, keyring: Keyring, case_ref: str, field_name: str, *, operator: str, purpose: str, on: date
) -> str:
    """The clear value of one personal field. The read is recorded first, as a ``PersonalDataRead``
    event by ``operator``: no clear value leaves the store without its record."""
    if field_name not in REVEALABLE:
        raise LoanBookError(f"--field {field_name!r} is not one of {', '.join(REVEALABLE)}")
    if not operator.strip():
        raise LoanBookError("--operator: give your operator id; every read of personal data is recorded with it")
    column = REVEALABLE[field_name]
    case_id, contract_no, row = store.borrower_row(case_ref)
    if row is None:
        raise LoanBookError(f"case {case_id} (contract {contract_no}): booked without borrower details")
    token = row[f"{column}_enc"]
    if token is None:
        raise LoanBookError(f"case {case_id}: no {field_name} on file")
    value = keyring.decrypt(token, f"{contract_no}/{column}")
    case = store.load_one(case_id)
    version = case.version
    try:
        events = case.record_personal_data_read((field_name,), max(on, case.accrued_through), actor=operator, purpose=purpose)
    except DomainError as exc:
        raise LoanBookError(str(exc)) from None
    store.save([(case, events)], expected_versions={case_id: version})
    return value
