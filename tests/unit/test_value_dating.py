"""Value-dated payments (issue #11): a payment dated before the case's last accrual is applied at
its date; the charges posted after it are reversed by ChargesReversed and posted again."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from states.caps import DEFAULT_LPR_TABLE
from states.case import CollectionCase, DomainError
from states.events import ChargesAccrued, ChargesReversed, PaymentReceived
from states.explain import describe, timeline_of
from states.schedule import DayCount, RepaymentMethod, ScheduleInterest
from states.value_dating import COST_EVENTS
from tests.unit.conftest import DUE, POLICY, D, LoggedCase, loan, of_type, open_case, payment_cmd, stored
from tests.unit.test_cap_path_independence import binding_loans


def stored_accruals(case: CollectionCase, paid_on: date) -> list[ChargesAccrued]:
    """What the store hands the case: the accruals ``accruals_reversed_by`` names."""
    after = case.accruals_reversed_by(paid_on)
    if after is None:
        return []
    seq, day = after
    kinds = (ChargesAccrued, PaymentReceived)
    return [
        e for e in stored(case.log)
        if e.business_date > day and ((isinstance(e, kinds) and e.seq > seq) or isinstance(e, COST_EVENTS))
    ]


def pay_late(case: CollectionCase, amount, paid_on: date, payment_id: str, backdate_reason: str = ""):
    cmd = dataclasses.replace(payment_cmd(case, amount, paid_on, payment_id), backdate_reason=backdate_reason)
    return case.record_payment(cmd, POLICY, recorded=stored_accruals(case, paid_on))


def test_a_payment_recorded_after_the_close_is_applied_at_its_value_date():
    """10,000.00 overdue from 03-02 at 27 % penalty; 5,000.00 paid on 03-20, loaded after the
    case was closed through 03-31. As of 03-20 it pays 19 days of penalty (142.50), the contract
    interest (145.00) and 4,712.50 of principal; penalty from 03-21 runs on 5,287.50 (43.62)."""
    case = open_case()
    case.advance(DUE + timedelta(days=30), POLICY)  # 03-31: 225.00 of penalty posted on 10,000
    before = len(case.log)
    events = pay_late(case, "5000.00", date(2024, 3, 20), "bank-1")

    reversal, *_ = of_type(events, ChargesReversed)
    assert reversal.business_date == date(2024, 3, 31) and reversal.value_date == date(2024, 3, 20)
    assert reversal.reversed_seqs and all(case.log[seq - 1].type == "ChargesAccrued" for seq in reversal.reversed_seqs)
    (payment,) = of_type(events, PaymentReceived)
    assert (payment.business_date, payment.value_date, payment.received_on) == (date(2024, 3, 31), date(2024, 3, 20), date(2024, 3, 20))
    assert [(l.component, l.amount) for l in payment.lines] == [
        ("penalty_interest", D("142.50")), ("contract_interest", D("145.00")), ("principal", D("4712.50"))
    ]
    assert case.accrued_through == date(2024, 3, 31)
    assert case.penalty_due == D("43.62") and case.principal_outstanding() == D("5287.50")
    assert all(e.business_date == date(2024, 3, 31) for e in case.log[before:])  # history stays in date order
    assert "applied as of 2024-03-20" in describe(payment)
    assert "reversed" in describe(reversal) and "2024-03-20" in describe(reversal)

    on_its_day = open_case()
    on_its_day.advance(date(2024, 3, 19), POLICY)
    on_its_day.record_payment(payment_cmd(on_its_day, "5000.00", date(2024, 3, 20), "bank-1"), POLICY)
    on_its_day.advance(date(2024, 3, 31), POLICY)
    assert on_its_day.projection().penalty_interest == case.projection().penalty_interest
    assert CollectionCase.replay(stored(case.log)).snapshot() == case.snapshot()


def test_a_payment_is_never_valued_before_one_recorded_with_a_later_date():
    case = open_case()
    case.advance(DUE + timedelta(days=30), POLICY)
    pay_late(case, "100.00", date(2024, 3, 25), "bank-1")
    events = pay_late(case, "100.00", date(2024, 3, 10), "bank-2")
    (payment,) = of_type(events, PaymentReceived)
    assert (payment.value_date, payment.paid_on) == (date(2024, 3, 25), date(2024, 3, 10))
    assert "dated 2024-03-10" in describe(payment) and "no earlier than" in describe(payment)
    (second,) = of_type(events, ChargesReversed)
    assert min(case.log[s - 1].through for s in second.reversed_seqs) > date(2024, 3, 25)
    assert CollectionCase.replay(stored(case.log)).snapshot() == case.snapshot()


def test_accruals_missing_from_what_the_store_gave_are_refused():
    case = open_case()
    case.advance(DUE + timedelta(days=30), POLICY)
    case.collect_events()  # stored: the case no longer holds them
    with pytest.raises(DomainError, match="reverse"):
        case.record_payment(payment_cmd(case, "100.00", date(2024, 3, 20), "bank-1"), POLICY, recorded=[])
    assert not of_type(case.collect_events(), PaymentReceived)


def test_the_timeline_explains_the_reversal_and_the_days_posted_again():
    case = open_case()
    case.advance(DUE + timedelta(days=30), POLICY)
    pay_late(case, "5000.00", date(2024, 3, 20), "bank-1")
    rows = timeline_of(stored(case.log))
    texts = [row.description for row in rows]
    assert any("reversed" in t for t in texts)
    assert any(t.startswith("charges 2024-03-21") for t in texts)
    assert rows[-1].after.penalty_interest == D("43.62")


def test_a_payment_valued_before_a_due_date_of_a_monthly_plan_gives_the_period_its_start_back():
    """253,261.62 at 36 %, interest first, the monthly plan (first period 26 days by the day count):
    29,169.13 dated 01-20, before the first due date 01-29, loaded once the case was closed through
    02-05. Reversed back to 01-20, installment 1's period starts at the opening again (not at 01-29,
    which made its interest negative); the case comes out as the payment on its day leaves it."""
    terms = loan("253261.62", "0.36", 24, RepaymentMethod.INTEREST_FIRST, date(2025, 1, 3), date(2025, 1, 29),
                 day_count=DayCount.ACT_365, compound_interest=True, late_fee="30.00", late_fee_rate="0.10",
                 schedule_interest=ScheduleInterest.MONTHLY)

    def history(late: bool) -> CollectionCase:
        case, _ = LoggedCase.open("case-m", terms, DEFAULT_LPR_TABLE)
        day = terms.disbursed_on
        while day < (date(2025, 2, 5) if late else date(2025, 1, 19)):
            day += timedelta(days=1)
            case.advance(day, POLICY)
        if late:
            pay_late(case, "29169.13", date(2025, 1, 20), "bank-1")
        else:
            case.record_payment(payment_cmd(case, "29169.13", date(2025, 1, 20), "bank-1"), POLICY)
        while day < date(2025, 3, 10):
            day += timedelta(days=1)
            case.advance(day, POLICY)
        return case

    on_its_day, late = history(False), history(True)
    assert of_type(late.log, ChargesReversed)
    figures = lambda case: (  # noqa: E731 - the version counts the reversal's events too
        dataclasses.replace(case.projection(), version=0), case.principal_days, case.computed, case.charged,
        [(i.interest_due, i.interest_paid, i.principal_paid, i.late_fee_due) for i in case.installments],
    )
    assert figures(late) == figures(on_its_day)
    assert late.installments[0].interest_due == on_its_day.installments[0].interest_due > 0
    assert CollectionCase.replay(stored(late.log)).snapshot() == late.snapshot()


def test_a_payment_going_back_further_than_the_kept_period_starts_is_refused_in_one_line():
    from states import value_dating

    starts = value_dating.after_period_start({}, 2, D("10"))
    for n in range(3, 9):
        starts = value_dating.after_period_start(starts, n, D(n))
    assert sorted(starts) == [5, 6, 7, 8]  # the last few periods only
    reversed_ = [ChargesAccrued.__new__(ChargesAccrued)]
    object.__setattr__(reversed_[0], "through", date(2025, 3, 1))
    object.__setattr__(reversed_[0], "postings", (type("P", (), {"component": "contract_interest", "installment": 3})(),))
    with pytest.raises(DomainError, match="further than the case keeps its periods' starts; rebuild the case"):
        value_dating.restored_period_start("c", reversed_, {3: date(2025, 3, 1)}, starts)
    assert value_dating.restored_period_start("c", reversed_, {3: date(2025, 3, 1)}, {**starts, 3: D("7.5")}) == D("7.5")


payment_plan = st.tuples(st.integers(1, 150), st.integers(1, 2_000_000).map(lambda fen: Decimal(fen) / 100))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms=binding_loans(), earlier=st.lists(payment_plan, max_size=2), late=payment_plan, lag=st.integers(1, 40))
def test_a_payment_recorded_late_gives_what_it_gives_recorded_on_its_day(terms, earlier, late, lag):
    """The same payments; the last one recorded on its day, or ``lag`` days later after the
    closes of those days: the same balances, charged and unenforceable amounts to the fen."""
    start = terms.disbursed_on
    day, amount = start + timedelta(days=late[0]), late[1]
    end = day + timedelta(days=lag)

    def history(late_by: int) -> CollectionCase:
        case, _ = LoggedCase.open("case-v", terms, DEFAULT_LPR_TABLE)
        for n, (offset, paid) in enumerate(sorted(earlier)):
            on = start + timedelta(days=min(offset, late[0]))
            if not case.stage.is_closed and on >= case.accrued_through:
                try:
                    case.record_payment(payment_cmd(case, paid, on, f"early-{n}"), POLICY)
                except DomainError:
                    assert case.stage.is_closed
        if late_by:
            case.advance(day + timedelta(days=late_by), POLICY)
            if not case.stage.is_closed:
                case._accrue(day + timedelta(days=late_by))  # the close of that day accrued it
        if not case.stage.is_closed:  # beyond the 31-day window with the operator's reason
            pay_late(case, amount, day, "late", "bank file held back" if late_by > POLICY.backdating_days else "")
        case.advance(end, POLICY)
        if not case.stage.is_closed:
            case._accrue(end)
        return case

    def money(case: CollectionCase) -> dict:
        p = case.projection()
        return {
            "charged": case.charged, "unenforceable": p.unenforceable, "principal": p.principal_outstanding,
            "penalty_and_compound": case.penalty_due + case.compound_due, "total_paid": p.total_paid,
            "overpayment": p.overpayment, "owing": case.total_owing(),
            "installments": [(i.principal_paid, i.interest_due, i.interest_paid, i.late_fee_due, i.late_fee_paid) for i in case.installments],
        }

    on_its_day, late = history(0), history(lag)
    if on_its_day.stage.is_closed or late.stage.is_closed:
        return  # a payoff settles the case, and a settled case accrues nothing: compared elsewhere
    assert of_type(late.log, ChargesReversed)  # it was value-dated
    assert money(late) == money(on_its_day)
    assert CollectionCase.replay(stored(late.log)).snapshot() == late.snapshot()


# --- the back-dating window (DOMAIN.md §9) -------------------------------------------------


def test_a_payment_beyond_the_back_dating_window_is_refused_naming_date_window_and_flag():
    case = open_case()
    case.advance(DUE + timedelta(days=60), POLICY)  # closed through 2024-04-30
    case.collect_events()
    version = case.version
    with pytest.raises(DomainError) as refused:
        pay_late(case, "100.00", date(2024, 3, 20), "bank-old")
    message = str(refused.value)
    assert "\n" not in message
    assert "2024-03-20" in message and "41 days before the case's last closed date 2024-04-30" in message
    assert "window of 31 days (policy backdating_days)" in message and "(backdate_reason) records it" in message
    assert case.version == version and case.collect_events() == []  # nothing happened

    events = pay_late(case, "100.00", date(2024, 3, 20), "bank-old", "bank file held back by the clearing house")
    (payment,) = of_type(events, PaymentReceived)
    assert payment.backdate_reason == "bank file held back by the clearing house"
    assert "the reason given for back-dating it: bank file held back" in describe(payment)


def test_a_reason_given_for_a_payment_inside_the_window_is_kept_and_not_called_beyond_it():
    case = open_case()
    case.advance(DUE + timedelta(days=60), POLICY)  # closed through 2024-04-30; the window is 31 days
    (payment,) = of_type(pay_late(case, "100.00", date(2024, 4, 20), "bank-late", "teller keyed it late"), PaymentReceived)
    assert payment.backdate_reason == "teller keyed it late"  # what the operator said is kept
    assert "the reason given for back-dating it: teller keyed it late" in describe(payment)
    assert "beyond" not in describe(payment)


def test_the_window_is_a_policy_setting_and_its_edge_is_inside():
    case = open_case()
    case.advance(DUE + timedelta(days=60), POLICY)  # 2024-04-30
    strict = dataclasses.replace(POLICY, backdating_days=10)
    with pytest.raises(DomainError, match="window of 10 days"):
        case.record_payment(payment_cmd(case, "1.00", date(2024, 4, 19), "p1"), strict, stored_accruals(case, date(2024, 4, 19)))
    case.record_payment(payment_cmd(case, "1.00", date(2024, 4, 20), "p2"), strict, stored_accruals(case, date(2024, 4, 20)))


def test_what_if_reruns_a_value_dated_payment_on_the_date_it_carried():
    from states.whatif import rerun

    case = open_case()
    case.advance(DUE + timedelta(days=30), POLICY)
    pay_late(case, "5000.00", date(2024, 3, 20), "bank-1")
    case.advance(DUE + timedelta(days=45), POLICY)
    made, refused = rerun(stored(case.log), POLICY, DUE + timedelta(days=45))
    again = CollectionCase.replay(made)
    assert refused == []
    assert (again.charged, again.penalty_due, again.principal_outstanding(), again.total_paid) == (
        case.charged, case.penalty_due, case.principal_outstanding(), case.total_paid
    )


def test_a_v6_snapshot_of_a_paid_case_reads_back_as_the_replay():
    case = open_case()
    case.record_payment(payment_cmd(case, "100.00", DUE, "p1"), POLICY)
    case.advance(DUE + timedelta(days=30), POLICY)
    v7 = case.snapshot()
    assert v7["unenforced"] == [] and v7["value_dating"] == 0
    v6 = {k: v for k, v in v7.items() if k not in ("unenforced", "value_dating")} | {"v": 6, "unenforceable": {}}
    assert CollectionCase.from_snapshot(v6, case.terms).snapshot() == v7
    held = {**v6, "unenforceable": {"late_fee": "5.00"}}
    with pytest.raises(DomainError, match="rebuild it by replay"):
        CollectionCase.from_snapshot(held, case.terms)


def test_a_recovery_dated_before_the_write_off_is_applied_as_of_the_last_accrual_without_reversal():
    """A written-off case accrues nothing again, so the charges before its write-off are never
    taken back: a late-loaded recovery is applied as of the case's last accrual."""
    from tests.unit.conftest import write_off_cmd

    case = open_case()
    written_off_on = DUE + timedelta(days=100)
    case.advance(written_off_on, POLICY)
    case.write_off(write_off_cmd(case, "no prospect of recovery", written_off_on), POLICY)
    assert case.stage.value == "written_off"
    charged = case.charged
    events = pay_late(case, "500.00", written_off_on - timedelta(days=5), "recovery-1")
    assert not of_type(events, ChargesReversed) and case.charged == charged
    (payment,) = of_type(events, PaymentReceived)
    assert payment.value_date is None and payment.business_date == case.accrued_through
    assert payment.received_on == written_off_on - timedelta(days=5)


