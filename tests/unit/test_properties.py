"""Property tests of the aggregate over random loans and random histories.

(a) money is conserved by every payment; (b) charges never exceed the cap limit;
(c) replaying the first k events gives the live state at version k, for every k;
(d) a snapshot restores the same case; (e) every stage change is an edge of the table;
(f) advancing in one call equals advancing day by day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from states.caps import DEFAULT_LPR_TABLE, CapRegime
from states.case import CollectionCase, DomainError
from states.events import ChargesAccrued, PaymentReceived, StageChanged
from states.lifecycle import Stage, edge_exists
from states.money import DayCount
from states.schedule import RepaymentMethod, ScheduleInterest
from states.snapshot import packed, unpacked
from tests.unit.conftest import POLICY, D, LoggedCase, TracedCase, loan, pause_cmd, payment_cmd, promise_cmd, stored

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def loans(draw):
    disbursed = date(2023, 1, 1) + timedelta(days=draw(st.integers(0, 1000)))
    return loan(
        principal=str(Decimal(draw(st.integers(100_00, 300_000_00))) / 100),
        rate=str(Decimal(draw(st.integers(0, 3600))) / 10000),
        term=draw(st.integers(1, 24)),
        method=draw(st.sampled_from(list(RepaymentMethod))),
        disbursed_on=disbursed,
        first_due_on=disbursed + timedelta(days=draw(st.integers(1, 62))),
        day_count=draw(st.sampled_from(list(DayCount))),
        compound_interest=draw(st.booleans()),
        late_fee=draw(st.sampled_from(["0", "0", "30.00"])),
        late_fee_rate=draw(st.sampled_from(["0", "0", "0.02"])),
        cap_regime=draw(st.sampled_from([CapRegime.LICENSED, CapRegime.PRIVATE])),
        schedule_interest=draw(st.sampled_from(list(ScheduleInterest))),  # the monthly plan and the day count
    )


@dataclass(frozen=True)
class Step:
    gap: int  # days after the previous step
    kind: str  # advance, pay, pay_all, promise, pause
    amount: Decimal = D("0")


steps = st.lists(
    st.builds(
        Step,
        gap=st.integers(0, 75),
        kind=st.sampled_from(["advance", "advance", "pay", "pay", "pay_all", "promise", "pause"]),
        amount=st.integers(1, 2_000_000).map(lambda fen: Decimal(fen) / 100),
    ),
    max_size=14,
)


def run(case: CollectionCase, terms, plan: list[Step], *, daily: bool = False) -> date:
    """Apply the plan; with ``daily`` the case is also advanced through every day before each step
    (a command on day D comes before the close of D, as it does in the one-call run)."""
    day = terms.disbursed_on
    for n, step in enumerate(plan):
        target = day + timedelta(days=step.gap)
        if daily:
            while day < target - timedelta(days=1):
                day += timedelta(days=1)
                case.advance(day, POLICY)
        day = target
        if case.stage is Stage.SETTLED:  # a written-off case still takes payments (recoveries)
            continue
        try:
            command(case, step, n, day)
        except DomainError:
            if not case.stage.is_closed:  # refused only because the catch-up closed the case
                raise
    end = day + timedelta(days=120)
    if daily:
        while day < end:
            day += timedelta(days=1)
            case.advance(day, POLICY)
    case.advance(end, POLICY)
    return end


def command(case: CollectionCase, step: Step, n: int, day: date) -> None:
    if step.kind == "advance":
        case.advance(day, POLICY)
    elif step.kind in ("pay", "pay_all"):
        amount = step.amount
        if step.kind == "pay_all":  # the payoff, as a payment on the day would meet it
            view = case.view(day, POLICY)
            p = view.projection
            amount = p.total_due + p.principal_outstanding - p.overdue_principal + view.contract_interest_accrued
            if amount == 0:  # a written-off case recovered in full owes nothing: there is no payoff to make
                return
        events = case.record_payment(payment_cmd(case, max(amount, D("0.01")), day, f"pay-{n}"), POLICY)
        if step.kind == "pay_all":  # the payoff the view quotes settles the case exactly (a written-off one: pays it all)
            assert case.stage.value == "settled" or (case.stage is Stage.WRITTEN_OFF and case.total_owing() == 0), events
            assert [e.overpayment for e in events if isinstance(e, PaymentReceived)] == [D("0.00")]
    elif step.kind == "promise":
        case.make_promise(promise_cmd(case, step.amount, day + timedelta(days=step.gap % 15), day, operator="op"), POLICY)
    elif step.kind == "pause":
        case.pause(pause_cmd(case, "hardship", day + timedelta(days=1 + step.gap % 60), day, operator="op"), POLICY)


def traced(terms, kind: type[TracedCase] = TracedCase) -> TracedCase:
    case, _ = kind.open("case-p", terms, DEFAULT_LPR_TABLE)
    return case


@SETTINGS
@given(terms=loans(), plan=steps)
def test_money_is_conserved_and_charges_stay_under_the_cap(terms, plan):
    case = traced(terms, LoggedCase)
    run(case, terms, plan)

    paid = D("0")
    charged = D("0")
    for event in case.log:
        if isinstance(event, PaymentReceived):  # (a)
            assert sum((line.amount for line in event.lines), D("0")) + event.overpayment == event.amount
            assert all(line.amount > 0 for line in event.lines) and event.overpayment >= 0
            paid += event.amount
        elif isinstance(event, ChargesAccrued):  # (b)
            assert event.charged_before == charged
            assert all(lot.amount > 0 for lot in event.released)
            charged += sum((lot.amount for lot in event.released), D("0"))
            for p in event.postings:
                assert p.enforceable >= 0 and p.unenforceable >= 0
                assert p.enforceable + p.unenforceable == p.computed
                charged += p.enforceable
            assert charged <= event.cap_limit
    assert case.total_paid == paid
    for inst in case.installments:
        assert min(inst.principal_unpaid, inst.interest_unpaid, inst.late_fee_unpaid) >= 0
    assert min(case.penalty_due, case.compound_due, case.costs_due) >= 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms=loans(), plan=steps, data=st.data())
def test_replay_and_snapshots_reproduce_the_live_case_at_every_version(terms, plan, data):
    case = traced(terms)
    run(case, terms, plan)
    events = stored(case.log)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))

    # (c) replay is a fold of apply: fold the stored events one by one and compare at every
    # version; and call replay(events[:k]) itself for a few k
    folded = CollectionCase(case.case_id)
    for k, (version, projection, snapshot) in enumerate(case.states, start=1):
        assert version == k
        folded.apply(events[k - 1])
        assert folded.projection() == projection
        assert folded.snapshot() == snapshot
        restored = CollectionCase.from_snapshot(json.loads(json.dumps(snapshot)), events[0])  # (d)
        assert restored.projection() == projection
        assert restored.snapshot() == snapshot
        stored_row = json.loads(json.dumps(packed(snapshot)))  # as the store keeps it (v11)
        assert unpacked(stored_row, case.case_id) == snapshot
        assert CollectionCase.from_snapshot(stored_row, events[0]).snapshot() == snapshot
    picks = data.draw(st.lists(st.integers(1, len(events)), min_size=1, max_size=4)) + [len(events)]
    for k in picks:
        _version, projection, snapshot = case.states[k - 1]
        replayed = CollectionCase.replay(events[:k])
        assert (replayed.projection(), replayed.snapshot()) == (projection, snapshot)

    # a restored case goes on exactly as the live one
    restored = CollectionCase.from_snapshot(case.snapshot(), events[0])
    later = case.accrued_through + timedelta(days=200)
    assert [e.canonical_json() for e in restored.advance(later, POLICY)] == [
        e.canonical_json() for e in case.advance(later, POLICY)
    ]


@SETTINGS
@given(terms=loans(), plan=steps)
def test_every_stage_change_is_an_edge_of_the_table(terms, plan):
    case = traced(terms, LoggedCase)
    run(case, terms, plan)
    stage = "current"
    for event in case.log:
        if isinstance(event, StageChanged):  # (e)
            assert event.from_stage == stage
            assert edge_exists(event.trigger, Stage(event.from_stage), Stage(event.to_stage)), event
            stage = event.to_stage
    assert stage == case.stage.value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms=loans(), plan=steps)
def test_advancing_in_one_call_equals_advancing_day_by_day(terms, plan):
    jump, _ = CollectionCase.open("case-f", terms, DEFAULT_LPR_TABLE)
    daily, _ = CollectionCase.open("case-f", terms, DEFAULT_LPR_TABLE)
    run(jump, terms, plan)
    run(daily, terms, plan, daily=True)  # (f)
    assert daily.projection() == jump.projection()
    assert daily.snapshot() == jump.snapshot()
