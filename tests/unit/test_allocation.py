"""Applying a payment: the Civil Code art. 561 order, installment by installment, overpayment."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.allocation import (
    Allocation,
    AllocationError,
    AllocationLine,
    AllocationOrder,
    Component,
    Due,
    allocate,
)

D = Decimal
C = Component
JAN, FEB, MAR = date(2025, 1, 15), date(2025, 2, 15), date(2025, 3, 1)

# Two overdue installments and the costs of suing for them; 2,695.00 in all.
DUES = [
    Due(C.PRINCIPAL, D("1000.00"), JAN, 1),
    Due(C.CONTRACT_INTEREST, D("150.00"), JAN, 1),
    Due(C.PENALTY_INTEREST, D("45.00"), JAN, 1),
    Due(C.COMPOUND_INTEREST, D("5.00"), JAN, 1),
    Due(C.LATE_FEE, D("20.00"), JAN, 1),
    Due(C.PRINCIPAL, D("1000.00"), FEB, 2),
    Due(C.CONTRACT_INTEREST, D("140.00"), FEB, 2),
    Due(C.PENALTY_INTEREST, D("15.00"), FEB, 2),
    Due(C.LATE_FEE, D("20.00"), FEB, 2),
    Due(C.COSTS, D("300.00"), MAR),
]


def line(component: Component, amount: str, installment: int | None = None) -> AllocationLine:
    return AllocationLine(component, D(amount), installment)


def test_civil_code_order_pays_costs_then_interest_kinds_oldest_first_then_principal():
    allocation = allocate(D("1500.00"), DUES, AllocationOrder.CIVIL_CODE_561)
    assert allocation.lines == (
        line(C.COSTS, "300.00"),
        line(C.PENALTY_INTEREST, "45.00", 1),
        line(C.PENALTY_INTEREST, "15.00", 2),
        line(C.COMPOUND_INTEREST, "5.00", 1),
        line(C.LATE_FEE, "20.00", 1),
        line(C.LATE_FEE, "20.00", 2),
        line(C.CONTRACT_INTEREST, "150.00", 1),
        line(C.CONTRACT_INTEREST, "140.00", 2),
        line(C.PRINCIPAL, "805.00", 1),
    )
    assert allocation.overpayment == D("0.00")
    assert allocation.total_for(C.PRINCIPAL) == D("805.00")
    assert allocation.total_for("penalty_interest") == D("60.00")


def test_civil_code_is_the_default_order():
    assert allocate(D("1500.00"), DUES) == allocate(D("1500.00"), DUES, AllocationOrder.CIVIL_CODE_561)


def test_installment_by_installment_pays_costs_then_the_oldest_installment_in_full():
    allocation = allocate(D("1500.00"), DUES, AllocationOrder.INSTALLMENT_BY_INSTALLMENT)
    assert allocation.lines == (
        line(C.COSTS, "300.00"),
        line(C.PENALTY_INTEREST, "45.00", 1),
        line(C.COMPOUND_INTEREST, "5.00", 1),
        line(C.LATE_FEE, "20.00", 1),
        line(C.CONTRACT_INTEREST, "150.00", 1),
        line(C.PRINCIPAL, "980.00", 1),
    )


def test_installment_by_installment_moves_on_once_an_installment_is_paid():
    allocation = allocate(D("1600.00"), DUES, AllocationOrder.INSTALLMENT_BY_INSTALLMENT)
    # 300.00 costs + 1,220.00 for installment 1 leave 80.00 for installment 2.
    assert allocation.lines[-4:] == (
        line(C.PRINCIPAL, "1000.00", 1),
        line(C.PENALTY_INTEREST, "15.00", 2),
        line(C.LATE_FEE, "20.00", 2),
        line(C.CONTRACT_INTEREST, "45.00", 2),
    )


def test_installment_by_installment_keeps_an_installment_together_when_its_charges_fall_due_later():
    dues = [
        Due(C.PRINCIPAL, D("100.00"), JAN, 1),
        Due(C.PENALTY_INTEREST, D("10.00"), MAR, 1),  # accrued to March, still installment 1
        Due(C.PRINCIPAL, D("100.00"), FEB, 2),
    ]
    allocation = allocate(D("150.00"), dues, AllocationOrder.INSTALLMENT_BY_INSTALLMENT)
    assert allocation.lines == (
        line(C.PENALTY_INTEREST, "10.00", 1),
        line(C.PRINCIPAL, "100.00", 1),
        line(C.PRINCIPAL, "40.00", 2),
    )


def test_case_level_dues_come_before_installments_of_the_same_date():
    dues = [
        Due(C.PENALTY_INTEREST, D("10.00"), JAN, 1),
        Due(C.LATE_FEE, D("7.00"), JAN),
    ]
    assert allocate(D("8.00"), dues, AllocationOrder.INSTALLMENT_BY_INSTALLMENT).lines == (
        line(C.LATE_FEE, "7.00"),
        line(C.PENALTY_INTEREST, "1.00", 1),
    )
    # Under the Civil Code the kind of interest decides first, the date second.
    assert allocate(D("8.00"), dues).lines == (line(C.PENALTY_INTEREST, "8.00", 1),)
    dues = [Due(C.LATE_FEE, D("10.00"), JAN, 1), Due(C.LATE_FEE, D("7.00"), JAN)]
    assert allocate(D("8.00"), dues).lines == (
        line(C.LATE_FEE, "7.00"),
        line(C.LATE_FEE, "1.00", 1),
    )


def test_same_date_ties_go_to_the_lower_installment():
    dues = [Due(C.PRINCIPAL, D("50.00"), JAN, 2), Due(C.PRINCIPAL, D("50.00"), JAN, 1)]
    for order in AllocationOrder:
        assert allocate(D("60.00"), dues, order).lines == (
            line(C.PRINCIPAL, "50.00", 1),
            line(C.PRINCIPAL, "10.00", 2),
        )


def test_result_does_not_depend_on_the_order_dues_are_given_in():
    for order in AllocationOrder:
        assert allocate(D("1500.00"), list(reversed(DUES)), order) == allocate(D("1500.00"), DUES, order)


def test_payment_above_everything_owed_leaves_an_overpayment():
    allocation = allocate(D("3000.00"), DUES)
    assert allocation.allocated == D("2695.00")
    assert allocation.overpayment == D("305.00")
    assert len(allocation.lines) == len(DUES)


def test_payment_of_exactly_everything_owed_leaves_no_overpayment():
    allocation = allocate(D("2695.00"), DUES)
    assert allocation.overpayment == D("0.00")
    assert allocation.total_for(C.PRINCIPAL) == D("2000.00")


def test_partial_payment_stops_exactly_where_it_runs_out():
    allocation = allocate(D("300.01"), DUES)
    assert allocation.lines == (line(C.COSTS, "300.00"), line(C.PENALTY_INTEREST, "0.01", 1))
    assert allocation.overpayment == D("0.00")


def test_payment_with_nothing_owed_is_all_overpayment():
    allocation = allocate(D("12.34"), [])
    assert allocation.lines == ()
    assert allocation.overpayment == D("12.34")


def test_dues_of_zero_are_skipped():
    dues = [Due(C.COSTS, D("0"), JAN), Due(C.PRINCIPAL, D("10.00"), JAN, 1)]
    assert allocate(D("5.00"), dues).lines == (line(C.PRINCIPAL, "5.00", 1),)


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (D("0"), "must be positive, got 0"),
        (D("-5.00"), "must be positive, got -5.00"),
        (D("10.005"), "10.005 is not a whole number of fen"),
        (10.5, "10.5 is a float"),
    ],
)
def test_bad_payment_amounts_are_refused_naming_the_value(amount, message):
    with pytest.raises(AllocationError, match=message):
        allocate(amount, DUES)


def test_bad_dues_and_orders_are_refused():
    with pytest.raises(AllocationError, match="must not be negative, got -1"):
        Due(C.PRINCIPAL, D("-1"), JAN, 1)
    with pytest.raises(AllocationError, match="0.001 is not a whole number of fen"):
        Due(C.PRINCIPAL, D("0.001"), JAN, 1)
    with pytest.raises(AllocationError, match="'fees' is not one of"):
        Due("fees", D("1"), JAN)  # type: ignore[arg-type]
    with pytest.raises(AllocationError, match="'newest_first' is not one of: civil_code_561"):
        allocate(D("1.00"), DUES, "newest_first")  # type: ignore[arg-type]


def test_an_allocation_that_does_not_add_up_cannot_be_built():
    with pytest.raises(AllocationError, match="does not equal"):
        Allocation(D("10.00"), (line(C.PRINCIPAL, "9.00", 1),), D("0.00"))


fen = st.integers(min_value=0, max_value=500_000).map(lambda n: D(n) / 100)
dues_strategy = st.lists(
    st.builds(
        Due,
        component=st.sampled_from(Component),
        amount=fen,
        due_on=st.integers(min_value=0, max_value=120).map(lambda n: JAN + timedelta(days=n)),
        installment=st.none() | st.integers(min_value=1, max_value=6),
    ),
    max_size=12,
)
payments = st.integers(min_value=1, max_value=2_000_000).map(lambda n: D(n) / 100)


def owed_by_key(dues: list[Due]) -> Counter:
    owed: Counter = Counter()
    for due in dues:
        owed[(due.component, due.installment)] += due.amount
    return owed


@given(amount=payments, dues=dues_strategy, order=st.sampled_from(AllocationOrder))
def test_allocation_never_creates_or_loses_a_fen(amount, dues, order):
    allocation = allocate(amount, dues, order)

    assert sum((ln.amount for ln in allocation.lines), D(0)) + allocation.overpayment == amount
    assert allocation.overpayment >= 0
    assert all(ln.amount > 0 for ln in allocation.lines)
    paid: Counter = Counter()
    for ln in allocation.lines:
        paid[(ln.component, ln.installment)] += ln.amount
    owed = owed_by_key(dues)
    assert all(paid[key] <= owed[key] for key in paid)
    # Money is left over only when everything owed has been paid.
    if allocation.overpayment > 0:
        assert paid == +owed


@given(amount=payments, dues=dues_strategy, order=st.sampled_from(AllocationOrder), data=st.data())
def test_allocation_does_not_depend_on_the_order_dues_are_listed_in(amount, dues, order, data):
    shuffled = data.draw(st.permutations(dues))
    first, second = allocate(amount, dues, order), allocate(amount, shuffled, order)

    def totals(allocation: Allocation) -> Counter:
        result: Counter = Counter()
        for ln in allocation.lines:
            result[(ln.component, ln.installment)] += ln.amount
        return result

    assert totals(first) == totals(second)
    assert first.overpayment == second.overpayment
