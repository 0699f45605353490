"""Loan terms: the contract a case is opened from, validated field by field."""

from __future__ import annotations

from states.errors import UserError

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from states.caps import CapError, CapRegime, LprTable, annual_cap_rate
from states.money import FEN, ZERO, DayCount, MoneyError, in_range, to_decimal
from states.schedule import Installment, RepaymentMethod, ScheduleError, build_schedule


class LoanTermsError(UserError):
    """A contract term that is out of range; the message names the field and the value."""


@dataclass(frozen=True)
class LoanTerms:
    contract_no: str
    borrower_id: str
    principal: Decimal
    annual_rate: Decimal
    term_months: int
    repayment_method: RepaymentMethod
    disbursed_on: date
    first_due_on: date
    day_count: DayCount = DayCount.ACT_360
    penalty_uplift: Decimal = Decimal("0.5")
    compound_interest: bool = False
    late_fee: Decimal = ZERO
    late_fee_rate: Decimal = ZERO
    cap_regime: CapRegime = CapRegime.LICENSED
    contract_date: date | None = None
    schedule: tuple[Installment, ...] = field(default=(), compare=False, repr=False)

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
        if not Decimal(0) <= self.penalty_uplift <= Decimal(10):
            raise LoanTermsError(f"penalty_uplift: must be a fraction between 0 and 10 (0.5 = 50 %), got {self.penalty_uplift}")
        if self.late_fee < 0 or self.late_fee != self.late_fee.quantize(Decimal("0.01")):
            raise LoanTermsError(f"late_fee: must be a non-negative amount in fen, got {self.late_fee}")
        if not Decimal(0) <= self.late_fee_rate < 1:
            raise LoanTermsError(f"late_fee_rate: must be a fraction between 0 and 1, got {self.late_fee_rate}")
        for name, enum in (("repayment_method", RepaymentMethod), ("day_count", DayCount), ("cap_regime", CapRegime)):
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
            )
        except ScheduleError as exc:
            raise LoanTermsError(str(exc)) from None
        object.__setattr__(self, "schedule", schedule)
        # one spelling per amount in the events: 100 and 100.00 are the same loan
        for name in ("principal", "late_fee"):
            object.__setattr__(self, name, getattr(self, name).quantize(FEN))

    @property
    def penalty_rate(self) -> Decimal:
        """Annual penalty rate on overdue principal: the contract rate with its uplift."""
        return self.annual_rate * (1 + self.penalty_uplift)

    def cap_rate(self, lpr: LprTable) -> Decimal:
        try:
            return annual_cap_rate(self.cap_regime, self.contract_date, lpr)
        except CapError as exc:
            raise LoanTermsError(f"cap_regime: {exc}") from None
