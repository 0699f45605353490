"""Daily accrual follows the contract's plan: at each due date the contract interest posted is the
plan's interest for the period (DOMAIN.md §3 "Repayment plans"), under the monthly convention and
for a plan as imported; prepaying principal earns less of it, in proportion to the days."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from fractions import Fraction

from states.case import CollectionCase
from states.events import CaseOpened, ChargesAccrued, event_from_record
from states.explain import describe
from states.schedule import Installment, RepaymentMethod, ScheduleInterest
from tests.unit.conftest import POLICY, loan, payment_cmd, plain_case

D = Decimal
MONTHLY = ScheduleInterest.MONTHLY
FIRST_DUE = date(2026, 2, 15)


def contract_loan(**kw):
    """DOMAIN.md §3's example: 120,000.00 at 18 % over 12 months, disbursed 2026-01-15, first due 2026-02-15."""
    return loan(
        "120000.00", "0.18", 12, RepaymentMethod.EQUAL_INSTALLMENT, date(2026, 1, 15), FIRST_DUE,
        schedule_interest=kw.pop("schedule_interest", MONTHLY), **kw,
    )


def contract_interest_posted(case) -> dict[int, Decimal]:
    return {i.number: i.interest_due for i in case.installments if i.interest_due}


def test_a_loan_paid_as_planned_is_charged_exactly_its_plans_interest():
    case = plain_case(terms=contract_loan())
    plan = case.terms.schedule
    for inst in plan:
        case.record_payment(payment_cmd(case, "11001.60", inst.due_on, f"P{inst.number}"), POLICY)
    assert contract_interest_posted(case) == {i.number: i.interest for i in plan}
    assert (plan[0].interest, plan[1].interest) == (D("1800.00"), D("1661.98"))
    assert case.stage.value == "settled" and case.total_paid == D("11001.60") * 12


def test_an_overdue_installment_leaves_the_next_periods_interest_as_planned():
    """Installment 1 unpaid: its principal bears penalty interest, and installment 2's contract
    interest is still the plan's 110,798.40 x 1.5 % = 1,661.98 (the plan's balance excludes it too)."""
    case = plain_case(terms=contract_loan())
    case.advance(date(2026, 3, 16), POLICY)
    assert contract_interest_posted(case) == {1: D("1800.00"), 2: D("1661.98")}
    # penalty at 27 % by ACT/360 on 9,201.60 overdue Feb 16 .. Mar 16 (29 days) and 9,339.62 on Mar 16:
    assert case.penalty_due == D("207.14")  # (9,201.60 x 29 + 9,339.62) x 0.27 / 360 = 207.1395


def test_prepaid_principal_earns_the_periods_interest_only_for_the_days_it_was_owed():
    case = plain_case(terms=contract_loan())
    case.record_payment(payment_cmd(case, "11001.60", FIRST_DUE, "P1"), POLICY)
    # Mar 1, 14 of the 28 days of Feb 15 -> Mar 15 in: 10,000.00 above what is due prepays principal
    case.record_payment(payment_cmd(case, "10000.00", date(2026, 3, 1), "PRE"), POLICY)
    case.advance(date(2026, 3, 16), POLICY)
    balance = Fraction("110798.40")
    planned = balance * 28
    had = balance * 14 + (balance - 10000) * 14
    expected = Fraction("1661.98") * had / planned  # about 1,661.98 - 10,000 x 1.5 % x 14 / 28 = 1,586.98
    assert contract_interest_posted(case)[2] == D(round(expected * 100)) / 100 == D("1586.98")


def test_a_payoff_mid_period_brings_forward_the_plans_interest_for_the_days_elapsed():
    case = plain_case(terms=contract_loan())
    case.record_payment(payment_cmd(case, "11001.60", FIRST_DUE, "P1"), POLICY)
    view = case.view(date(2026, 3, 1))
    assert view.contract_interest_accrued == D("830.99")  # 1,661.98 x 14 / 28
    case.record_payment(payment_cmd(case, str(view.payoff), date(2026, 3, 1), "OFF"), POLICY)
    assert case.stage.value == "settled"


def test_actual_days_keeps_the_day_count_posting():
    case = plain_case(terms=contract_loan(schedule_interest=ScheduleInterest.ACTUAL_DAYS))
    case.advance(date(2026, 2, 16), POLICY)
    assert contract_interest_posted(case) == {1: D("1860.00")}  # 120,000.00 x 18 % x 31 / 360


def test_an_imported_plan_is_what_accrual_posts():
    terms = contract_loan()
    plan = tuple(Installment(i.number, i.due_on, i.principal, i.interest + D("1.00")) for i in terms.schedule)
    case = plain_case(terms=terms.with_plan(plan))
    assert case.plan_basis() == "plan as imported from the core lending system"
    assert "installments from 2026-02-15 (plan as imported)" in describe(case.terms)  # what case replay shows
    assert "(plan computed, monthly interest)" in describe(plain_case(terms=contract_loan()).terms)
    case.advance(date(2026, 3, 16), POLICY)
    assert contract_interest_posted(case) == {1: D("1801.00"), 2: D("1662.98")}


def test_a_monthly_case_replays_and_reloads_to_the_same_state_mid_period():
    case = plain_case(terms=contract_loan())
    case.record_payment(payment_cmd(case, "11001.60", FIRST_DUE, "P1"), POLICY)
    case.record_payment(payment_cmd(case, "10000.00", date(2026, 3, 1), "PRE"), POLICY)
    events = case.collect_events()
    replayed = CollectionCase.replay(events)
    assert replayed.snapshot() == case.snapshot()
    reloaded = CollectionCase.from_snapshot(json.loads(json.dumps(case.snapshot())), case.terms)
    case.advance(date(2026, 3, 16), POLICY)
    reloaded.advance(date(2026, 3, 16), POLICY)
    assert reloaded.snapshot() == case.snapshot()
    assert any(isinstance(e, ChargesAccrued) for e in events)


def test_a_case_opened_before_the_plan_conventions_reads_as_actual_days():
    case = plain_case(terms=contract_loan())
    record = json.loads(case.terms.canonical_json())
    del record["payload"]["schedule_interest"], record["payload"]["plan_imported"]
    record["schema_version"] = 1
    opened = event_from_record(**record)
    assert isinstance(opened, CaseOpened) and opened.schema_version == CaseOpened.schema_version  # upcast to the current one
    assert (opened.schedule_interest, opened.plan_imported) == ("actual_days", False)

