"""Payments on a case (DOMAIN.md §4): allocation line by line, payoff, overpayment, refusals."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from states.allocation import AllocationOrder
from states.case import CollectionCase, DomainError
from states.parse import InputError
from states.events import ChargesAccrued, PaymentReceived
from states.policy import CollectionPolicy
from states.schedule import RepaymentMethod
from tests.unit.conftest import DAY, DUE, POLICY, D, loan, of_type, open_case, payment_cmd, stored


def lines_of(event: PaymentReceived) -> list[tuple[str, Decimal, int | None]]:
    return [(line.component, line.amount, line.installment) for line in event.lines]


def assert_exact(event: PaymentReceived) -> None:
    assert sum((line.amount for line in event.lines), D("0")) + event.overpayment == event.amount
    assert all(line.amount > 0 for line in event.lines)


def test_payment_pays_penalty_then_contract_interest_then_principal():
    case = open_case()
    case.advance(DUE + timedelta(days=30), POLICY)  # 225.00 penalty, 145.00 contract interest due
    (payment,) = of_type(case.record_payment(payment_cmd(case, "400.00", DUE + timedelta(days=30), "p1"), POLICY), PaymentReceived)
    assert lines_of(payment) == [
        ("penalty_interest", D("225.00"), None),
        ("contract_interest", D("145.00"), 1),
        ("principal", D("30.00"), 1),
    ]
    assert payment.overpayment == D("0.00") and payment.allocation_order == "civil_code_561"
    assert_exact(payment)
    assert case.projection().principal_outstanding == D("9970.00")


def test_interest_of_every_installment_before_any_principal_under_the_civil_code():
    terms = loan("12000.00", "0.06", 3, RepaymentMethod.EQUAL_PRINCIPAL, late_fee="10.00")
    case = open_case(terms=terms)
    day = terms.schedule[1].due_on + timedelta(days=5)
    case.advance(day, POLICY)
    (payment,) = of_type(case.record_payment(payment_cmd(case, "200.00", day, "p"), POLICY), PaymentReceived)
    components = [c for c, _a, _i in lines_of(payment)]
    assert components == ["penalty_interest", "late_fee", "late_fee", "contract_interest", "contract_interest", "principal"]
    assert [i for c, _a, i in lines_of(payment) if c == "contract_interest"] == [1, 2]  # oldest first


def test_installment_by_installment_order_clears_the_oldest_installment_first():
    policy = CollectionPolicy(allocation_order=AllocationOrder.INSTALLMENT_BY_INSTALLMENT)
    terms = loan("12000.00", "0.06", 3, RepaymentMethod.EQUAL_PRINCIPAL)
    case = open_case(terms=terms)
    day = terms.schedule[1].due_on + timedelta(days=5)
    case.advance(day, policy)
    first = terms.schedule[0]
    (payment,) = of_type(case.record_payment(payment_cmd(case, "5000.00", day, "p"), policy), PaymentReceived)
    assert payment.allocation_order == "installment_by_installment"
    by_installment = [(c, i) for c, _a, i in lines_of(payment) if i is not None]
    assert by_installment[:2] == [("contract_interest", 1), ("principal", 1)]
    assert ("principal", first.principal, 1) in lines_of(payment)
    assert_exact(payment)


def test_litigation_costs_are_paid_before_interest():
    case = open_case()
    case.advance(DUE + timedelta(days=200), POLICY)
    costs = case.costs_due
    (payment,) = of_type(case.record_payment(payment_cmd(case, costs + D("1.00"), DUE + timedelta(days=200), "p"), POLICY), PaymentReceived)
    assert lines_of(payment)[0] == ("costs", costs, None)
    assert lines_of(payment)[1][0] == "penalty_interest"
    assert case.projection().costs == D("0.00")


def test_overpayment_is_recorded_and_the_case_settles():
    case = open_case()
    day = DUE + timedelta(days=10)
    owing = case.view(day).projection.total_due
    (payment,) = of_type(case.record_payment(payment_cmd(case, owing + D("123.45"), day, "big"), POLICY), PaymentReceived)
    assert payment.overpayment == D("123.45")
    assert_exact(payment)
    assert case.projection().overpayment == D("123.45")
    assert case.stage.value == "settled"


def test_payoff_brings_forward_the_accrued_contract_interest():
    case = open_case(principal="12000.00", term=3, method=RepaymentMethod.EQUAL_PRINCIPAL)
    day = date(2024, 2, 21)  # 20 days: 12,000 x 18 % / 360 x 20 = 120.00 accrued, not yet due
    assert case.view(day).contract_interest_accrued == D("120.00")
    events = case.record_payment(payment_cmd(case, "12120.00", day, "payoff"), POLICY)
    (brought,) = [p for e in of_type(events, ChargesAccrued) for p in e.postings if "payoff" in p.rule]
    assert (brought.component, brought.enforceable, brought.installment) == ("contract_interest", D("120.00"), 1)
    (payment,) = of_type(events, PaymentReceived)
    assert payment.overpayment == D("0.00")
    assert case.stage.value == "settled"


def test_a_payment_one_fen_short_of_payoff_neither_settles_nor_forgives_interest():
    case = open_case(principal="12000.00", term=3, method=RepaymentMethod.EQUAL_PRINCIPAL)
    day = date(2024, 2, 21)
    events = case.record_payment(payment_cmd(case, "12119.99", day, "short"), POLICY)
    (payment,) = of_type(events, PaymentReceived)
    assert payment.overpayment == D("0.00")
    assert case.stage.value == "current"
    assert case.principal_outstanding() == D("0.01")
    assert sum((l.amount for l in payment.lines if l.component == "contract_interest"), D("0")) == D("120.00")


def test_partial_prepayment_pays_principal_and_never_interest_in_advance():
    terms = loan("12000.00", "0.18", 3, RepaymentMethod.EQUAL_PRINCIPAL)
    case = open_case(terms=terms)
    (payment,) = of_type(case.record_payment(payment_cmd(case, "5000.00", date(2024, 2, 16), "pre"), POLICY), PaymentReceived)
    assert [c for c, _a, _i in lines_of(payment)] == ["principal", "principal"]
    case.advance(terms.schedule[0].due_on + DAY, POLICY)
    (interest,) = [p for e in of_type(case.log, ChargesAccrued) for p in e.postings if p.component == "contract_interest"]
    # 15 days on 12,000 then 14 days on 7,000, at 18 % ACT/360: 90.00 + 49.00
    assert interest.enforceable == D("139.00")


@pytest.mark.parametrize(
    "amount, needle", [("0", "must be a positive amount"), ("-5", "must be a positive amount"), ("abc", "not a number"), (1.5, "float")]
)
def test_bad_payment_amounts_are_refused_with_the_value_named(amount, needle):
    case = open_case()
    with pytest.raises(InputError, match=needle):  # refused as the command is built, before the case sees it
        case.record_payment(payment_cmd(case, amount, DUE, "bad"), POLICY)
    assert case.version == 1


def test_payment_on_a_settled_case_is_refused():
    case = open_case()
    case.record_payment(payment_cmd(case, "20000.00", DUE, "all"), POLICY)
    assert case.stage.value == "settled"
    with pytest.raises(DomainError, match="settled; it takes no more payments"):
        case.record_payment(payment_cmd(case, "1.00", DUE + DAY, "more"), POLICY)


def test_payments_replay_from_their_stored_form():
    case = open_case()
    case.advance(DUE + timedelta(days=40), POLICY)
    case.record_payment(payment_cmd(case, "333.33", DUE + timedelta(days=40), "p1", channel="alipay"), POLICY)
    case.record_payment(payment_cmd(case, "20000.00", DUE + timedelta(days=45), "p2"), POLICY)
    replayed = CollectionCase.replay(stored(case.log))
    assert replayed.projection() == case.projection()
    assert replayed.snapshot() == case.snapshot()


def test_a_payment_after_the_catch_up_writes_the_case_off_is_a_recovery():
    case = open_case(principal="3000.00")  # too small to sue: written off at DPD 361
    case.advance(DUE + timedelta(days=300), POLICY)
    case.record_payment(payment_cmd(case, "100.00", DUE + timedelta(days=365), "after-write-off"), POLICY)
    assert case.stage.value == "written_off"
    (payment,) = of_type(case.log, PaymentReceived)
    assert payment.amount == sum(line.amount for line in payment.lines) == D("100.00")


def test_the_payoff_quoted_by_the_view_settles_exactly():
    """With the policy the view runs the reviews a payment would meet, so a late fee cut by the
    cap at its own posting date is quoted as it will be charged."""
    terms = loan("100.00", "0", 1, RepaymentMethod.EQUAL_INSTALLMENT, date(2023, 1, 1), date(2023, 1, 2), late_fee="30.00")
    case = open_case(terms=terms)
    day = date(2023, 1, 4)
    quote = case.view(day, POLICY).projection.total_due
    (payment,) = of_type(case.record_payment(payment_cmd(case, quote, day, "payoff"), POLICY), PaymentReceived)
    assert payment.overpayment == D("0.00")
    assert case.stage.value == "settled"


def test_accrued_contract_interest_in_the_view_is_what_the_cap_allows():
    terms = loan(disbursed_on=date(2025, 6, 1), first_due_on=date(2025, 7, 1), cap_regime="private")
    case = open_case(terms=terms)
    view = case.view(date(2025, 6, 11), POLICY)
    # 10 days at 18 % is 50.00; the 12 % private cap allows 33.33
    assert view.contract_interest_accrued == D("33.33")
    events = case.record_payment(payment_cmd(case, D("10033.33"), date(2025, 6, 11), "payoff"), POLICY)
    (brought,) = [p for e in of_type(events, ChargesAccrued) for p in e.postings]
    assert (brought.computed, brought.enforceable, brought.unenforceable) == (D("50.00"), D("33.33"), D("16.67"))
    assert of_type(events, PaymentReceived)[0].overpayment == D("0.00")
    assert case.stage.value == "settled"
