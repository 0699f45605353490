"""Repayment schedules: due dates and each installment's principal and interest.

Two conventions say how a period's interest is computed (``ScheduleInterest``,
a term of the loan):

- ``monthly`` (the default, the plan Chinese lenders print on the contract):
  a full monthly period's interest is the outstanding principal x annual_rate /
  12, rounded to the fen; a first period that is not one calendar month (from
  disbursement to the first due date) accrues by the day count on its days.
- ``actual_days``: every period accrues outstanding principal x annual_rate x
  days_k / basis by the contract's day count, from the previous due date (the
  disbursement date for period 1) to due date k, exactly as daily accrual
  would; interest is posted in fen with the residue carried, so the postings
  add up to the rounded exact total.

Under both, 等额本息 pays the level installment at the monthly rate (its
principal is the installment less the period's interest), 等额本金 repays
principal / n, 先息后本 the whole principal with the last; principal always
adds up to the loan amount exactly, the last installment absorbing any rounding.
"""

from __future__ import annotations

from states.errors import UserError

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from states.money import FEN, ZERO, DayCount, MoneyError, days_between, round_fen, to_decimal

E = TypeVar("E", bound=StrEnum)

MAX_TERM_MONTHS = 360
MAX_FIRST_PERIOD_DAYS = 62  # a first period of up to about two months


class RepaymentMethod(StrEnum):
    EQUAL_INSTALLMENT = "equal_installment"  # 等额本息
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金
    INTEREST_FIRST = "interest_first"  # 先息后本


class ScheduleInterest(StrEnum):
    """How a plan computes each period's interest (see the module docstring)."""

    MONTHLY = "monthly"  # balance x rate / 12 a full month; the day count for an odd first period
    ACTUAL_DAYS = "actual_days"  # the day count on each period's actual days


class ScheduleError(UserError):
    """Loan terms from which no schedule can be built."""


@dataclass(frozen=True)
class Installment:
    number: int  # 1-based
    due_on: date
    principal: Decimal  # fen
    interest: Decimal  # fen, scheduled contract interest for the period

    @property
    def amount(self) -> Decimal:
        return self.principal + self.interest


def due_dates(first_due_on: date, term_months: int) -> tuple[date, ...]:
    """Monthly due dates keeping first_due_on's day of month, clamped to each month's end."""
    _check_term(term_months)
    return tuple(_add_months(first_due_on, months) for months in range(term_months))


def build_schedule(
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    method: RepaymentMethod,
    disbursed_on: date,
    first_due_on: date,
    day_count: DayCount = DayCount.ACT_360,
    schedule_interest: ScheduleInterest = ScheduleInterest.MONTHLY,
) -> tuple[Installment, ...]:
    principal = _checked_principal(principal)
    annual_rate = _checked_rate(annual_rate)
    method = _checked_choice(RepaymentMethod, method, "method")
    day_count = _checked_choice(DayCount, day_count, "day_count")
    schedule_interest = _checked_choice(ScheduleInterest, schedule_interest, "schedule_interest")
    _check_first_period(disbursed_on, first_due_on)
    dates = due_dates(first_due_on, term_months)
    target_principal = _target_principal(method, principal, annual_rate, term_months)
    first_is_a_month = first_due_on == _add_months(disbursed_on, 1)

    installments: list[Installment] = []
    outstanding = principal
    principal_days = Decimal(0)
    interest_posted = ZERO
    period_start = disbursed_on
    for number, due_on in enumerate(dates, start=1):
        days = days_between(period_start, due_on)
        if schedule_interest is ScheduleInterest.ACTUAL_DAYS:
            principal_days += outstanding * days
            cumulative = round_fen(contract_interest_exact(principal_days, annual_rate, day_count))
            interest, interest_posted = cumulative - interest_posted, cumulative
        elif number > 1 or first_is_a_month:
            interest = round_fen(outstanding * annual_rate / 12)
        else:  # an odd first period: by the day count on its days
            interest = round_fen(contract_interest_exact(outstanding * days, annual_rate, day_count))
        if number == term_months:
            repaid = outstanding
        else:
            repaid = min(outstanding, max(ZERO, target_principal(interest)))
        installments.append(Installment(number, due_on, repaid, interest))
        outstanding -= repaid
        period_start = due_on
    return tuple(installments)


def contract_interest_exact(principal_days: Decimal, annual_rate: Decimal, day_count: DayCount) -> Decimal:
    """Interest on a sum of principal x days at annual_rate, unrounded."""
    return principal_days * annual_rate / day_count.basis


def level_payment(principal: Decimal, annual_rate: Decimal, term_months: int) -> Decimal:
    """The equal-installment (annuity) payment at the monthly rate annual_rate / 12, in fen."""
    if annual_rate == 0:
        return round_fen(principal / term_months)
    growth = (1 + annual_rate / 12) ** term_months
    return round_fen(principal * (annual_rate / 12) * growth / (growth - 1))


def _target_principal(
    method: RepaymentMethod, principal: Decimal, annual_rate: Decimal, term_months: int
) -> Callable[[Decimal], Decimal]:
    """The principal a non-final installment aims to repay, given its interest."""
    if method is RepaymentMethod.EQUAL_INSTALLMENT:
        payment = level_payment(principal, annual_rate, term_months)
        return lambda interest: payment - interest
    if method is RepaymentMethod.EQUAL_PRINCIPAL:
        share = round_fen(principal / term_months)
        return lambda interest: share
    return lambda interest: ZERO


def _add_months(anchor: date, months: int) -> date:
    year, month_index = divmod(anchor.month - 1 + months, 12)
    year += anchor.year
    last_day = calendar.monthrange(year, month_index + 1)[1]
    return date(year, month_index + 1, min(anchor.day, last_day))


def _checked_principal(value: object) -> Decimal:
    principal = _decimal(value, "principal")
    if principal <= 0 or principal != principal.quantize(FEN):
        raise ScheduleError(f"principal must be a positive amount in whole fen such as 12000.00, got {value}")
    return principal.quantize(FEN)


def _checked_rate(value: object) -> Decimal:
    rate = _decimal(value, "annual_rate")
    if not 0 <= rate < 1:
        raise ScheduleError(f"annual_rate must be a fraction such as 0.18, got {value}")
    return rate


def _check_term(term_months: object) -> None:
    if isinstance(term_months, bool) or not isinstance(term_months, int) or not 1 <= term_months <= MAX_TERM_MONTHS:
        raise ScheduleError(f"term_months must be a whole number from 1 to {MAX_TERM_MONTHS}, got {term_months!r}")


def _check_first_period(disbursed_on: date, first_due_on: date) -> None:
    if not 1 <= days_between(disbursed_on, first_due_on) <= MAX_FIRST_PERIOD_DAYS:
        raise ScheduleError(
            f"first_due_on must fall 1 to {MAX_FIRST_PERIOD_DAYS} days after disbursed_on ({disbursed_on}), "
            f"got {first_due_on}"
        )


def _checked_choice(kind: type[E], value: object, field: str) -> E:
    try:
        return kind(value)
    except ValueError:
        accepted = ", ".join(member.value for member in kind)
        raise ScheduleError(f"{field} must be one of {accepted}, got {value!r}") from None


def _decimal(value: object, field: str) -> Decimal:
    try:
        return to_decimal(value, field=field)
    except MoneyError as error:
        raise ScheduleError(str(error)) from None
