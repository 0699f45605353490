"""Accrual on a case (DOMAIN.md §3): contract and penalty interest, compounding, late fees,
day counts, posting in fen with the residue carried, and the legal cap."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from states.caps import DEFAULT_LPR_TABLE, CapRegime
from states.case import CollectionCase
from states.events import ChargesAccrued
from states.money import DayCount, round_fen
from states.schedule import RepaymentMethod
from tests.unit.conftest import DAY, DUE, POLICY, D, loan, of_type, open_case, payment_cmd, plain_case, posted

PENALTY = "penalty_interest"
CONTRACT = "contract_interest"
COMPOUND = "compound_interest"
LATE_FEE = "late_fee"


# --- the DOMAIN §3 example ----------------------------------------------------------------


def test_overdue_principal_of_10000_at_18_percent_for_30_days_posts_225_penalty():
    case = open_case()  # 10,000.00 interest-first, one installment due 2024-03-01, ACT/360
    case.advance(DUE + timedelta(days=30), POLICY)  # 2024-03-31, a month-end review

    assert case.accrued_through == DUE + timedelta(days=30)
    assert case.dpd(case.accrued_through) == 30
    assert posted(case.log, PENALTY) == D("225.00")
    assert case.projection().penalty_interest == D("225.00")
    assert case.projection().overdue_principal == D("10000.00")


@pytest.mark.parametrize("dpd", [0, 1, 4, 29, 30, 31, 58])  # from DPD 59 the 24 % cap binds
def test_accrual_through_a_date_includes_that_day(dpd):
    """As of D, principal overdue since its due date carries DPD(D) days of penalty."""
    case = plain_case()
    view = case.view(DUE + timedelta(days=dpd))
    assert view.projection.dpd(view.as_of) == dpd
    assert view.projection.penalty_interest == round_fen(D("10000.00") * D("0.27") * dpd / 360)


def test_penalty_example_on_a_date_that_is_not_a_review_date():
    """Due 2024-03-05: due + 30 is no review date, yet the case valued or paid on it holds 225.00."""
    case = open_case(first_due_on=date(2024, 3, 5))
    as_of = date(2024, 4, 4)
    assert case.view(as_of).projection.penalty_interest == D("225.00")
    case.record_payment(payment_cmd(case, "1.00", as_of, "pay-1"), POLICY)
    assert posted(case.log, PENALTY) == D("225.00")


def test_act_365_penalty_for_30_days():
    case = open_case(day_count=DayCount.ACT_365)
    case.advance(DUE + timedelta(days=30), POLICY)
    # 10,000 x 27 % / 365 x 30 = 221.917... -> 221.92
    assert posted(case.log, PENALTY) == D("221.92")
    # contract interest for the 29 days to the due date also on ACT/365: 143.0137 -> 143.01
    assert posted(case.log, CONTRACT) == D("143.01")


def test_contract_interest_accrues_through_the_due_date_then_stops_on_overdue_principal():
    case = open_case()
    case.advance(DUE + timedelta(days=60), POLICY)
    # 29 days (2024-02-02 .. 2024-03-01) of 18 % on 10,000: 145.00, and nothing after
    assert posted(case.log, CONTRACT) == D("145.00")
    after_due = [e for e in of_type(case.log, ChargesAccrued) if e.accrued_from >= DUE]
    assert after_due
    for event in after_due:
        assert {s.component for s in event.segments} == {PENALTY, "cap"}
        (penalty,) = [s for s in event.segments if s.component == PENALTY]
        assert (penalty.base, penalty.annual_rate) == (D("10000.00"), D("0.27"))
        assert penalty.start == event.accrued_from + DAY and penalty.end == event.through


def test_penalty_replaces_contract_interest_on_the_overdue_installment_only():
    """Installment 1 unpaid: installment 2's contract interest is on the principal not yet due,
    which is exactly its scheduled interest; installment 1's principal earns only penalty."""
    terms = loan(principal="12000.00", term=2, method=RepaymentMethod.EQUAL_PRINCIPAL)
    first, second = terms.schedule
    case = open_case(terms=terms)
    case.advance(second.due_on, POLICY)  # 2024-04-01 is a review: installment 1 at DPD 31

    contract = [p for e in of_type(case.log, ChargesAccrued) for p in e.postings if p.component == CONTRACT]
    assert [(p.installment, p.computed) for p in contract] == [(1, first.interest), (2, second.interest)]
    days_overdue = (second.due_on - first.due_on).days
    assert posted(case.log, PENALTY) == round_fen(first.principal * D("0.27") * days_overdue / 360)


