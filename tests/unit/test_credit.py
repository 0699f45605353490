"""Credit reporting (DOMAIN.md §8): the pre-notice, the month-end records, and how long they are kept.

Hand-built cases pin the record field by field across month ends (a default,
a cure, a settlement, a write-off), the notice timing on both sides of its
boundary, and a property: for random payment patterns, every month end with
the case in default yields exactly one record, and none comes before the
notice period has run.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from hypothesis import given

from states import credit
from states.case import CollectionCase
from states.credit import CreditRecord, CreditState, ReportStatus
from states.events import CreditReportNoticeSent, MonthEndReported, StageChanged
from states.lifecycle import Stage
from states.policy import CollectionPolicy, PolicyError
from states.schedule import RepaymentMethod
from tests.unit.conftest import DUE, POLICY, D, LoggedCase, loan, of_type, open_case, payment_cmd, stored
from tests.unit.test_properties import SETTINGS, loans, run, steps, traced

DAY = timedelta(days=1)


def records(case) -> list[MonthEndReported]:
    return of_type(case.log, MonthEndReported)


def three_month_case():
    """3,000.00 at 18 % in three equal-principal installments, due 15 February, March and April 2024."""
    return open_case(terms=loan("3000.00", "0.18", 3, RepaymentMethod.EQUAL_PRINCIPAL, date(2024, 1, 15), date(2024, 2, 15)))


def pay_what_is_due(case, on: date, payment_id: str) -> None:
    case.record_payment(payment_cmd(case, case.view(on, POLICY).projection.total_due, on, payment_id), POLICY)


# --- the record, field by field ---------------------------------------------------------------


def test_a_default_then_a_cure_gives_one_record_a_month_field_by_field():
    case = three_month_case()
    case.advance(date(2024, 3, 9), POLICY)  # missed 15 February: overdue from the 16th
    pay_what_is_due(case, date(2024, 3, 10), "arrears")  # cured
    pay_what_is_due(case, date(2024, 3, 15), "march")  # on time (paid up: it would sleep until 16 April)
    pay_what_is_due(case, date(2024, 4, 15), "april")  # the last installment: settled from current
    case.advance(date(2024, 6, 30), POLICY)

    (notice,) = of_type(case.log, CreditReportNoticeSent)
    assert (notice.business_date, notice.notice_days, notice.first_report_on) == (date(2024, 2, 16), 7, date(2024, 2, 29))
    february, march = records(case)
    assert february.business_date == february.month_end == date(2024, 2, 29)
    assert february.record == CreditRecord(
        account="HT-0001",
        month="2024-02",
        dpd=14,
        bucket="M1",
        overdue_principal=D("1000.00"),
        # 3,000 x 18 % / 360 x 31 days = 46.50 contract interest; 1,000 x 27 % / 360 x 14 days = 10.50 penalty
        overdue_total=D("1057.00"),
        classification="special_mention",
        status="overdue",
    )
    assert february.default_ended_on is None
    # March: cured on the 10th, so reported once more, as current, and the day its default ended
    assert march.business_date == march.month_end == date(2024, 3, 31)
    assert march.record == CreditRecord("HT-0001", "2024-03", 0, "M0", D("0.00"), D("0.00"), "normal", "current")
    assert march.default_ended_on == date(2024, 3, 10)
    assert case.stage is Stage.SETTLED  # April: current all month, settled from current: no record
    assert february.record.as_row() == {
        "account": "HT-0001", "month": "2024-02", "dpd": 14, "bucket": "M1", "overdue_principal": "1000.00",
        "overdue_total": "1057.00", "classification": "special_mention", "status": "overdue",
    }


def test_a_second_default_is_reported_without_a_second_notice():
    case = three_month_case()
    case.advance(date(2024, 3, 9), POLICY)
    pay_what_is_due(case, date(2024, 3, 10), "arrears")
    case.advance(date(2024, 4, 30), POLICY)  # March's installment missed as well: overdue again from 16 March
    assert len(of_type(case.log, CreditReportNoticeSent)) == 1
    assert [(r.record.month, r.record.status, r.record.dpd, r.default_ended_on) for r in records(case)] == [
        ("2024-02", "overdue", 14, None),
        ("2024-03", "overdue", 16, None),  # cured on the 10th, overdue again on the 16th: in default at the month end
        ("2024-04", "overdue", 46, None),
    ]


def test_a_settlement_during_a_month_is_that_months_last_record():
    case = open_case()  # 10,000.00 due 1 March 2024
    case.advance(date(2024, 4, 9), POLICY)
    pay_what_is_due(case, date(2024, 4, 10), "payoff")
    case.advance(date(2024, 6, 1), POLICY)
    assert case.stage is Stage.SETTLED
    march, april = records(case)
    assert (march.record.status, march.record.dpd, march.record.overdue_principal) == ("overdue", 30, D("10000.00"))
    assert april.business_date == date(2024, 4, 10) and april.month_end == date(2024, 4, 30)
    assert april.record == CreditRecord("HT-0001", "2024-04", 0, "M0", D("0.00"), D("0.00"), "normal", "settled")
    assert april.default_ended_on == date(2024, 4, 10)


def test_a_write_off_is_reported_with_the_figures_of_its_month_end():
    case = open_case(principal="3000.00")  # too small to sue: written off at DPD 361
    case.advance(DUE + timedelta(days=400), POLICY)
    assert case.stage is Stage.WRITTEN_OFF
    last = records(case)[-1]
    assert last.business_date == DUE + timedelta(days=361) == date(2025, 2, 25)
    assert (last.month_end, last.record.month, last.record.status) == (date(2025, 2, 28), "2025-02", "written_off")
    assert (last.record.dpd, last.record.bucket, last.record.classification) == (364, "M7+", "loss")
    assert last.record.overdue_principal == D("3000.00") and last.record.overdue_total == case.overdue_total(last.month_end)
    assert last.default_ended_on is None  # a written-off default has not ended
    assert [r.record.month for r in records(case)] == [f"{y}-{m:02d}" for y, m in [(2024, n) for n in range(3, 13)] + [(2025, 1), (2025, 2)]]


def test_replay_and_the_snapshot_reproduce_the_reporting_state():
    case = three_month_case()
    case.advance(date(2024, 3, 9), POLICY)
    pay_what_is_due(case, date(2024, 3, 10), "arrears")
    pay_what_is_due(case, date(2024, 3, 15), "march")
    case.advance(date(2024, 3, 31), POLICY)
    replayed = CollectionCase.replay(stored(case.log))
    assert replayed.credit == case.credit == CreditState(date(2024, 2, 29), date(2024, 3, 10), date(2024, 3, 31))
    assert replayed.snapshot() == case.snapshot()
    restored = CollectionCase.from_snapshot(json.loads(json.dumps(case.snapshot())), case.terms)
    assert restored.credit == case.credit and restored.next_review_on == case.next_review_on


# --- the pre-notice and the first negative record -----------------------------------------------


@pytest.mark.parametrize(
    "overdue_on, first_record",
    [
        (date(2024, 3, 24), "2024-03"),  # 7 days before the month end: reported at it
        (date(2024, 3, 25), "2024-04"),  # 6 days before: not yet
        (date(2024, 3, 28), "2024-04"),  # 3 days before: not yet
    ],
)
def test_the_first_negative_record_is_at_least_the_notice_period_after_the_notice(overdue_on, first_record):
    case = open_case(first_due_on=overdue_on - DAY)
    case.advance(date(2024, 5, 31), POLICY)
    (notice,) = of_type(case.log, CreditReportNoticeSent)
    (fell_overdue, *_) = of_type(case.log, StageChanged)
    assert notice.business_date == fell_overdue.business_date == overdue_on
    first = records(case)[0]
    assert first.record.month == first_record
    assert first.month_end - notice.business_date >= timedelta(days=7)
    assert notice.seq < first.seq


def test_a_case_overdue_3_days_before_a_month_end_is_not_reported_negatively_at_it():
    case = open_case(first_due_on=date(2024, 3, 27))  # overdue from 28 March: DPD 4 on the 31st
    case.advance(date(2024, 4, 30), POLICY)
    (notice,) = of_type(case.log, CreditReportNoticeSent)
    assert notice.first_report_on == date(2024, 4, 30)
    assert [r.record.month for r in records(case)] == ["2024-04"]
    assert records(case)[0].record.dpd == 34


def test_the_notice_period_is_a_policy_setting():
    policy = CollectionPolicy(credit_report_notice_days=45)
    case = open_case()
    case.advance(date(2024, 5, 31), policy)
    (notice,) = of_type(case.log, CreditReportNoticeSent)
    assert (notice.notice_days, notice.first_report_on) == (45, date(2024, 4, 30))
    assert [r.record.month for r in records(case)] == ["2024-04", "2024-05"]
    assert CollectionPolicy().credit_report_notice_days == 7
    with pytest.raises(PolicyError, match="credit_report_notice_days: must be a positive integer"):
        CollectionPolicy(credit_report_notice_days=0)


def test_month_ends_wake_a_case_in_default_without_month_end_posting():
    policy = CollectionPolicy(month_end_posting=False)
    case = open_case()
    case.advance(date(2024, 6, 30), policy)
    assert [(r.business_date, r.record.dpd) for r in records(case)] == [
        (date(2024, 3, 31), 30), (date(2024, 4, 30), 60), (date(2024, 5, 31), 91), (date(2024, 6, 30), 121)
    ]


def test_a_case_never_in_default_is_never_noticed_or_reported():
    case = three_month_case()
    for n, due in enumerate((date(2024, 2, 15), date(2024, 3, 15), date(2024, 4, 15))):
        case.advance(due - DAY, POLICY)
        pay_what_is_due(case, due, f"on-time-{n}")
    assert case.stage is Stage.SETTLED
    assert of_type(case.log, CreditReportNoticeSent) == records(case) == []


# --- the pure rules ------------------------------------------------------------------------------


def test_the_status_of_every_stage():
    assert {stage: credit.report_status(stage).value for stage in Stage} == {
        Stage.CURRENT: "current", Stage.OVERDUE: "overdue", Stage.PHONE: "overdue", Stage.VISIT: "overdue",
        Stage.OUTSOURCED: "overdue", Stage.LITIGATION: "overdue", Stage.SETTLED: "settled",
        Stage.WRITTEN_OFF: "written_off",
    }
    assert [s.value for s in ReportStatus] == ["current", "overdue", "settled", "written_off"]


def test_months_and_the_first_report():
    assert credit.month_end(date(2024, 2, 3)) == date(2024, 2, 29)
    assert credit.month_of(date(2024, 2, 3)) == "2024-02"
    assert credit.month_end_of("2024-02") == date(2024, 2, 29)
    assert [credit.month_end_of(text) for text in ("2024-13", "2024-2", "24-02", "2024-00", " 2024-02")] == [None] * 5
    assert credit.first_report_on(date(2024, 3, 24), 7) == date(2024, 3, 31)
    assert credit.first_report_on(date(2024, 3, 25), 7) == date(2024, 4, 30)


def test_a_record_is_owed_once_a_month_from_the_first_report_on():
    state = CreditState(first_report_on=date(2024, 3, 31))
    assert not credit.record_owed(date(2024, 2, 29), Stage.PHONE, state)
    assert credit.record_owed(date(2024, 3, 31), Stage.PHONE, state)
    assert not credit.record_owed(date(2024, 3, 31), Stage.PHONE, credit.after_report(state, date(2024, 3, 31)))
    assert not credit.record_owed(date(2024, 3, 31), Stage.CURRENT, state)
    cured = CreditState(date(2024, 3, 31), default_ended_on=date(2024, 4, 3))
    assert credit.record_owed(date(2024, 4, 30), Stage.CURRENT, cured)
    assert not credit.record_owed(date(2024, 5, 31), Stage.CURRENT, cured)
    assert credit.next_record_on(date(2024, 4, 3), Stage.CURRENT, cured) == date(2024, 4, 30)
    assert credit.next_record_on(date(2024, 4, 30), Stage.CURRENT, cured) is None
    assert not credit.record_owed(date(2024, 3, 31), Stage.PHONE, CreditState())  # no notice, no record


def test_a_default_is_tracked_from_the_notice_on():
    empty = CreditState()
    assert credit.after_stage_change(empty, Stage.PHONE, Stage.CURRENT, date(2024, 4, 3)) == empty
    noticed = CreditState(date(2024, 3, 31))
    ended = credit.after_stage_change(noticed, Stage.PHONE, Stage.CURRENT, date(2024, 4, 3))
    assert ended.default_ended_on == date(2024, 4, 3)
    assert credit.after_stage_change(ended, Stage.CURRENT, Stage.SETTLED, date(2024, 5, 3)) == ended  # ended at the cure
    assert credit.after_stage_change(ended, Stage.CURRENT, Stage.OVERDUE, date(2024, 5, 3)).default_ended_on is None
    assert credit.after_stage_change(noticed, Stage.OUTSOURCED, Stage.WRITTEN_OFF, date(2024, 5, 3)) == noticed


def test_records_are_kept_five_years_after_the_default_ends():
    assert credit.retention_ends(date(2024, 3, 10)) == date(2029, 3, 10)
    assert credit.retention_ends(date(2024, 2, 29)) == date(2029, 2, 28)
    assert credit.retained(date(2024, 3, 10), date(2029, 3, 10))
    assert not credit.retained(date(2024, 3, 10), date(2029, 3, 11))
    assert credit.retained(None, date(2099, 1, 1))  # a default not ended (or written off) is kept


def test_a_record_ages_with_the_end_of_its_own_default():
    endings = [("2019-03", date(2019, 3, 10)), ("2024-06", date(2024, 6, 2))]
    assert credit.default_end("2019-01", endings) == date(2019, 3, 10)
    assert credit.default_end("2019-03", endings) == date(2019, 3, 10)
    assert credit.default_end("2024-05", endings) == date(2024, 6, 2)
    assert credit.default_end("2024-07", endings) is None
    old = CreditRecord("B-2", "2019-02", 20, "M1", D("1.00"), D("2.00"), "special_mention", "overdue")
    ongoing = CreditRecord("A-1", "2019-02", 50, "M2", D("1.00"), D("2.00"), "special_mention", "overdue")
    kept, aged = credit.exported([old, ongoing], {"B-2": endings}, as_of=date(2024, 3, 11))
    assert (kept, aged) == ([ongoing], 1)
    kept, aged = credit.exported([old, ongoing], {"B-2": endings}, as_of=date(2024, 3, 10))
    assert ([r.account for r in kept], aged) == (["A-1", "B-2"], 0)  # by account


# --- the property --------------------------------------------------------------------------------


def month_ends(first: date, last: date) -> list[date]:
    ends, day = [], credit.month_end(first)
    while day <= last:
        ends.append(day)
        day = credit.month_end(day + DAY)
    return ends


@SETTINGS
@given(terms=loans(), plan=steps)
def test_every_month_end_in_default_yields_exactly_one_record_and_none_before_the_notice_period(terms, plan):
    case = traced(terms, LoggedCase)
    end = run(case, terms, plan)
    notices = of_type(case.log, CreditReportNoticeSent)
    made = records(case)
    assert len(notices) <= 1
    assert len({r.month_end for r in made}) == len(made)  # at most one record a month
    if not notices:
        assert made == [] and not any(credit.in_default(Stage(e.to_stage)) for e in of_type(case.log, StageChanged))
        return
    (notice,) = notices
    for record in made:
        assert record.seq > notice.seq and record.month_end - notice.business_date >= timedelta(days=POLICY.credit_report_notice_days)
        assert record.record.month == credit.month_of(record.month_end) and record.business_date <= record.month_end
    by_month_end = {r.month_end: r for r in made}
    closed_on = next((e.business_date for e in of_type(case.log, StageChanged) if Stage(e.to_stage).is_closed), None)
    for month_end in month_ends(terms.disbursed_on, end):
        stage = stage_at(case, month_end)
        if month_end - notice.business_date < timedelta(days=POLICY.credit_report_notice_days):
            assert month_end not in by_month_end
        elif credit.report_status(stage) is ReportStatus.OVERDUE:
            assert by_month_end[month_end].record.status == "overdue"
        elif closed_on is not None and credit.month_end(closed_on) < month_end:
            assert month_end not in by_month_end  # a closed case makes its last record the month it closes


def stage_at(case, day: date) -> Stage:
    """The case's stage after every event dated on or before ``day``."""
    stage = Stage.CURRENT
    for event in of_type(case.log, StageChanged):
        if event.business_date <= day:
            stage = Stage(event.to_stage)
    return stage
