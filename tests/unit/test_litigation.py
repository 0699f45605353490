"""Litigation to execution (DOMAIN.md §2, §5): an operator's filing and its override, the judgment,
delayed-performance interest (0.0175 % a day, outside the cap, paid last), execution and its fee,
the write-off it allows; replay and snapshots reproduce every step."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from states.case import CollectionCase, DomainError
from states.commands import EnterJudgment, FileLawsuit, RecordExecution
from states.court_fees import delayed_performance_interest, execution_fee, litigation_costs
from states.events import (
    ChargesReversed,
    CaseWrittenOff,
    DelayedPerformanceInterestAccrued,
    ExecutionRecorded,
    LawsuitFiled,
    PaymentReceived,
    StageChanged,
    event_from_record,
)
from states.explain import explain, timeline_of
from states.lifecycle import Stage
from states.litigation import DELAYED_INTEREST, LitigationState, delayed_interest, after_judgment, not_worth_suing
from states.parse import InputError
from tests.unit.conftest import DUE, POLICY, D, of_type, open_case, payment_cmd, stored, write_off_cmd

S = Stage
OP = "op-lawyer"


def dpd_day(dpd: int) -> date:
    return DUE + timedelta(days=dpd)


def file_cmd(case, on, override=None) -> FileLawsuit:
    return FileLawsuit(case=case.case_id, operator=OP, filed_on=on, override=override)


def judgment_cmd(case, amount, deadline, on, **kw) -> EnterJudgment:
    return EnterJudgment(case=case.case_id, operator=OP, amount=amount, deadline=deadline, entered_on=on, **kw)


def execution_cmd(case, outcome, on) -> RecordExecution:
    return RecordExecution(case=case.case_id, operator=OP, outcome=outcome, recorded_on=on)


def in_litigation(**loan_kw):
    """The default case (10,000.00 due on DUE, 18 %) sued automatically at DPD 181."""
    case = open_case(**loan_kw)
    case.advance(dpd_day(181), POLICY)
    assert case.stage is S.LITIGATION
    return case


# --- the rule, pinned ---------------------------------------------------------------------------


def test_delayed_performance_interest_of_domain_section_5_is_525():
    # 100,000.00 unpaid for 30 days after the deadline -> 100,000 x 0.0175 % x 30 = 525.00
    deadline = date(2026, 3, 31)
    state = after_judgment(LitigationState(), D("100000.00"), deadline, date(2026, 3, 1))
    stretch = delayed_interest(state, date(2026, 3, 1), deadline + timedelta(days=30))
    assert (stretch.start, stretch.days, stretch.amount) == (deadline + timedelta(days=1), 30, D("525.00"))
    assert delayed_performance_interest(D("100000.00"), 30) == D("525.00")
    assert delayed_interest(state, date(2026, 3, 1), deadline) is None  # nothing until the day after


def test_worth_suing_names_the_reason_it_is_not():
    assert not_worth_suing(D("4999.99"), D("0"), POLICY) == "the claim 4999.99 is below the policy's minimum claim 5000"
    cost = litigation_costs("5000").total
    reason = not_worth_suing(D("5000.00"), cost, POLICY)
    assert reason is not None and "expected recovery 2000.00" in reason and str(cost) in reason
    assert not_worth_suing(D("20000"), litigation_costs("20000").total, POLICY) is None


# --- filing by an operator ------------------------------------------------------------------------


def test_operator_files_before_the_automatic_rule_and_the_fees_are_costs_paid_first():
    case = open_case()
    case.advance(dpd_day(100), POLICY)
    assert case.stage is S.OUTSOURCED and case.agency_id is not None
    events = case.file_lawsuit(file_cmd(case, dpd_day(100)), POLICY)

    (lawsuit,) = of_type(events, LawsuitFiled)
    (changed,) = of_type(events, StageChanged)
    assert (changed.from_stage, changed.to_stage, changed.trigger, changed.actor) == ("outsourced", "litigation", "file_lawsuit", OP)
    assert lawsuit.actor == OP and lawsuit.overridden == "" and case.agency_id is None
    fees = litigation_costs(lawsuit.claim)
    assert [(p.rule, p.enforceable) for p in lawsuit.costs] == [
        ("acceptance fee", fees.acceptance), ("preservation fee", fees.preservation), ("attorney fee", fees.attorney),
    ]
    paid = case.record_payment(payment_cmd(case, "100.00", dpd_day(101), "P-1"), POLICY)
    (payment,) = of_type(paid, PaymentReceived)
    assert [(line.component, line.amount) for line in payment.lines] == [("costs", D("100.00"))]  # Civil Code 561


def test_a_small_claim_is_refused_with_the_reason_unless_overridden_and_the_override_is_recorded():
    case = open_case(principal="3000.00")
    case.advance(dpd_day(100), POLICY)
    with pytest.raises(DomainError, match=r"lawsuit not filed: the claim .* is below the policy's minimum claim 5000"):
        case.file_lawsuit(file_cmd(case, dpd_day(100)), POLICY)
    assert case.stage is S.OUTSOURCED

    events = case.file_lawsuit(file_cmd(case, dpd_day(100), override="guarantor has assets"), POLICY)
    (lawsuit,) = of_type(events, LawsuitFiled)
    assert "below the policy's minimum claim" in lawsuit.overridden and lawsuit.override_reason == "guarantor has assets"
    assert case.stage is S.LITIGATION


def test_a_lawsuit_is_not_filed_twice_nor_from_current():
    case = in_litigation()
    with pytest.raises(DomainError, match="already filed"):
        case.file_lawsuit(file_cmd(case, dpd_day(181)), POLICY)
    fresh = open_case()
    with pytest.raises(DomainError, match="from a collection stage"):
        fresh.file_lawsuit(file_cmd(fresh, DUE), POLICY)


def test_lawsuit_filed_v1_is_upcast_with_nothing_overridden():
    case = in_litigation()
    (lawsuit,) = of_type(case.log, LawsuitFiled)
    record = {**lawsuit.envelope(), "schema_version": 1}
    record["payload"] = {k: v for k, v in record["payload"].items() if k not in ("overridden", "override_reason")}
    assert event_from_record(**record) == lawsuit


# --- judgment and delayed-performance interest ------------------------------------------------------


def test_judgment_debt_bears_delayed_interest_from_the_day_after_the_deadline_outside_the_cap():
    case = in_litigation()
    on, deadline = dpd_day(190), dpd_day(200)
    case.enter_judgment(judgment_cmd(case, "10000.00", deadline, on, court="Pudong court", case_number="(2024)沪0115民初1号"), POLICY)
    assert case.next_review_on <= deadline + timedelta(days=1)  # the case wakes for it

    thirty_days_on = deadline + timedelta(days=30)
    case.advance(thirty_days_on, POLICY)  # reviewed at the month end in between
    view, not_yet_posted = case.valuation(thirty_days_on, POLICY)
    delayed = of_type([*case.log, *not_yet_posted], DelayedPerformanceInterestAccrued)
    assert delayed[0].start == delayed[0].business_date == deadline + timedelta(days=1)  # woken that day
    assert sum(e.days for e in delayed) == 30
    # 10,000.00 x 0.0175 % x 30 = 52.50, whatever the review dates
    assert sum(p.enforceable for e in delayed for p in e.postings) == D("52.50")
    assert view.projection.delayed_interest == D("52.50")
    assert view.projection.total_due - CollectionCase.replay(case.log).view(thirty_days_on).projection.total_due == 0
    assert all(p.unenforceable == 0 for e in delayed for p in e.postings)
    lines = explain(delayed[0])
    assert "0.0175% a day" in lines[0].text() and lines[0].base == D("10000.00")


def test_payments_reduce_the_judgment_debt_and_pay_delayed_interest_last():
    case = in_litigation()
    deadline = dpd_day(200)
    case.enter_judgment(judgment_cmd(case, "10000.00", deadline, dpd_day(190)), POLICY)
    case.advance(deadline + timedelta(days=10), POLICY)
    events = case.record_payment(payment_cmd(case, "4000.00", deadline + timedelta(days=10), "P-1"), POLICY)
    (payment,) = of_type(events, PaymentReceived)
    assert DELAYED_INTEREST not in [line.component for line in payment.lines]  # other dues first
    assert case.litigation.unpaid_debt == D("6000.00")
    # 10 days on 10,000 (17.50), then 10 days on 6,000 (10.50), as of any date whatever was posted
    assert case.view(deadline + timedelta(days=20), POLICY).projection.delayed_interest == D("28.00")
    case.advance(deadline + timedelta(days=20), POLICY)

    payoff = case.view(deadline + timedelta(days=20)).payoff
    events = case.record_payment(payment_cmd(case, payoff, deadline + timedelta(days=20), "P-2"), POLICY)
    (payment,) = of_type(events, PaymentReceived)
    assert (payment.lines[-1].component, payment.lines[-1].amount) == (DELAYED_INTEREST, D("28.00"))
    assert case.stage is S.SETTLED


def test_a_judgment_needs_a_lawsuit_and_a_deadline_not_before_it():
    case = open_case()
    case.advance(dpd_day(100), POLICY)
    with pytest.raises(DomainError, match="no lawsuit is pending"):
        case.enter_judgment(judgment_cmd(case, "10000", dpd_day(120), dpd_day(100)), POLICY)
    case = in_litigation()
    with pytest.raises(InputError, match=rf"^deadline: {dpd_day(182)} is before the judgment date {dpd_day(190)}"):
        judgment_cmd(case, "10000", dpd_day(182), dpd_day(190))
    assert judgment_cmd(case, "10000", dpd_day(190), dpd_day(190)).deadline == dpd_day(190)  # the same day is a deadline


@pytest.mark.parametrize("entered_on, latest", [(date(2025, 3, 1), date(2026, 3, 1)), (date(2024, 2, 29), date(2025, 2, 28))])
def test_a_deadline_more_than_a_year_after_the_judgment_is_refused(entered_on, latest):
    case = in_litigation()
    assert judgment_cmd(case, "10000", latest, entered_on).deadline == latest
    with pytest.raises(InputError, match=rf"^deadline: {latest + timedelta(days=1)} is more than one year after the judgment date {entered_on}; .* {latest} at the latest$"):
        judgment_cmd(case, "10000", latest + timedelta(days=1), entered_on)
    with pytest.raises(InputError, match="amount"):
        judgment_cmd(case, "-5", dpd_day(200), dpd_day(190))


# --- execution and write-off -------------------------------------------------------------------------


def test_execution_posts_its_fee_and_no_assets_allows_the_write_off():
    case = in_litigation()
    deadline = dpd_day(200)
    with pytest.raises(DomainError, match="no judgment is entered"):
        case.write_off(write_off_cmd(case, "nothing to get", dpd_day(190), operator=OP), POLICY)
    case.enter_judgment(judgment_cmd(case, "10000.00", deadline, dpd_day(190)), POLICY)
    with pytest.raises(DomainError, match="execution follows the performance deadline"):
        case.record_execution(execution_cmd(case, "no_assets", deadline), POLICY)

    events = case.record_execution(execution_cmd(case, "no_assets", deadline + timedelta(days=30)), POLICY)
    (execution,) = of_type(events, ExecutionRecorded)
    assert execution_fee(D("10000.00")) == D("50.00")  # DOMAIN §5: <= 10,000 -> 50
    assert [(p.component, p.enforceable) for p in execution.costs] == [("costs", D("50.00"))]
    with pytest.raises(DomainError, match="already recorded"):
        case.record_execution(execution_cmd(case, "partial", deadline + timedelta(days=31)), POLICY)

    events = case.write_off(write_off_cmd(case, "execution ended without recovery", deadline + timedelta(days=31), operator=OP), POLICY)
    (written_off,) = of_type(events, CaseWrittenOff)
    assert case.stage is S.WRITTEN_OFF and written_off.amount == case.total_owing()


def test_a_case_in_litigation_is_not_written_off_after_a_recovered_execution():
    case = in_litigation()
    case.enter_judgment(judgment_cmd(case, "10000.00", dpd_day(200), dpd_day(190)), POLICY)
    case.record_execution(execution_cmd(case, "partial", dpd_day(230)), POLICY)
    with pytest.raises(DomainError, match="not written off: execution ended partial"):
        case.write_off(write_off_cmd(case, "give up", dpd_day(231), operator=OP), POLICY)
    assert case.stage is S.LITIGATION
    with pytest.raises(InputError, match="outcome"):
        execution_cmd(case, "lost", dpd_day(231))


# --- replay, snapshots, the timeline -----------------------------------------------------------------


def test_replay_and_snapshots_reproduce_litigation_at_every_version():
    case = in_litigation()
    deadline = dpd_day(200)
    case.enter_judgment(judgment_cmd(case, "10000.00", deadline, dpd_day(190)), POLICY)
    case.advance(deadline + timedelta(days=15), POLICY)
    case.record_payment(payment_cmd(case, "3000.00", deadline + timedelta(days=15), "P-1"), POLICY)
    case.record_execution(execution_cmd(case, "no_assets", deadline + timedelta(days=40)), POLICY)
    case.advance(deadline + timedelta(days=70), POLICY)

    history = stored(case.log)
    replayed = CollectionCase.replay(history)
    assert replayed.projection() == case.projection() and replayed.snapshot() == case.snapshot()
    for version, projection, snapshot in case.states:
        prefix = CollectionCase.replay(history[:version])
        assert prefix.projection() == projection, version
        assert CollectionCase.from_snapshot(snapshot, history[0]).projection() == projection, version
    rows = timeline_of(history)
    assert rows[-1].after == case.projection()
    assert any(r.type == "JudgmentEntered" and "performance deadline" in r.description for r in rows)


def test_a_version_6_snapshot_reads_with_no_judgment():
    case = open_case()  # sued by an operator from the phone stage: never placed, so v6 knew all of it
    case.advance(dpd_day(40), POLICY)
    case.file_lawsuit(file_cmd(case, dpd_day(40), override="the borrower is leaving the country"), POLICY)
    assert case.stage is S.LITIGATION and case.placements == 0
    snapshot = {k: v for k, v in case.snapshot().items() if k not in ("litigation", "placement")} | {"v": 6}
    restored = CollectionCase.from_snapshot(snapshot, case.terms)
    assert restored.litigation == LitigationState() and restored.projection() == case.projection()


def test_what_if_reruns_an_operators_lawsuit_judgment_and_execution_as_recorded():
    from states.whatif import rerun

    case = open_case()
    case.advance(dpd_day(100), POLICY)
    case.file_lawsuit(file_cmd(case, dpd_day(100)), POLICY)
    case.enter_judgment(judgment_cmd(case, "10000.00", dpd_day(120), dpd_day(110)), POLICY)
    case.record_execution(execution_cmd(case, "no_assets", dpd_day(150)), POLICY)
    case.write_off(write_off_cmd(case, "execution ended without recovery", dpd_day(150), operator=OP), POLICY)
    history = stored(case.log)
    made, refused = rerun(history, POLICY, dpd_day(200))
    assert refused == [] and [e.canonical_json() for e in made] == [e.canonical_json() for e in history]


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=60), st.booleans())
def test_delayed_interest_as_of_any_date_is_the_closed_form_whatever_was_posted_before(days_after, cut, reviewed):
    """Posted at the reviews (deadline + 1, month ends), at an execution's date or not at all before
    the date asked, the delayed-performance interest as of it is debt x 0.0175 % x days, rounded once."""
    case = in_litigation()
    deadline = dpd_day(200)
    case.enter_judgment(judgment_cmd(case, "12345.67", deadline, dpd_day(190)), POLICY)
    as_of = deadline + timedelta(days=days_after)
    if reviewed:
        case.advance(as_of - timedelta(days=1), POLICY)
    if 0 < cut <= days_after and deadline + timedelta(days=cut) >= case.accrued_through:
        case.record_execution(execution_cmd(case, "partial", deadline + timedelta(days=cut)), POLICY)  # accrues to its date
    expected = delayed_performance_interest(D("12345.67"), days_after)
    assert case.view(as_of, POLICY).projection.delayed_interest == expected


def test_a_late_loaded_payment_after_the_deadline_never_posts_delayed_interest_twice():
    """Delayed-performance interest lies outside the charges a value-dated payment reverses, so
    once it runs a late-loaded payment is applied as of the last accrual, and the interest of the
    days in between is posted once."""
    case = in_litigation()
    on, deadline = dpd_day(190), dpd_day(200)
    case.enter_judgment(judgment_cmd(case, "10000.00", deadline, on), POLICY)
    thirty_days_on = deadline + timedelta(days=30)
    case.advance(thirty_days_on, POLICY)
    accrued = case.accrued_through  # the last review's accrual (a month end)
    late = payment_cmd(case, "100.00", accrued - timedelta(days=3), "bank-late")
    events = case.record_payment(late, POLICY)
    assert not of_type(events, ChargesReversed)
    (payment,) = of_type(events, PaymentReceived)
    assert payment.business_date == accrued and payment.value_date is None
    delayed = of_type(case.log, DelayedPerformanceInterestAccrued)
    assert sum(e.days for e in delayed) == (accrued - deadline).days  # each day once