# --- compound interest and late fees ---------------------------------------------------------


def test_compound_interest_accrues_on_overdue_contract_interest_when_the_contract_allows():
    case = open_case(compound_interest=True)
    case.advance(DUE + timedelta(days=30), POLICY)
    # 145.00 overdue contract interest x 27 % / 360 x 30 = 3.2625 -> 3.26
    assert posted(case.log, COMPOUND) == D("3.26")
    assert posted(case.log, PENALTY) == D("225.00")


def test_no_compound_interest_when_the_contract_does_not_allow_it():
    case = open_case(compound_interest=False)
    case.advance(DUE + timedelta(days=30), POLICY)
    assert posted(case.log, COMPOUND) == D("0.00")
    assert case.projection().compound_interest == D("0.00")


def test_fixed_late_fee_is_charged_once_per_missed_installment():
    terms = loan("12000.00", "0.06", 3, RepaymentMethod.EQUAL_PRINCIPAL, late_fee="50.00")  # well under the cap
    case = open_case(terms=terms)
    case.advance(terms.schedule[1].due_on + timedelta(days=20), POLICY)  # two installments missed
    fees = [p for e in of_type(case.log, ChargesAccrued) for p in e.postings if p.component == LATE_FEE]
    assert [(p.installment, p.enforceable) for p in fees] == [(1, D("50.00")), (2, D("50.00"))]
    assert case.projection().late_fees == D("100.00")


def test_late_fee_rate_is_a_share_of_the_missed_installment():
    terms = loan("12000.00", "0.06", 3, RepaymentMethod.EQUAL_PRINCIPAL, late_fee_rate="0.01")
    first = terms.schedule[0]
    case = open_case(terms=terms)
    case.advance(first.due_on + DAY, POLICY)
    assert posted(case.log, LATE_FEE) == round_fen((first.principal + first.interest) * D("0.01"))


def test_what_fell_due_last_lies_above_the_cap_first():
    """At 18 % the contract interest leaves little room under the time-weighted 24 % cap on day
    one of default. The late fee fell due first (the morning the installment is missed), the day's
    penalty after it: the penalty is above the cap, the fee is trimmed to what is left."""
    terms = loan("12000.00", "0.18", 3, RepaymentMethod.EQUAL_PRINCIPAL, late_fee_rate="0.05")
    first = terms.schedule[0]
    case = open_case(terms=terms)
    case.advance(first.due_on + DAY, POLICY)
    (fee,) = [p for e in of_type(case.log, ChargesAccrued) for p in e.postings if p.component == LATE_FEE]
    assert fee.computed == round_fen((first.principal + first.interest) * D("0.05"))
    assert fee.unenforceable > 0 and fee.enforceable + fee.unenforceable == fee.computed
    assert posted(case.log, PENALTY, "unenforceable") == posted(case.log, PENALTY, "computed") == D("3.00")
    assert case.charged == of_type(case.log, ChargesAccrued)[-1].cap_limit  # charged up to the limit, no further


def test_no_late_fee_for_an_installment_paid_on_its_due_date():
    terms = loan(principal="12000.00", term=3, method=RepaymentMethod.EQUAL_PRINCIPAL, late_fee="50.00")
    first = terms.schedule[0]
    case = open_case(terms=terms)
    case.record_payment(payment_cmd(case, first.amount, first.due_on, "on-time"), POLICY)
    case.advance(first.due_on + timedelta(days=10), POLICY)
    assert posted(case.log, LATE_FEE) == D("0.00")
    assert case.stage.value == "current"


def test_late_fee_is_zero_by_default():
    case = open_case()
    case.advance(DUE + timedelta(days=40), POLICY)
    assert posted(case.log, LATE_FEE) == D("0.00")


# --- posting in fen with the residue carried ------------------------------------------------


