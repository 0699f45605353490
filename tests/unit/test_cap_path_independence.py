"""The legal cap read path-independently (DOMAIN.md §3, docs/decisions.md "Legal cap").

As of every date D, charged(D) = min(accrued(D), limit(D)) and unenforceable(D) =
accrued(D) - charged(D), whatever days the case happened to be reviewed on: what the
cap held back is charged later when the limit grows (a release, oldest first).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from states.caps import DEFAULT_LPR_TABLE, CapRegime, cap_limit
from states.case import CollectionCase, DomainError
from states.events import ChargesAccrued
from states.money import ZERO
from states.schedule import RepaymentMethod, ScheduleInterest
from tests.unit.conftest import DAY, POLICY, D, LoggedCase, loan, of_type, open_case, payment_cmd, posted

LATE_FEE = "late_fee"
CONTRACT = "contract_interest"


@st.composite
def binding_loans(draw):
    """Loans whose charges press on the cap: high rates, late fees, compound interest, private caps."""
    disbursed = date(2025, 6, 1) + timedelta(days=draw(st.integers(0, 90)))
    return loan(
        principal=str(Decimal(draw(st.integers(500_00, 60_000_00))) / 100),
        rate=str(Decimal(draw(st.integers(600, 3600))) / 10000),
        term=draw(st.integers(1, 6)),
        method=draw(st.sampled_from(list(RepaymentMethod))),
        disbursed_on=disbursed,
        first_due_on=disbursed + timedelta(days=draw(st.integers(5, 40))),
        compound_interest=draw(st.booleans()),
        late_fee=draw(st.sampled_from(["0", "30.00", "300.00", "2000.00"])),
        late_fee_rate=draw(st.sampled_from(["0", "0.02", "0.10"])),
        cap_regime=draw(st.sampled_from([CapRegime.LICENSED, CapRegime.PRIVATE])),
        contract_date=disbursed,
        schedule_interest=draw(st.sampled_from(list(ScheduleInterest))),
    )


payments = st.lists(
    st.tuples(st.integers(1, 170), st.integers(1, 1_500_000).map(lambda fen: Decimal(fen) / 100)), max_size=4
)
extra_reviews = st.lists(st.integers(1, 175), max_size=12)


def followed(terms, paid: list[tuple[int, Decimal]], extra: list[int], end_after: int = 175) -> CollectionCase:
    """The case through ``end_after`` days: the payments on their days, and an extra review on each
    of ``extra`` (the review a promise, a resume or a visit report wakes the case for)."""
    case, _ = LoggedCase.open("case-x", terms, DEFAULT_LPR_TABLE)
    start = terms.disbursed_on
    plan = sorted([(d, 1, None) for d in extra] + [(d, 0, amount) for d, amount in paid], key=lambda x: (x[0], x[1]))
    for n, (offset, kind, amount) in enumerate(plan):
        day = start + timedelta(days=offset)
        if case.stage.is_closed or day < case.accrued_through:
            continue
        if kind == 0:
            try:
                case.record_payment(payment_cmd(case, amount, day, f"pay-{n}"), POLICY)
            except DomainError:
                assert case.stage.is_closed
        else:
            case._wake_by(day)
            case.advance(day, POLICY)
    end = start + timedelta(days=end_after)
    case.advance(end, POLICY)
    if case.reviewed_through < end:  # reviewed on the last day whatever the path: a stage moves only at a review
        case._wake_by(end)
        case.advance(end, POLICY)
    if not case.stage.is_closed:
        case._accrue(end)
    return case


def figures(case: CollectionCase) -> dict[str, object]:
    p = case.projection()
    return {
        "accrued_through": case.accrued_through,
        "stage": case.stage,
        "charged": case.charged,
        "unenforceable": p.unenforceable,
        "principal_outstanding": p.principal_outstanding,
        "total_owing": case.total_owing(),
        "total_paid": p.total_paid,
        "overpayment": p.overpayment,
        "late_fees_and_contract_interest": [(i.late_fee_due, i.interest_due) for i in case.installments],
        "penalty_and_compound": case.penalty_due + case.compound_due,
    }


def accrued(case: CollectionCase) -> Decimal:
    return sum((p.computed for e in of_type(case.log, ChargesAccrued) for p in e.postings), ZERO)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms=binding_loans(), paid=payments, extra=extra_reviews)
def test_any_split_of_the_same_days_into_reviews_gives_the_same_charges(terms, paid, extra):
    plain = followed(terms, paid, [])
    reviewed_more = followed(terms, paid, extra)
    assert figures(reviewed_more) == figures(plain)
    for case in (plain, reviewed_more):  # and the reading is min(accrued, limit) on the last day
        if not case.stage.is_closed:
            limit = cap_limit(case.cap_rate, case.principal_days["cap"], case.day_count)
            assert case.charged == min(accrued(case), limit)
            assert case.projection().unenforceable == accrued(case) - case.charged


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms=binding_loans(), paid=payments, extra=extra_reviews)
def test_a_case_reviewed_every_day_charges_what_one_reviewed_on_its_dates_does(terms, paid, extra):
    daily = followed(terms, paid, list(range(1, 176)))
    assert figures(daily) == figures(followed(terms, paid, extra))


def test_a_late_fee_cut_the_day_it_falls_due_is_charged_once_the_limit_grows():
    """10,000.00 at 12 % over 3 months with a 300.00 late fee. On the first missed day the limit
    (24 % over 30 days: 200.00) leaves 103.33 above the contract interest (96.67): the fee is
    charged 103.33, 196.67 of it is held back, and so is that day's penalty (it fell due after
    the fee). Interest below 24 % leaves room every day after: the fee is charged bit by bit."""
    terms = loan("10000.00", "0.12", 3, RepaymentMethod.EQUAL_PRINCIPAL, late_fee="300.00")
    first, second = terms.schedule[0], terms.schedule[1]
    case = open_case(terms=terms)
    case.advance(first.due_on + DAY, POLICY)
    (fee,) = [p for e in of_type(case.log, ChargesAccrued) for p in e.postings if p.component == LATE_FEE]
    assert (fee.computed, fee.enforceable, fee.unenforceable) == (D("300.00"), D("103.33"), D("196.67"))
    assert case.charged == D("200.00") and case.installments[0].late_fee_due == D("103.33")

    case.advance(second.due_on, POLICY)  # reviews on 03-05, 03-31 and 04-01 (the next due date)
    released = [lot for e in of_type(case.log, ChargesAccrued) for lot in e.released]
    fee_lots = [lot for lot in released if lot.component == LATE_FEE]
    assert released[: len(fee_lots)] == fee_lots  # the oldest held-back charge goes first
    assert [lot.amount for lot in fee_lots] == [D("20.00"), D("173.33"), D("3.34")]
    assert case.installments[0].late_fee_due == D("300.00")
    assert posted(case.log, LATE_FEE) == D("300.00") and posted(case.log, LATE_FEE, "unenforceable") == D("0.00")
    assert case.charged == D("400.00")  # the limit on 04-01: 10,000 x 24 % x 60 / 360

    # the same days seen once: the fee is charged the same, and so is everything else
    once = open_case(terms=terms)
    once.advance(first.due_on, POLICY)
    once._accrue(first.due_on + DAY)
    once._accrue(second.due_on)
    assert (once.charged, once.unenforceable) == (case.charged, case.unenforceable)


def test_contract_interest_held_back_is_charged_to_its_own_installment():
    """Private cap 12 % on an 18 % loan: the contract interest above it waits, and the grown limit
    charges it to the installment it belongs to (so that installment is owed it again)."""
    terms = loan(rate="0.18", disbursed_on=date(2025, 6, 1), first_due_on=date(2025, 7, 1),
                 cap_regime=CapRegime.PRIVATE, contract_date=date(2025, 6, 1), term=2)
    case = open_case(terms=terms)
    case._accrue(date(2025, 7, 1))  # the due date: its contract interest falls due
    assert case.unenforceable == {CONTRACT: D("50.00")}  # 30 days on 10,000: 150.00 at 18 %, 100.00 allowed
    case.record_payment(payment_cmd(case, D("100.00"), date(2025, 7, 1), "p1"), POLICY)
    assert case.installments[0].unpaid == ZERO
    case._accrue(date(2025, 7, 20))  # 19 more days of a 12 % limit on 10,000 make 63.33 of room
    lots = [lot for e in of_type(case.log, ChargesAccrued) for lot in e.released]
    assert [(lot.component, lot.installment) for lot in lots] == [(CONTRACT, 1)]
    assert lots[0].amount == D("50.00") and case.unenforceable == {}
    assert (case.installments[0].interest_due, case.installments[0].unpaid) == (D("150.00"), D("50.00"))


def test_replay_explains_a_release_under_the_cap():
    from states.explain import describe, explain

    terms = loan("10000.00", "0.12", 3, RepaymentMethod.EQUAL_PRINCIPAL, late_fee="300.00")
    case = open_case(terms=terms)
    case.advance(terms.schedule[0].due_on + timedelta(days=4), POLICY)  # 03-05: 20.00 of the fee released
    event = of_type(case.log, ChargesAccrued)[-1]
    assert "20.00 released under the cap: room grew to 220.00" in describe(event)
    (line,) = [line for line in explain(event) if line.kind == "release"]
    assert line.text().startswith("late_fee #1: 20.00 released under the cap: room grew to 220.00")
    replayed = CollectionCase.replay(case.log)
    assert replayed.snapshot() == case.snapshot() and replayed.unenforced == case.unenforced
