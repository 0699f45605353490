"""Litigation costs of suing a borrower: court, preservation, execution and attorney fees.

The rules are DOMAIN.md section 5 (Measures on the Payment of Litigation
Costs). Each fee table is written as the closed form of its cumulative tiers:
a tier ``(upper, rate, constant)`` charges ``rate x amount + constant`` for
amounts up to and including ``upper`` (``None``: no upper bound). The closed
forms agree at every tier edge, so the ``<=`` choice never changes a fee.
Each fee is rounded half-up to the fen.
"""

from __future__ import annotations

from states.errors import UserError

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from states.money import MoneyError, fmt, in_range, round_fen, to_decimal

Tier = tuple[Decimal | None, Decimal, Decimal]
D = Decimal

# Case acceptance fee, property cases.
ACCEPTANCE_FEE_TIERS: tuple[Tier, ...] = (
    (D("10000"), D("0"), D("50")),
    (D("100000"), D("0.025"), D("-200")),
    (D("200000"), D("0.02"), D("300")),
    (D("500000"), D("0.015"), D("1300")),
    (D("1000000"), D("0.01"), D("3800")),
    (D("2000000"), D("0.009"), D("4800")),
    (D("5000000"), D("0.008"), D("6800")),
    (D("10000000"), D("0.007"), D("11800")),
    (D("20000000"), D("0.006"), D("21800")),
    (None, D("0.005"), D("41800")),
)

PRESERVATION_FEE_TIERS: tuple[Tier, ...] = (
    (D("1000"), D("0"), D("30")),
    (D("100000"), D("0.01"), D("20")),
    (None, D("0.005"), D("520")),
)
PRESERVATION_FEE_CAP = D("5000")

# Charged to the debtor, on the amount executed.
EXECUTION_FEE_TIERS: tuple[Tier, ...] = (
    (D("10000"), D("0"), D("50")),
    (D("500000"), D("0.015"), D("-100")),
    (D("5000000"), D("0.01"), D("2400")),
    (D("10000000"), D("0.005"), D("27400")),
    (None, D("0.001"), D("67400")),
)

# Default schedule: 6 % of the first 100,000, 5 % of the part to 500,000, 4 % to
# 1,000,000, 3 % to 5,000,000, 2 % to 10,000,000, 1 % to 50,000,000, 0.5 % above.
# Each constant is the fee of the lower tiers minus rate x lower edge,
# e.g. 6,000 - 5 % x 100,000 = 1,000.
ATTORNEY_FEE_TIERS: tuple[Tier, ...] = (
    (D("100000"), D("0.06"), D("0")),
    (D("500000"), D("0.05"), D("1000")),
    (D("1000000"), D("0.04"), D("6000")),
    (D("5000000"), D("0.03"), D("16000")),
    (D("10000000"), D("0.02"), D("66000")),
    (D("50000000"), D("0.01"), D("166000")),
    (None, D("0.005"), D("416000")),
)
ATTORNEY_FEE_MINIMUM = D("2000")

# 0.0175 % a day on the judgment debt, once the performance deadline is missed.
DELAYED_PERFORMANCE_DAILY_RATE = D("0.000175")


class Procedure(StrEnum):
    """How the case is conducted; all but ordinary halve the acceptance fee."""

    ORDINARY = "ordinary"
    SUMMARY = "summary"
    MEDIATION = "mediation"
    WITHDRAWAL = "withdrawal"


HALVED_ACCEPTANCE_FEE = frozenset({Procedure.SUMMARY, Procedure.MEDIATION, Procedure.WITHDRAWAL})


class CourtFeeError(UserError):
    """An amount, day count or procedure that no fee can be computed for."""


def _tiered(amount: Decimal, tiers: tuple[Tier, ...]) -> Decimal:
    """The exact (unrounded) fee of ``amount`` under a tier table."""
    for upper, rate, constant in tiers:
        if upper is None or amount <= upper:
            return rate * amount + constant
    raise ValueError("a tier table must end with an unbounded tier")


def acceptance_fee(claim: Decimal, procedure: Procedure = Procedure.ORDINARY) -> Decimal:
    fee = _tiered(_positive_yuan(claim, "claim"), ACCEPTANCE_FEE_TIERS)
    if _procedure(procedure) in HALVED_ACCEPTANCE_FEE:
        fee /= 2  # halve the exact fee, so the fee is rounded once
    return round_fen(fee)


def preservation_fee(amount: Decimal) -> Decimal:
    fee = _tiered(_positive_yuan(amount, "amount"), PRESERVATION_FEE_TIERS)
    return round_fen(min(fee, PRESERVATION_FEE_CAP))


def execution_fee(amount: Decimal) -> Decimal:
    return round_fen(_tiered(_positive_yuan(amount, "amount"), EXECUTION_FEE_TIERS))


def attorney_fee(claim: Decimal) -> Decimal:
    fee = _tiered(_positive_yuan(claim, "claim"), ATTORNEY_FEE_TIERS)
    return round_fen(max(fee, ATTORNEY_FEE_MINIMUM))


def delayed_performance_interest(judgment_debt: Decimal, days: int) -> Decimal:
    """Interest for delayed performance over ``days`` days past the performance deadline."""
    debt = _positive_yuan(judgment_debt, "judgment_debt")
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise CourtFeeError(f"days must be a whole number of days, 0 or more, got '{days}'")
    return round_fen(debt * DELAYED_PERFORMANCE_DAILY_RATE * days)


@dataclass(frozen=True)
class LitigationCosts:
    """What suing for ``claim`` costs, assuming the whole claim is preserved and executed."""

    claim: Decimal
    procedure: Procedure
    acceptance: Decimal
    preservation: Decimal
    execution: Decimal
    attorney: Decimal

    @property
    def total(self) -> Decimal:
        return self.acceptance + self.preservation + self.execution + self.attorney

    def as_dict(self) -> dict[str, str]:
        fees = {
            "acceptance": self.acceptance,
            "preservation": self.preservation,
            "execution": self.execution,
            "attorney": self.attorney,
            "total": self.total,
        }
        return {
            "claim": fmt(self.claim),
            "procedure": str(self.procedure),
            **{name: fmt(fee) for name, fee in fees.items()},
        }


def litigation_costs(claim: object, procedure: Procedure | str = Procedure.ORDINARY) -> LitigationCosts:
    """All four fees for a claim given as a string, int or Decimal."""
    amount = _positive_yuan(claim, "claim")
    procedure = _procedure(procedure)
    return LitigationCosts(
        claim=amount,
        procedure=procedure,
        acceptance=acceptance_fee(amount, procedure),
        preservation=preservation_fee(amount),
        execution=execution_fee(amount),
        attorney=attorney_fee(amount),
    )


def _positive_yuan(value: object, field: str) -> Decimal:
    refusal = f"{field} must be a positive amount of yuan, got '{value}'"
    if isinstance(value, float):
        raise CourtFeeError(f"{refusal}, a float; give money as a string, int or Decimal")
    try:
        amount = to_decimal(value, field=field)
    except MoneyError:
        raise CourtFeeError(refusal) from None
    if amount <= 0:
        raise CourtFeeError(refusal)
    try:
        return in_range(amount, field=field)
    except MoneyError as exc:
        raise CourtFeeError(str(exc)) from None


def _procedure(value: object) -> Procedure:
    try:
        return Procedure(value)
    except ValueError:
        accepted = ", ".join(procedure.value for procedure in Procedure)
        raise CourtFeeError(f"procedure must be one of {accepted}, got '{value}'") from None