def test_daily_postings_sum_to_the_rounded_exact_total():
    """A 0.01 payment every day makes the case post penalty daily, each posting in whole fen;
    the residue is carried, so their sum is the exact total rounded once."""
    principal, rate = D("12345.67"), D("0.1299")  # penalty 19.485 %: 6.6820... a day, under the cap
    case = open_case(principal=str(principal), rate=str(rate))
    days = 45
    for k in range(1, days + 1):
        case.record_payment(payment_cmd(case, "0.01", DUE + timedelta(days=k), f"p{k}"), POLICY)

    penalties = [p for e in of_type(case.log, ChargesAccrued) for p in e.postings if p.component == PENALTY]
    assert len(penalties) == days
    assert {p.computed for p in penalties} == {D("6.68"), D("6.69")}  # the residue moves between days
    exact = principal * rate * D("1.5") * days / 360
    assert posted(case.log, PENALTY, "computed") == round_fen(exact)
    assert posted(case.log, PENALTY) == round_fen(exact)  # under the cap: all enforceable

    jump = plain_case(principal=str(principal), rate=str(rate))
    assert jump.view(DUE + timedelta(days=days)).projection.penalty_interest == round_fen(exact)


def _replayable_case_history(terms, until: date, step: int | None, payments=()):
    """Advance a case to ``until``: in one call (step None) or every ``step`` days; payments interleaved."""
    case, opened = CollectionCase.open("case-1", terms, DEFAULT_LPR_TABLE)
    events = list(opened)
    payments = sorted(payments)
    day = terms.disbursed_on
    while day < until:
        day = min(until, day + timedelta(days=step)) if step else until
        while payments and payments[0][0] <= day:
            on, amount = payments.pop(0)
            events += case.advance(on - DAY, POLICY)
            events += case.record_payment(payment_cmd(case, amount, on, f"pay-{on}"), POLICY)
        events += case.advance(day, POLICY)
    return case, events


@pytest.mark.parametrize(
    "terms, until, payments",
    [
        # due dates anchored on the 31st: 2028-01-31, 2028-02-29, 2028-03-31 ... across the leap day
        (
            loan("24000.00", "0.2", 12, RepaymentMethod.EQUAL_INSTALLMENT, date(2027, 12, 31), date(2028, 1, 31)),
            date(2028, 9, 30),
            [(date(2028, 2, 29), "1500.00"), (date(2028, 4, 30), "700.55")],
        ),
        (
            loan("8000.00", "0.35", 6, RepaymentMethod.EQUAL_PRINCIPAL, date(2028, 1, 29), date(2028, 2, 29),
                 day_count=DayCount.ACT_365, compound_interest=True, late_fee="30.00"),
            date(2029, 3, 1),
            [(date(2028, 3, 1), "100.00")],
        ),
    ],
)
def test_advancing_day_by_day_equals_one_jump(terms, until, payments):
    daily, daily_events = _replayable_case_history(terms, until, 1, payments)
    jump, jump_events = _replayable_case_history(terms, until, None, payments)
    monthly, _ = _replayable_case_history(terms, until, 31, payments)

    assert daily.projection() == jump.projection() == monthly.projection()
    assert daily.snapshot() == jump.snapshot() == monthly.snapshot()
    assert [e.canonical_json() for e in daily_events] == [e.canonical_json() for e in jump_events]
    month_ends = {e.through for e in of_type(jump_events, ChargesAccrued)}
    assert date(2028, 2, 29) in month_ends and date(2028, 3, 31) in month_ends


def test_a_case_can_be_valued_at_any_date_without_posting():
    case = open_case()
    before = case.snapshot()
    view = case.view(DUE + timedelta(days=10))
    assert view.projection.penalty_interest == D("75.00")
    assert case.snapshot() == before  # valuing changes nothing


def test_contract_interest_accrued_but_not_yet_due_is_shown_in_the_view():
    case = plain_case(principal="12000.00", term=3, method=RepaymentMethod.EQUAL_PRINCIPAL)
    view = case.view(date(2024, 2, 11))  # 10 days after disbursement: 12,000 x 18 % / 360 x 10
    assert view.contract_interest_accrued == D("60.00")
    assert view.projection.contract_interest_due == D("0.00")


