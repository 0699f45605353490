"""Accrual as pure functions: typed charge keys keep each charge apart, and the cap cuts them in order."""

from __future__ import annotations

from datetime import timedelta

from states.accrual import Balances, ChargeKey, Totals, penalty_rate, stretch_charges
from states.allocation import Component
from states.caps import apply_cap
from states.schedule import RepaymentMethod
from tests.unit.conftest import D, loan, plain_case

LATE_FEE, CONTRACT = Component.LATE_FEE, Component.CONTRACT_INTEREST


def test_a_late_fee_and_contract_interest_of_one_installment_stay_two_charges():
    late_fee, interest = ChargeKey(LATE_FEE, 3), ChargeKey(CONTRACT, 3)
    assert late_fee != interest
    split = apply_cap({late_fee: D("50.00"), interest: D("120.00")}, D("0.00"), D("100.00"))
    # the cap cuts the late fee first, then contract interest; each keeps its own figures
    assert split.unenforceable == {late_fee: D("50.00"), interest: D("20.00")}
    assert split.enforceable == {late_fee: D("0.00"), interest: D("100.00")}


def test_two_late_fees_are_cut_in_the_order_given():
    first, second = ChargeKey(LATE_FEE, 1), ChargeKey(LATE_FEE, 2)
    split = apply_cap({first: D("50.00"), second: D("50.00")}, D("0.00"), D("60.00"))
    assert (split.unenforceable[first], split.unenforceable[second]) == (D("40.00"), D("0.00"))  # 40 above the cap


def test_one_stretch_posts_a_late_fee_and_contract_interest_with_their_installments():
    terms = loan("12000.00", "0.06", 3, RepaymentMethod.EQUAL_PRINCIPAL, late_fee="50.00")
    case = plain_case(terms=terms)
    first, second = case.installments[0].due_on, case.installments[1].due_on
    # the stretch after installment 1 fell due unpaid, through installment 2's due date
    balances = Balances(case.principal_not_yet_due(second), case.overdue_principal(first + timedelta(days=1)), D("0.00"), case.principal_outstanding())
    totals = Totals({**case.principal_days}, case.computed, case.charged)
    charges = stretch_charges(case.terms, case.day_count, balances, case.installments, totals, first, second)
    keyed = {(p.component, p.installment): p for p in charges.postings}
    assert keyed[("late_fee", 1)].enforceable == D("50.00")
    assert ("contract_interest", 2) in keyed and ("contract_interest", 1) not in keyed
    assert keyed[("penalty_interest", None)].computed > 0


def test_the_penalty_rate_is_the_contract_rate_with_its_uplift():
    terms = loan(rate="0.18")
    assert penalty_rate(terms.annual_rate, terms.penalty_uplift) == D("0.27") == plain_case(terms=terms).penalty_rate
