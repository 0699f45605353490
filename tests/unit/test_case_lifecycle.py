"""The case lifecycle (DOMAIN.md §2) and contact conduct (§6): stages at their exact thresholds,
promises to pay, pauses, placements, litigation, write-off, cure and settlement."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from states.case import CollectionCase, DomainError
from states.commands import EnterJudgment, RecordExecution
from states.parse import InputError
from states.court_fees import litigation_costs
from states.events import (
    CaseResumed,
    CaseWrittenOff,
    ContactRecorded,
    ContactRefused,
    LawsuitFiled,
    PlacedWithAgency,
    PromiseBroken,
    PromiseKept,
    RecalledFromAgency,
    StageChanged,
)
from states.lifecycle import (
    MACHINE,
    TRANSITIONS,
    TRIGGERS,
    InvalidTransition,
    Stage,
    StageFacts,
    decide,
)
from states.schedule import RepaymentMethod
from tests.unit.conftest import (
    DUE,
    POLICY,
    D,
    contact_cmd,
    loan,
    of_type,
    open_case,
    pause_cmd,
    payment_cmd,
    plain_case,
    promise_cmd,
    resume_cmd,
    stage_path,
    write_off_cmd,
)

S = Stage


def dpd_day(dpd: int) -> date:
    return DUE + timedelta(days=dpd)


def stage_at(dpd: int, **loan_kw) -> Stage:
    case = plain_case(**loan_kw)
    case.advance(dpd_day(dpd), POLICY)
    return case.stage


def twelve_month_case():
    terms = loan("12000.00", "0.18", 12, RepaymentMethod.EQUAL_INSTALLMENT)
    return open_case(terms=terms), terms


# --- the transition table and the shared machine -------------------------------------------


def test_transition_table_is_the_escalation_policy_of_domain_section_2():
    edges = {(trigger, src, dst) for trigger, sources, dst, _g in TRANSITIONS for src in (sources if isinstance(sources, tuple) else (sources,))}
    assert edges == {
        ("fall_overdue", S.CURRENT, S.OVERDUE),
        ("escalate", S.OVERDUE, S.PHONE),
        ("escalate", S.PHONE, S.VISIT),
        ("escalate", S.VISIT, S.OUTSOURCED),
        ("escalate", S.OUTSOURCED, S.LITIGATION),
        *{("file_lawsuit", s, S.LITIGATION) for s in (S.OVERDUE, S.PHONE, S.VISIT, S.OUTSOURCED)},  # an operator
        *{("cure", s, S.CURRENT) for s in (S.OVERDUE, S.PHONE, S.VISIT, S.OUTSOURCED)},
        *{("settle", s, S.SETTLED) for s in (S.CURRENT, S.OVERDUE, S.PHONE, S.VISIT, S.OUTSOURCED, S.LITIGATION)},
        ("write_off", S.OUTSOURCED, S.WRITTEN_OFF),
        ("write_off", S.LITIGATION, S.WRITTEN_OFF),
    }


def test_one_shared_machine_with_no_models_and_no_auto_transitions():
    assert MACHINE.models == []
    assert set(MACHINE.events) == set(TRIGGERS)  # no to_<stage> shortcuts
    assert {s.name for s in Stage} == set(MACHINE.states)


def test_invalid_trigger_names_case_stage_and_trigger():
    facts = StageFacts(0, False, False, False, False, D(0), D(0), D(0), D(0))
    with pytest.raises(InvalidTransition) as err:
        decide("case-9", S.PHONE, "write_off", facts, POLICY)
    message = str(err.value)
    assert "case-9" in message and "'phone'" in message and "'write_off'" in message
    assert (err.value.case_id, err.value.stage, err.value.trigger) == ("case-9", S.PHONE, "write_off")
    with pytest.raises(InvalidTransition, match="cannot 'fly'"):
        decide("case-9", S.PHONE, "fly", facts, POLICY)
    with pytest.raises(InvalidTransition):
        decide("case-9", S.LITIGATION, "cure", facts, POLICY)  # no cure out of litigation
    with pytest.raises(InvalidTransition):
        decide("case-9", S.SETTLED, "escalate", facts, POLICY)


def test_operator_write_off_of_a_case_in_phone_is_an_invalid_transition():
    case = open_case()
    case.advance(dpd_day(10), POLICY)
    with pytest.raises(InvalidTransition) as err:
        case.write_off(write_off_cmd(case, "borrower deceased", dpd_day(10), operator="op-7"), POLICY)
    assert "case-1" in str(err.value) and "phone" in str(err.value) and "write_off" in str(err.value)


def test_replaying_a_stage_change_that_is_not_in_the_table_is_refused():
    case = open_case()
    forged = StageChanged(
        case_id="case-1", seq=2, business_date=DUE, from_stage="current", to_stage="litigation",
        trigger="escalate", reason="forged", dpd=0,
    )
    with pytest.raises(DomainError, match="not in the transition table"):
        CollectionCase.replay([*case.log, forged])


# --- stages at their exact thresholds ------------------------------------------------------------


def test_case_is_current_on_its_due_date_and_overdue_the_next_day():
    assert stage_at(0) is S.CURRENT
    assert stage_at(1) is S.OVERDUE


@pytest.mark.parametrize(
    "dpd, stage",
    [(3, S.OVERDUE), (4, S.PHONE), (30, S.PHONE), (31, S.VISIT), (90, S.VISIT), (91, S.OUTSOURCED), (180, S.OUTSOURCED)],
)
def test_stage_at_each_threshold(dpd, stage):
    assert stage_at(dpd) is stage


def test_every_stage_change_happens_on_its_threshold_day():
    case = open_case()
    case.advance(dpd_day(200), POLICY)
    assert stage_path(case.log) == [
        (dpd_day(1), "overdue", 1),
        (dpd_day(4), "phone", 4),
        (dpd_day(31), "visit", 31),
        (dpd_day(91), "outsourced", 91),
        (dpd_day(181), "litigation", 181),
    ]


def test_outsourcing_places_the_case_with_an_agency_for_90_days():
    case = open_case()
    case.advance(dpd_day(91), POLICY)
    (placed,) = of_type(case.log, PlacedWithAgency)
    assert placed.business_date == dpd_day(91)
    assert placed.until == dpd_day(91) + timedelta(days=90)
    assert placed.commission_rate == D("0.15")  # M4
    assert case.agency_id == placed.agency_id


def test_placement_goes_to_one_of_the_agencies_given_to_advance():
    case = open_case()
    case.advance(dpd_day(91), POLICY, agencies=["AG-NORTH", "AG-SOUTH"])
    (placed,) = of_type(case.log, PlacedWithAgency)
    assert placed.agency_id in ("AG-NORTH", "AG-SOUTH")


def test_litigation_when_the_placement_ended_at_dpd_181_and_suing_pays():
    case = open_case()  # claim ~11,400 >= 5,000; 40 % of it exceeds the legal costs
    case.advance(dpd_day(180), POLICY)
    assert case.stage is S.OUTSOURCED and case.agency_id is not None
    case.advance(dpd_day(181), POLICY)
    assert case.stage is S.LITIGATION

    (recalled,) = of_type(case.log, RecalledFromAgency)
    (lawsuit,) = of_type(case.log, LawsuitFiled)
    assert recalled.business_date == lawsuit.business_date == dpd_day(181)
    costs = litigation_costs(lawsuit.claim)
    assert [(p.rule, p.enforceable) for p in lawsuit.costs] == [
        ("acceptance fee", costs.acceptance),
        ("preservation fee", costs.preservation),
        ("attorney fee", costs.attorney),
    ]
    assert case.projection().costs == costs.acceptance + costs.preservation + costs.attorney
    assert lawsuit.claim * POLICY.litigation_expected_recovery_rate > costs.total


def test_small_claim_is_never_litigated_and_is_written_off_at_dpd_361():
    case = open_case(principal="3000.00")
    case.advance(dpd_day(360), POLICY)
    assert case.stage is S.OUTSOURCED
    assert [p.business_date for p in of_type(case.log, PlacedWithAgency)] == [dpd_day(91), dpd_day(181), dpd_day(271)]
    assert of_type(case.log, LawsuitFiled) == []

    case.advance(dpd_day(361), POLICY)
    assert case.stage is S.WRITTEN_OFF
    (written_off,) = of_type(case.log, CaseWrittenOff)
    assert written_off.business_date == dpd_day(361)
    assert written_off.amount == case.total_owing()
    assert case.next_review_on is None


def _facts(**overrides) -> StageFacts:
    base = dict(
        dpd=181, promise_holds=False, paused=False, placement_active=False, placement_ended=True,
        claim=D("20000"), expected_legal_cost=litigation_costs("20000").total, overdue_total=D("20000"),
        total_owing=D("20000"),
    )
    return StageFacts(**{**base, **overrides})


@pytest.mark.parametrize(
    "overrides, litigated",
    [
        ({}, True),
        ({"dpd": 180}, False),
        ({"placement_ended": False, "placement_active": True}, False),
        ({"claim": D("4999.99"), "expected_legal_cost": D("0")}, False),
        ({"claim": D("5000.00"), "expected_legal_cost": D("1999.99")}, True),
        ({"claim": D("5000.00"), "expected_legal_cost": D("2000.00")}, False),  # recovery must exceed cost
        ({"claim": D("5000.00"), "expected_legal_cost": litigation_costs("5000").total}, False),
        ({"promise_holds": True}, False),
        ({"paused": True}, False),
    ],
)
def test_litigation_guard(overrides, litigated):
    target = decide("c", S.OUTSOURCED, "escalate", _facts(**overrides), POLICY)
    assert target == (S.LITIGATION if litigated else None)


def test_write_off_guard_at_dpd_361_only_when_litigation_is_not_worth_it():
    small = dict(claim=D("3000"), total_owing=D("3000"), expected_legal_cost=litigation_costs("3000").total)
    assert decide("c", S.OUTSOURCED, "write_off", _facts(dpd=360, **small), POLICY) is None
    assert decide("c", S.OUTSOURCED, "write_off", _facts(dpd=361, **small), POLICY) is S.WRITTEN_OFF
    assert decide("c", S.OUTSOURCED, "write_off", _facts(dpd=361), POLICY) is None  # worth suing instead
    # from litigation: by an operator, once execution ended without recovery
    assert decide("c", S.LITIGATION, "write_off", _facts(dpd=10, by_operator=True, execution_failed=True), POLICY) is S.WRITTEN_OFF
    assert decide("c", S.LITIGATION, "write_off", _facts(dpd=10, by_operator=True), POLICY) is None
    assert decide("c", S.LITIGATION, "write_off", _facts(dpd=400, execution_failed=True, **small), POLICY) is None


def test_operator_writes_off_a_case_in_litigation():
    case = open_case()
    case.advance(dpd_day(200), POLICY)
    assert case.stage is S.LITIGATION
    case.enter_judgment(EnterJudgment(case=case.case_id, operator="op-7", amount="10000", deadline=dpd_day(201), entered_on=dpd_day(200)), POLICY)
    case.record_execution(RecordExecution(case=case.case_id, operator="op-7", outcome="no_assets", recorded_on=dpd_day(210)), POLICY)
    events = case.write_off(write_off_cmd(case, "execution ended without recovery", dpd_day(210), operator="op-7"), POLICY)

    (written_off,) = of_type(events, CaseWrittenOff)
    (changed,) = of_type(events, StageChanged)
    assert (changed.from_stage, changed.to_stage, changed.actor) == ("litigation", "written_off", "op-7")
    assert written_off.amount == case.total_owing() and written_off.actor == "op-7"
    assert case.stage is S.WRITTEN_OFF and case.next_review_on is None
    assert case.advance(dpd_day(400), POLICY) == []  # nothing accrues after write-off
    owing = case.total_owing()
    recovered = case.record_payment(payment_cmd(case, "100", dpd_day(220), "late"), POLICY)  # a recovery
    assert [type(e).__name__ for e in recovered] == ["PaymentReceived"] and case.total_owing() == owing - 100
    assert case.stage is S.WRITTEN_OFF
    with pytest.raises(DomainError, match="written_off"):
        case.write_off(write_off_cmd(case, "again", dpd_day(220), operator="op-7"), POLICY)


def test_operator_write_off_from_outsourced_recalls_the_agency():
    case = open_case()
    case.advance(dpd_day(120), POLICY)
    events = case.write_off(write_off_cmd(case, "borrower emigrated", dpd_day(120), operator="op-3"), POLICY)
    # the month's credit-report record follows the close (states.credit)
    assert [type(e).__name__ for e in events][-4:] == ["RecalledFromAgency", "CaseWrittenOff", "StageChanged", "MonthEndReported"]
    assert case.agency_id is None


# --- promises to pay -------------------------------------------------------------------------------


def test_promise_to_pay_holds_phone_to_visit_until_its_date():
    case = open_case()
    case.advance(dpd_day(25), POLICY)
    case.make_promise(promise_cmd(case, "500.00", dpd_day(35), dpd_day(25), operator="op-1"), POLICY)
    case.advance(dpd_day(35), POLICY)
    assert case.stage is S.PHONE  # DPD 35 >= 31, but the promise holds


def test_broken_promise_escalates_next_day():
    case = open_case()
    case.advance(dpd_day(25), POLICY)
    case.make_promise(promise_cmd(case, "500.00", dpd_day(35), dpd_day(25), operator="op-1"), POLICY)
    case.record_payment(payment_cmd(case, "499.99", dpd_day(35), "short"), POLICY)  # not in full
    case.advance(dpd_day(36), POLICY)

    (broken,) = of_type(case.log, PromiseBroken)
    assert (broken.business_date, broken.paid, broken.broken_in_a_row) == (dpd_day(36), D("499.99"), 1)
    assert stage_path(case.log)[-1] == (dpd_day(36), "visit", 36)


def test_promise_paid_the_day_after_its_date_is_broken():
    case = open_case()
    case.advance(dpd_day(25), POLICY)
    case.make_promise(promise_cmd(case, "500.00", dpd_day(35), dpd_day(25), operator="op-1"), POLICY)
    case.advance(dpd_day(35), POLICY)
    case.record_payment(payment_cmd(case, "500.00", dpd_day(36), "late"), POLICY)  # before the close of day 36
    assert of_type(case.log, PromiseKept) == []
    (broken,) = of_type(case.log, PromiseBroken)
    assert broken.paid == D("0.00")
    case.advance(dpd_day(36), POLICY)
    assert case.stage is S.VISIT


def test_kept_promise_ends_the_hold_and_resets_the_broken_count():
    case = open_case()
    case.advance(dpd_day(20), POLICY)
    case.make_promise(promise_cmd(case, "100.00", dpd_day(22), dpd_day(20), operator="op-1"), POLICY)
    case.advance(dpd_day(23), POLICY)  # broken
    assert case.broken_in_a_row == 1
    case.make_promise(promise_cmd(case, "300.00", dpd_day(33), dpd_day(23), operator="op-1"), POLICY)
    events = case.record_payment(payment_cmd(case, "300.00", dpd_day(30), "kept"), POLICY)
    (kept,) = of_type(events, PromiseKept)
    assert (kept.promised_on, kept.paid) == (dpd_day(33), D("300.00"))
    assert case.broken_in_a_row == 0 and case.promise is None
    case.advance(dpd_day(31), POLICY)
    assert case.stage is S.VISIT  # nothing holds escalation any more


def test_after_two_broken_promises_in_a_row_the_next_promise_holds_nothing():
    case = open_case()
    case.advance(dpd_day(10), POLICY)
    for made, due in ((10, 12), (13, 15)):
        case.make_promise(promise_cmd(case, "100.00", dpd_day(due), dpd_day(made), operator="op-1"), POLICY)
        case.advance(dpd_day(due + 1), POLICY)
    assert [b.broken_in_a_row for b in of_type(case.log, PromiseBroken)] == [1, 2]
    (made,) = case.make_promise(promise_cmd(case, "100.00", dpd_day(38), dpd_day(26), operator="op-1"), POLICY)
    assert made.holds_escalation is False
    case.advance(dpd_day(31), POLICY)
    assert case.stage is S.VISIT


def test_promise_more_than_14_days_ahead_is_refused():
    case = open_case()
    case.advance(dpd_day(10), POLICY)
    with pytest.raises(DomainError, match="at most 14 days ahead"):
        case.make_promise(promise_cmd(case, "100.00", dpd_day(25), dpd_day(10), operator="op-1"), POLICY)
    case.make_promise(promise_cmd(case, "100.00", dpd_day(24), dpd_day(10), operator="op-1"), POLICY)


def test_promise_holds_visit_to_outsourced():
    case = open_case()
    case.advance(dpd_day(85), POLICY)
    case.make_promise(promise_cmd(case, "100.00", dpd_day(95), dpd_day(85), operator="op-1"), POLICY)
    case.advance(dpd_day(95), POLICY)
    assert case.stage is S.VISIT
    case.advance(dpd_day(96), POLICY)
    assert case.stage is S.OUTSOURCED


# --- pauses ------------------------------------------------------------------------------------------


def test_pause_suspends_escalation_not_accrual():
    case = open_case()
    case.advance(dpd_day(20), POLICY)
    case.pause(pause_cmd(case, "hardship", dpd_day(45), dpd_day(20), operator="op-2"), POLICY)
    case.advance(dpd_day(44), POLICY)
    assert case.stage is S.PHONE
    assert case.view(dpd_day(44)).projection.penalty_interest == D("330.00")  # 44 days of 7.50

    case.advance(dpd_day(45), POLICY)
    (resumed,) = of_type(case.log, CaseResumed)
    assert resumed.business_date == dpd_day(45)
    assert stage_path(case.log)[-1] == (dpd_day(45), "visit", 45)


def test_lifting_a_pause_lets_the_case_escalate_at_the_next_review():
    case = open_case()
    case.advance(dpd_day(20), POLICY)
    case.pause(pause_cmd(case, "dispute", dpd_day(50), dpd_day(20), operator="op-2"), POLICY)
    case.advance(dpd_day(35), POLICY)
    case.resume(resume_cmd(case, dpd_day(35), operator="op-2"))
    case.advance(dpd_day(36), POLICY)
    assert stage_path(case.log)[-1] == (dpd_day(36), "visit", 36)


def test_pause_needs_a_reason_and_a_bounded_end():
    case = open_case()
    with pytest.raises(InputError, match="reason: ' ' is not one of hardship, dispute, complaint"):
        case.pause(pause_cmd(case, " ", dpd_day(10), dpd_day(5)), POLICY)
    with pytest.raises(DomainError, match="at most 60 days"):
        case.pause(pause_cmd(case, "hardship", dpd_day(66), dpd_day(5)), POLICY)


# --- cure and settlement --------------------------------------------------------------------------


def test_paying_the_arrears_cures_back_to_current_and_recalls_the_agency():
    case, terms = twelve_month_case()
    day = terms.schedule[0].due_on + timedelta(days=100)
    case.advance(day, POLICY)
    assert case.stage is S.OUTSOURCED and case.agency_id is not None

    arrears = case.view(day).projection.total_due
    events = case.record_payment(payment_cmd(case, arrears, day, "cure"), POLICY)
    names = [type(e).__name__ for e in events]
    assert names[-4:] == ["PaymentReceived", "CommissionAccrued", "RecalledFromAgency", "StageChanged"]
    assert events[-3].commission == (events[-4].amount * events[-3].commission_rate).quantize(D("0.01"))
    assert events[-2].reason == "case cured"
    assert (events[-1].from_stage, events[-1].to_stage, events[-1].trigger) == ("outsourced", "current", "cure")
    assert case.stage is S.CURRENT and case.agency_id is None and case.dpd(day) == 0


def test_part_paying_the_arrears_does_not_cure():
    case, terms = twelve_month_case()
    day = terms.schedule[0].due_on + timedelta(days=40)
    case.advance(day, POLICY)
    arrears = case.view(day).projection.total_due
    case.record_payment(payment_cmd(case, arrears - D("0.01"), day, "almost"), POLICY)
    assert case.stage is S.VISIT


def test_paying_off_settles_the_case():
    case = open_case()
    case.advance(dpd_day(50), POLICY)
    owing = case.view(dpd_day(50)).projection.total_due
    events = case.record_payment(payment_cmd(case, owing, dpd_day(50), "payoff"), POLICY)
    (settled,) = of_type(events, StageChanged)  # followed by the month's credit-report record (states.credit)
    assert (settled.from_stage, settled.to_stage) == ("visit", "settled")
    assert case.stage is S.SETTLED and case.next_review_on is None and case.total_owing() == 0


def test_payoff_before_the_first_due_date_settles_from_current():
    case = open_case(principal="12000.00", term=3, method=RepaymentMethod.EQUAL_PRINCIPAL)
    day = date(2024, 2, 16)  # 15 days in: 12,000 x 18 % / 360 x 15 = 90.00 accrued
    case.record_payment(payment_cmd(case, "12090.00", day, "payoff"), POLICY)
    assert case.stage is S.SETTLED
    assert case.projection().overpayment == D("0.00")


# --- contact conduct (DOMAIN §6) -------------------------------------------------------------------


def at(hour: int, minute: int = 0, day: int = 10) -> datetime:
    d = dpd_day(day)
    return datetime(d.year, d.month, d.day, hour, minute)


def contact_case():
    case = open_case()
    case.advance(dpd_day(10), POLICY)
    return case


@pytest.mark.parametrize("hour, minute, refused", [(7, 59, True), (8, 0, False), (21, 59, False), (22, 0, True), (23, 30, True), (0, 0, True)])
def test_quiet_hours_are_refused_with_the_rule_named(hour, minute, refused):
    case = contact_case()
    (event,) = case.record_contact(contact_cmd(case, "call", "borrower", "connected", at(hour, minute), operator="op-1"))
    if refused:
        assert isinstance(event, ContactRefused)
        assert "22:00" in event.rule and "08:00" in event.rule
        assert event in case.log  # the refusal is itself recorded
    else:
        assert isinstance(event, ContactRecorded)


def test_at_most_three_connected_calls_a_day_across_lender_and_agencies():
    case = contact_case()
    actors = ["op-1", "agency-A", "agency-B", "op-1"]
    results = [case.record_contact(contact_cmd(case, "call", "borrower", "connected", at(9 + i), operator=a))[0] for i, a in enumerate(actors)]
    assert [type(r).__name__ for r in results] == ["ContactRecorded"] * 3 + ["ContactRefused"]
    assert "3 connected calls" in results[-1].rule
    # a new day, a new count
    (next_day,) = case.record_contact(contact_cmd(case, "call", "borrower", "connected", at(9, day=11), operator="op-1"))
    assert isinstance(next_day, ContactRecorded)


def test_at_most_six_unanswered_attempts_a_day_per_number():
    case = contact_case()
    results = [case.record_contact(contact_cmd(case, "call", "borrower", "no_answer", at(9, 5 * i), operator="op-1"))[0] for i in range(7)]
    assert [type(r).__name__ for r in results] == ["ContactRecorded"] * 6 + ["ContactRefused"]
    assert "6 unanswered" in results[-1].rule


def test_third_parties_only_after_three_failed_attempts_in_a_row():
    case = contact_case()
    (early,) = case.record_contact(contact_cmd(case, "call", "guarantor", "connected", at(9), operator="op-1"))
    assert isinstance(early, ContactRefused) and "third parties" in early.rule
    for minute in (10, 20):
        case.record_contact(contact_cmd(case, "call", "borrower", "no_answer", at(9, minute), operator="op-1"))
    assert isinstance(case.record_contact(contact_cmd(case, "call", "guarantor", "connected", at(10), operator="op-1"))[0], ContactRefused)
    case.record_contact(contact_cmd(case, "call", "borrower", "no_answer", at(10, 30), operator="op-1"))
    assert isinstance(case.record_contact(contact_cmd(case, "call", "guarantor", "connected", at(11), operator="op-1"))[0], ContactRecorded)
    # reaching the borrower again closes the door to third parties
    case.record_contact(contact_cmd(case, "call", "borrower", "connected", at(12), operator="op-1"))
    assert isinstance(case.record_contact(contact_cmd(case, "call", "co_borrower", "connected", at(13), operator="op-1"))[0], ContactRefused)


def test_third_parties_after_an_invalid_number():
    case = contact_case()
    case.record_contact(contact_cmd(case, "call", "borrower", "invalid_number", at(9), operator="op-1"))
    assert isinstance(case.record_contact(contact_cmd(case, "call", "guarantor", "connected", at(10), operator="op-1"))[0], ContactRecorded)


def test_field_visits_need_two_collectors():
    case = contact_case()
    (alone,) = case.record_contact(contact_cmd(case, "visit", "borrower", "connected", at(10), operator="op-1", collectors=1))
    assert isinstance(alone, ContactRefused) and "two collectors" in alone.rule
    (pair,) = case.record_contact(contact_cmd(case, "visit", "borrower", "connected", at(11), operator="op-1", collectors=2))
    assert isinstance(pair, ContactRecorded) and pair.collectors == 2


def test_unknown_contact_values_are_refused_with_the_accepted_ones():
    case = contact_case()
    with pytest.raises(InputError, match="channel: 'fax' is not one of call, sms, visit, letter"):
        case.record_contact(contact_cmd(case, "fax", "borrower", "connected", at(10), operator="op-1"))


def test_contacts_replay_to_the_same_counters():
    case = contact_case()
    case.record_contact(contact_cmd(case, "call", "borrower", "no_answer", at(9), operator="op-1"))
    case.record_contact(contact_cmd(case, "call", "borrower", "connected", at(22), operator="op-1"))  # refused
    case.record_contact(contact_cmd(case, "call", "borrower", "connected", at(10), operator="op-1"))
    assert CollectionCase.replay(case.log).snapshot() == case.snapshot()


def test_the_daily_limits_count_each_borrower_local_day_whatever_order_contacts_are_recorded_in():
    case = contact_case()
    calls = [at(9, day=10), at(10, day=10), at(11, day=10), at(9, day=11), at(12, day=10), at(13, day=10)]
    results = [case.record_contact(contact_cmd(case, "call", "borrower", "connected", t))[0] for t in calls]
    # three on day 10, one on day 11, then day 10 again: already at its limit
    assert [type(r).__name__ for r in results] == ["ContactRecorded"] * 4 + ["ContactRefused"] * 2
    replayed = CollectionCase.replay(case.log)
    assert replayed.contact == case.contact and CollectionCase.from_snapshot(case.snapshot(), case.terms).contact == case.contact


def test_a_contact_time_with_a_utc_offset_is_read_in_the_borrowers_time_zone():
    case = contact_case()
    d = dpd_day(10)
    utc_morning = datetime(d.year, d.month, d.day, 1, 30, tzinfo=timezone.utc)  # 09:30 in Shanghai, 07:30 in Urumqi
    (shanghai,) = case.record_contact(contact_cmd(case, "call", "borrower", "no_answer", utc_morning), "Asia/Shanghai")
    (urumqi,) = case.record_contact(contact_cmd(case, "call", "borrower", "no_answer", utc_morning), "Asia/Urumqi")
    assert isinstance(shanghai, ContactRecorded) and shanghai.contacted_at.endswith("T09:30")
    assert isinstance(urumqi, ContactRefused) and "22:00" in urumqi.rule and urumqi.contacted_at.endswith("T07:30")