# --- the legal cap -----------------------------------------------------------------------------


def _assert_within_cap(events):
    for event in of_type(events, ChargesAccrued):
        charged = event.charged_before + sum((p.enforceable for p in event.postings), D("0"))
        charged += sum((lot.amount for lot in event.released), D("0"))
        assert charged <= event.cap_limit, event
        for p in event.postings:
            assert p.enforceable + p.unenforceable == p.computed


def test_licensed_cap_of_24_percent_bounds_penalty_interest():
    """20 % contract: the penalty rate 30 % lies above 24 %, so the cap binds ~19 days after due."""
    case = open_case(rate="0.20")
    case.advance(DUE + timedelta(days=120), POLICY)
    _assert_within_cap(case.log)
    assert case.cap_rate == D("0.24")
    days = (case.accrued_through - case.terms.disbursed_on).days
    limit = (D("10000.00") * D("0.24") * days / 360).quantize(D("0.01"), rounding="ROUND_DOWN")
    charged = posted(case.log, CONTRACT) + posted(case.log, PENALTY)
    assert charged == limit == case.charged
    unenforceable = posted(case.log, PENALTY, "unenforceable")
    assert unenforceable > 0
    assert case.projection().unenforceable == unenforceable
    days_overdue = case.dpd(case.accrued_through)
    assert posted(case.log, PENALTY, "computed") == round_fen(D("10000.00") * D("0.30") * days_overdue / 360)


def test_under_the_cap_nothing_is_unenforceable():
    case = open_case(rate="0.12")  # penalty 18 % < 24 %
    case.advance(DUE + timedelta(days=200), POLICY)
    _assert_within_cap(case.log)
    assert case.projection().unenforceable == D("0.00")


def test_private_lending_cap_trims_contract_interest_itself():
    """Private regime, contract dated 2025-06-01: 4 x LPR 3.00 % = 12 % cap on an 18 % loan."""
    terms = loan(
        rate="0.18",
        disbursed_on=date(2025, 6, 1),
        first_due_on=date(2025, 7, 1),
        cap_regime=CapRegime.PRIVATE,
        contract_date=date(2025, 6, 1),
    )
    case = open_case(terms=terms)
    assert case.cap_rate == D("0.12")
    case.advance(date(2025, 7, 1), POLICY)  # accrued to the due date by the first review's cut

    case.advance(date(2025, 7, 2), POLICY)
    (posting,) = [p for e in of_type(case.log, ChargesAccrued) for p in e.postings if p.component == CONTRACT]
    # 30 days: 18 % gives 150.00; 12 % allows 100.00; the 50.00 above is recorded, not charged
    assert (posting.computed, posting.enforceable, posting.unenforceable) == (D("150.00"), D("100.00"), D("50.00"))
    # the next day's posting (07-02) lets 3.33 of it through: the limit grew by a day of 12 %
    (release,) = [lot for e in of_type(case.log, ChargesAccrued) for lot in e.released]
    assert (release.component, release.installment, release.amount) == (CONTRACT, 1, D("3.33"))
    assert case.installments[0].interest_due == D("103.33")
    _assert_within_cap(case.log)

    # paying what is enforceable settles the case: what is still above the cap (46.67 of contract
    # interest and the 7.50 of 07-02's penalty, which fell due after it) is never collected
    payoff = case.view(date(2025, 7, 2)).projection.total_due
    events = case.record_payment(payment_cmd(case, payoff, date(2025, 7, 2), "payoff"), POLICY)
    assert case.stage.value == "settled"
    assert case.unenforceable == {CONTRACT: D("46.67"), PENALTY: D("7.50")}
    assert all(line.component != CONTRACT or line.amount <= D("103.33") for e in events for line in getattr(e, "lines", ()))


def test_litigation_costs_are_outside_the_cap():
    case = open_case()
    case.advance(DUE + timedelta(days=200), POLICY)
    assert case.stage.value == "litigation"
    assert case.costs_due > 0
    _assert_within_cap(case.log)
    assert case.charged == posted(case.log, CONTRACT) + posted(case.log, PENALTY)
