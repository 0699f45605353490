"""Applying a payment to what is owed, line by line (DOMAIN.md §4).

``allocate`` orders the dues by the contract's allocation order, pays each in
turn until the payment runs out, and records what is left as overpayment.
The rule that a payment is allocated exactly (lines plus overpayment equal
the amount, no line above its due) is checked when an ``Allocation`` is
built, so no caller can record one that breaks it.
"""

from __future__ import annotations

from states.errors import UserError

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from states.money import FEN, ZERO, MoneyError, to_decimal


class AllocationError(UserError):
    """A payment or due that cannot be allocated as given."""


class Component(StrEnum):
    """What a due is for. Declaration order is the order interest kinds are paid in."""

    COSTS = "costs"
    PENALTY_INTEREST = "penalty_interest"
    COMPOUND_INTEREST = "compound_interest"
    LATE_FEE = "late_fee"
    CONTRACT_INTEREST = "contract_interest"
    PRINCIPAL = "principal"
    # Paid after everything else, principal not yet due included (states.litigation).
    DELAYED_PERFORMANCE_INTEREST = "delayed_performance_interest"


_RANK = {component: rank for rank, component in enumerate(Component)}


class AllocationOrder(StrEnum):
    """How a payment is spread over what is owed."""

    # Civil Code art. 561: costs; then penalty, compound, late fees, contract
    # interest, each oldest due first; then principal, oldest installment first.
    CIVIL_CODE_561 = "civil_code_561"
    # Costs first; then each installment in full (penalty, compound, late fee,
    # contract interest, principal) before the next, oldest first.
    INSTALLMENT_BY_INSTALLMENT = "installment_by_installment"


@dataclass(frozen=True)
class Due:
    """An amount owed: a whole number of fen, of one component, due on a date.

    ``installment`` is None for a case-level due (litigation costs, for one).
    """

    component: Component
    amount: Decimal
    due_on: date
    installment: int | None = None

    def __post_init__(self) -> None:
        try:
            component = Component(self.component)
        except ValueError:
            accepted = ", ".join(c.value for c in Component)
            raise AllocationError(
                f"due component {self.component!r} is not one of: {accepted}"
            ) from None
        object.__setattr__(self, "component", component)
        amount = _fen(self.amount, f"{component.value} due")
        if amount < 0:
            raise AllocationError(f"{component.value} due: must not be negative, got {self.amount}")
        object.__setattr__(self, "amount", amount)
        if not isinstance(self.due_on, date) or isinstance(self.due_on, datetime):
            raise AllocationError(f"{component.value} due: due_on {self.due_on!r} is not a date")
        if self.installment is not None and (
            isinstance(self.installment, bool)
            or not isinstance(self.installment, int)
            or self.installment < 0
        ):
            raise AllocationError(
                f"{component.value} due: installment must be a non-negative integer or None, "
                f"got {self.installment!r}"
            )


@dataclass(frozen=True)
class AllocationLine:
    """The part of a payment applied to one due."""

    component: Component
    amount: Decimal
    installment: int | None = None


@dataclass(frozen=True)
class Allocation:
    """A payment applied in full: its lines in allocation order and any overpayment."""

    amount: Decimal
    lines: tuple[AllocationLine, ...]
    overpayment: Decimal

    def __post_init__(self) -> None:
        for line in self.lines:
            if line.amount <= 0:
                raise AllocationError(f"allocation line {line} must be positive")
        if self.overpayment < 0:
            raise AllocationError(f"overpayment must not be negative, got {self.overpayment}")
        allocated = sum((line.amount for line in self.lines), ZERO)
        if allocated + self.overpayment != self.amount:
            raise AllocationError(
                f"payment {self.amount} does not equal lines {allocated} "
                f"plus overpayment {self.overpayment}"
            )

    @property
    def allocated(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    def total_for(self, component: Component | str) -> Decimal:
        wanted = Component(component)
        return sum((line.amount for line in self.lines if line.component is wanted), ZERO)


def allocate(
    amount: Decimal,
    dues: Sequence[Due],
    order: AllocationOrder = AllocationOrder.CIVIL_CODE_561,
) -> Allocation:
    """Apply a payment of ``amount`` to ``dues`` in ``order``; what is left over is overpayment."""
    payment = _fen(amount, "payment amount")
    if payment <= 0:
        raise AllocationError(f"payment amount must be positive, got {amount}")
    try:
        order = AllocationOrder(order)
    except ValueError:
        accepted = ", ".join(o.value for o in AllocationOrder)
        raise AllocationError(f"allocation order {order!r} is not one of: {accepted}") from None
    for due in dues:
        if not isinstance(due, Due):
            raise AllocationError(f"{due!r} is not a Due")

    remaining = payment
    lines: list[AllocationLine] = []
    for due in _in_order([d for d in dues if d.amount > 0], order):
        if remaining == 0:
            break
        paid = min(remaining, due.amount)
        lines.append(AllocationLine(due.component, paid, due.installment))
        remaining -= paid
    return Allocation(amount=payment, lines=tuple(lines), overpayment=remaining)


def _in_order(dues: list[Due], order: AllocationOrder) -> list[Due]:
    # sorted() is stable, so dues equal on every key keep the order they were given in.
    if order is AllocationOrder.CIVIL_CODE_561:
        return sorted(dues, key=lambda d: (_RANK[d.component], d.due_on, _installment_key(d)))

    costs = sorted(
        (d for d in dues if d.component is Component.COSTS),
        key=lambda d: (d.due_on, _installment_key(d)),
    )
    rest = [d for d in dues if d.component is not Component.COSTS]
    # An installment is as old as its earliest due; a case-level due stands alone at its own date.
    installment_start: dict[int, date] = {}
    for due in rest:
        if due.installment is not None:
            start = installment_start.get(due.installment)
            if start is None or due.due_on < start:
                installment_start[due.installment] = due.due_on

    def key(due: Due) -> tuple:
        if due.installment is None:
            group = (due.due_on, 0, 0)
        else:
            group = (installment_start[due.installment], 1, due.installment)
        return (group, _RANK[due.component], due.due_on)

    return costs + sorted(rest, key=key)


def _installment_key(due: Due) -> tuple[int, int]:
    # Case-level dues come before installments that fall due the same day.
    return (0, 0) if due.installment is None else (1, due.installment)


def _fen(value: object, field: str) -> Decimal:
    try:
        result = to_decimal(value, field=field)
    except MoneyError as exc:
        raise AllocationError(str(exc)) from None
    if result != result.quantize(FEN):
        raise AllocationError(f"{field}: {value} is not a whole number of fen")
    return result.quantize(FEN)
