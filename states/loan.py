"""Loan terms: the contract a case is opened from, validated field by field.

``LoanTerms`` is the one list of contract terms. ``TERM_FIELDS`` names them
in order, ``record()`` writes them as plain JSON values (what the store
hashes to tell a re-imported contract from a changed one) and
``from_record`` reads them back; the loan file's columns, the amendment rule
and the store's ``loans`` row derive from these. Each field's metadata says
what a loan file may give for it (see ``term``).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from states.caps import CapError, CapRegime, LprTable, annual_cap_rate
from states.defaults import DEFAULT_PENALTY_UPLIFT
from states.errors import UserError
from states.money import FEN, ZERO, DayCount, MoneyError, in_range, to_decimal
from states.schedule import (
    MAX_FIRST_PERIOD_DAYS,
    MAX_TERM_MONTHS,
    Installment,
    RepaymentMethod,
    ScheduleError,
    ScheduleInterest,
    build_schedule,
)

# What a contract number or a borrower id may be: an id of the lender's core system.
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/\-]{0,63}")
CODE_RULE = "1 to 64 characters: letters, digits and - _ . / (no spaces)"
MAX_PENALTY_UPLIFT = Decimal(10)  # a penalty rate of at most 11 times the contract rate
RATE_BELOW = Decimal(1)  # a yearly rate or a fee rate is a fraction below 1 (100 %)
METHOD_ALIASES = {"等额本息": "equal_installment", "等额本金": "equal_principal", "先息后本": "interest_first"}


def term(accepted: str, default: Any = MISSING, **reading: Any) -> Any:
    """A contract term: ``accepted`` says what a loan file may give for it (the README's column table).

    ``reading`` narrows how a given value is read: ``money`` (an amount in
    yuan, ``positive`` or not), ``below`` / ``at_most`` (the bounds of a
    rate), ``maximum`` (of a whole number), ``aliases`` (other spellings of a
    vocabulary's values), ``documented_default`` (when the default is not a
    value, e.g. "disbursed_on").
    """
    return field(default=default, metadata={"accepted": accepted, **reading})


class LoanTermsError(UserError):
    """A contract term that is out of range; the message names the field and the value."""


@dataclass(frozen=True)
class LoanTerms:
    contract_no: str = term(f"{CODE_RULE}; one per loan")
    borrower_id: str = term(f"{CODE_RULE}; the lender's id of the person, the same on all their loans")
    principal: Decimal = term(
        "the amount lent in yuan, above 0, at most two decimals (12000 or 12000.50)", money=True, positive=True
    )
    annual_rate: Decimal = term("the yearly contract rate as a fraction, 0 <= rate < 1 (0.18 for 18 %)", below=RATE_BELOW)
    term_months: int = term(f"a whole number of months, 1 to {MAX_TERM_MONTHS}", maximum=MAX_TERM_MONTHS)
    repayment_method: RepaymentMethod = term(
        "equal_installment (等额本息), equal_principal (等额本金) or interest_first (先息后本)", aliases=METHOD_ALIASES
    )
    disbursed_on: date = term("a date YYYY-MM-DD, not after the import's business date")
    first_due_on: date = term(
        f"a date YYYY-MM-DD 1 to {MAX_FIRST_PERIOD_DAYS} days after disbursed_on (later installments fall due "
        "monthly on the same day, or the month's last day)"
    )
    day_count: DayCount = term("ACT/360 or ACT/365", DayCount.ACT_360)
    schedule_interest: ScheduleInterest = term(
        "monthly (each full month's interest is the balance x rate / 12, an odd first period by the day count) "
        "or actual_days (each period's interest by the day count on its actual days)",
        ScheduleInterest.MONTHLY,
    )
    penalty_uplift: Decimal = term(
        "the penalty rate's uplift on the contract rate as a fraction, 0 to 10 (0.5 for +50 %)",
        DEFAULT_PENALTY_UPLIFT, at_most=MAX_PENALTY_UPLIFT,
    )
    compound_interest: bool = term(
        "true or false (also yes/no, 1/0): whether overdue interest bears penalty interest", False
    )
    late_fee: Decimal = term("a fixed fee in yuan per missed installment, 0 or more, at most two decimals", ZERO, money=True)
    late_fee_rate: Decimal = term("a fee per missed installment as a fraction of it, 0 <= rate < 1", ZERO, below=RATE_BELOW)
    cap_regime: CapRegime = term(
        "licensed, private (contract_date from 2019-08-20) or legacy_2015 (contract_date before 2020-08-20)",
        CapRegime.LICENSED,
    )
    contract_date: date | None = term("a date YYYY-MM-DD, not after disbursed_on", None, documented_default="disbursed_on")
    # derived from the terms above (or imported with them, see ``with_plan``): not a term itself
    schedule: tuple[Installment, ...] = field(default=(), compare=False, repr=False, metadata={"derived": True})
    plan_imported: bool = field(default=False, compare=False, repr=False, metadata={"derived": True})

    def __post_init__(self) -> None:
        if not str(self.contract_no).strip():
            raise LoanTermsError("contract_no: must not be empty")
        if not str(self.borrower_id).strip():
            raise LoanTermsError("borrower_id: must not be empty")
        for name in ("principal", "annual_rate", "penalty_uplift", "late_fee", "late_fee_rate"):
            try:
                object.__setattr__(self, name, in_range(to_decimal(getattr(self, name), field=name), field=name))
            except MoneyError as exc:
                raise LoanTermsError(str(exc)) from None
        if not Decimal(0) <= self.penalty_uplift <= MAX_PENALTY_UPLIFT:
            raise LoanTermsError(f"penalty_uplift: must be a fraction between 0 and 10 (0.5 = 50 %), got {self.penalty_uplift}")
        if self.late_fee < 0 or self.late_fee != self.late_fee.quantize(Decimal("0.01")):
            raise LoanTermsError(f"late_fee: must be a non-negative amount in fen, got {self.late_fee}")
        if not Decimal(0) <= self.late_fee_rate < RATE_BELOW:
            raise LoanTermsError(f"late_fee_rate: must be a fraction between 0 and 1, got {self.late_fee_rate}")
        for name, enum in (
            ("repayment_method", RepaymentMethod), ("day_count", DayCount), ("schedule_interest", ScheduleInterest),
            ("cap_regime", CapRegime),
        ):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, enum(value))
            except ValueError:
                accepted = ", ".join(m.value for m in enum)
                raise LoanTermsError(f"{name}: {value!r} is not one of {accepted}") from None
        if self.contract_date is None:
            object.__setattr__(self, "contract_date", self.disbursed_on)
        try:
            schedule = build_schedule(
                self.principal,
                self.annual_rate,
                self.term_months,
                self.repayment_method,
                self.disbursed_on,
                self.first_due_on,
                self.day_count,
                self.schedule_interest,
            )
        except ScheduleError as exc:
            raise LoanTermsError(str(exc)) from None
        object.__setattr__(self, "schedule", schedule)
        object.__setattr__(self, "plan_imported", False)
        # one spelling per amount in the events: 100 and 100.00 are the same loan
        for name in ("principal", "late_fee"):
            object.__setattr__(self, name, getattr(self, name).quantize(FEN))

    def with_plan(self, plan: tuple[Installment, ...]) -> LoanTerms:
        """These terms with the plan the core lending system states (``states.planfile`` checks it first):
        it replaces the computed schedule, and the case says "plan as imported"."""
        copy = replace(self)
        object.__setattr__(copy, "schedule", tuple(plan))
        object.__setattr__(copy, "plan_imported", True)
        return copy

    def cap_rate(self, lpr: LprTable) -> Decimal:
        try:
            return annual_cap_rate(self.cap_regime, self.contract_date, lpr)
        except CapError as exc:
            raise LoanTermsError(f"cap_regime: {exc}") from None

    def record(self) -> dict[str, str | int | bool]:
        """The terms as plain JSON values: amounts, rates and dates as text, vocabularies by value."""
        return {name: record_value(getattr(self, name)) for name in TERM_FIELDS}

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> LoanTerms:
        """The terms back from ``record()`` (or from anything holding the same values)."""
        return cls(**{name: term_value(name, record[name]) for name in TERM_FIELDS if name in record})


TERM_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(LoanTerms) if not f.metadata.get("derived"))


def _kinds() -> dict[str, type]:
    hints = typing.get_type_hints(LoanTerms)
    # ``date | None`` is a date that may be left to its default
    return {name: next(k for k in typing.get_args(hints[name]) or (hints[name],) if k is not type(None)) for name in TERM_FIELDS}


_KINDS = _kinds()


def term_kind(name: str) -> type:
    """The type of a term's value (``Decimal``, ``date``, a vocabulary ...)."""
    return _KINDS[name]


def term_value(name: str, value: object) -> Any:
    """A term's value from its plain form (``record()``'s, or a stored column's): "0.18" -> Decimal("0.18")."""
    kind = _KINDS[name]
    if value is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    if kind is date:
        return date.fromisoformat(str(value))
    if kind is bool:
        return bool(value)  # a stored 0/1
    return kind(value)


def record_value(value: object) -> str | int | bool:
    """A term's value as ``LoanTerms.record()`` writes it."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value  # type: ignore[return-value]  # str, int, bool