def test_a_case_read_back_from_its_snapshot_keeps_its_period_starts_and_value_dates_alike():
    terms = loan("120000.00", "0.18", 12, RepaymentMethod.EQUAL_INSTALLMENT, date(2026, 1, 15), date(2026, 2, 15),
                 schedule_interest=ScheduleInterest.MONTHLY)
    case, opening = LoggedCase.open("case-s", terms, DEFAULT_LPR_TABLE)
    case.advance(date(2026, 4, 20), POLICY)
    assert sorted(case.period_starts) == [2, 3, 4]
    loaded = LoggedCase.from_snapshot(case.snapshot(), opening[0])
    assert loaded.period_starts == case.period_starts
    without = {k: v for k, v in case.snapshot().items() if k != "period_starts"}  # written before they were kept
    assert LoggedCase.from_snapshot(without, opening[0]).period_starts == {4: case.period_starts[4]}
    loaded.log = list(case.log)
    for c in (case, loaded):  # across the 04-15 due date, back into the period that started 03-15
        pay_late(c, "11001.60", date(2026, 4, 10), "bank-1")
    assert loaded.snapshot() == case.snapshot()


# --- litigation costs posted after the value date (DOMAIN.md §4, §5) ---------------------------


def test_a_payment_valued_before_the_lawsuit_pays_what_was_owed_then_and_leaves_the_costs_due():
    """Sued at DPD 100 (costs posted then), a payment of 500.00 arrives valued at DPD 90: it is
    allocated as the same payment recorded on DPD 90 was (interest, principal; no costs, which did
    not exist then), and the lawsuit's costs stay due in full."""
    from states.events import LawsuitFiled
    from states.commands import FileLawsuit

    def at(dpd: int) -> date:
        return DUE + timedelta(days=dpd)

    on_its_day, late = open_case("case-day"), open_case("case-late")
    for case in (on_its_day, late):
        case.advance(at(89), POLICY)
    (paid_then,) = of_type(on_its_day.record_payment(payment_cmd(on_its_day, "500.00", at(90), "P-1"), POLICY), PaymentReceived)
    late.advance(at(100), POLICY)
    filed = late.file_lawsuit(FileLawsuit(case=late.case_id, operator="op-lawyer", filed_on=at(100)), POLICY)
    (lawsuit,) = of_type(filed, LawsuitFiled)
    costs = sum((c.enforceable for c in lawsuit.costs), D("0"))
    assert costs > 0 and late.costs_due == costs

    (paid_late,) = of_type(pay_late(late, "500.00", at(90), "P-1"), PaymentReceived)
    assert paid_late.value_date == at(90)
    assert [(l.component, l.amount, l.installment) for l in paid_late.lines] == [
        (l.component, l.amount, l.installment) for l in paid_then.lines
    ]
    assert "costs" not in {l.component for l in paid_late.lines}
    assert late.costs_due == costs  # owed since the filing, and still owed
    assert CollectionCase.replay(stored(late.log)).snapshot() == late.snapshot()


def test_a_payment_valued_after_the_lawsuit_pays_its_costs_first():
    def at(dpd: int) -> date:
        return DUE + timedelta(days=dpd)

    from states.commands import FileLawsuit

    case = open_case()
    case.advance(at(100), POLICY)
    case.file_lawsuit(FileLawsuit(case=case.case_id, operator="op-lawyer", filed_on=at(100)), POLICY)
    case.advance(at(105), POLICY)
    case._accrue(at(105))  # the close of that day accrued it
    (paid,) = of_type(pay_late(case, "100.00", at(101), "P-1"), PaymentReceived)
    assert paid.value_date == at(101) and [(l.component, l.amount) for l in paid.lines] == [("costs", D("100.00"))]
