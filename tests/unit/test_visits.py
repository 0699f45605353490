"""Field visits: scheduled on entering the visit stage, reported by two collectors, failures count toward outsourcing."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from states.commands import ReportVisit
from states.errors import DomainError
from states.events import StageChanged, VisitReported, VisitScheduled
from states.lifecycle import Stage
from tests.unit.conftest import DUE, POLICY, open_case


def in_visit():
    case = open_case(term=12, method="equal_installment")
    case.advance(DUE + timedelta(days=31), POLICY)
    assert case.stage is Stage.VISIT
    return case


def visit(case, outcome, day, collectors="op-1,op-2", hour=10):
    at = datetime(day.year, day.month, day.day, hour)
    return case.report_visit(ReportVisit(case=case.case_id, operator="op-1", collectors=collectors, outcome=outcome, visited_at=at), POLICY)


def test_entering_the_visit_stage_schedules_a_visit_due_a_policy_week_later():
    case = in_visit()
    (scheduled,) = [e for e in case.log if isinstance(e, VisitScheduled)]
    assert scheduled.due_on == DUE + timedelta(days=31 + POLICY.visit_due_days)
    assert case.visit_due_on == scheduled.due_on


def test_a_visit_needs_two_collectors_and_keeps_the_quiet_hours():
    case = in_visit()
    day = DUE + timedelta(days=33)
    with pytest.raises(DomainError, match="at least 2 collectors, got op-1"):
        visit(case, "met", day, collectors="op-1")
    with pytest.raises(DomainError, match="between 22:00 and 08:00"):
        visit(case, "met", day, hour=7)
    (reported,) = [e for e in visit(case, "met", day) if isinstance(e, VisitReported)]
    assert reported.collectors == ("op-1", "op-2")
    assert case.visit_due_on is None and case.failed_visits == 0


def test_a_visit_time_with_a_utc_offset_is_read_in_the_borrowers_time_zone():
    case = in_visit()
    day = DUE + timedelta(days=33)
    evening_in_hawaii = datetime(day.year, day.month, day.day, 10, 0, tzinfo=timezone(timedelta(hours=-10)))  # 04:00 next day in Shanghai
    cmd = ReportVisit(case=case.case_id, operator="op-1", collectors="op-1,op-2", outcome="met", visited_at=evening_in_hawaii)
    with pytest.raises(DomainError, match="between 22:00 and 08:00 borrower local time, got 04:00"):
        case.report_visit(cmd, POLICY, timezone="Asia/Shanghai")
    utc_morning = datetime(day.year, day.month, day.day, 3, 0, tzinfo=timezone.utc)  # 11:00 in Shanghai
    cmd = ReportVisit(case=case.case_id, operator="op-1", collectors="op-1,op-2", outcome="met", visited_at=utc_morning)
    (reported,) = [e for e in case.report_visit(cmd, POLICY, timezone="Asia/Shanghai") if isinstance(e, VisitReported)]
    assert reported.visited_at == f"{day.isoformat()}T11:00" and reported.business_date == day


def test_a_time_with_a_utc_offset_happens_on_its_date_in_the_lenders_time_zone():
    late_in_new_york = datetime(2026, 12, 3, 20, 0, tzinfo=timezone(timedelta(hours=-5)))  # 09:00 on the 4th in Shanghai
    cmd = ReportVisit(case="C-1", operator="op-1", collectors="op-1,op-2", outcome="met", visited_at=late_in_new_york)
    assert cmd.happened_on("Asia/Shanghai") == {"visited_at": date(2026, 12, 4)}
    assert cmd.happened_on() == {"visited_at": date(2026, 12, 3)}  # no zone given: the date as written


def test_two_failed_visits_send_the_case_to_an_agency_before_dpd_91():
    case = in_visit()
    first = DUE + timedelta(days=33)
    events = visit(case, "not_home", first)
    assert [type(e) for e in events][-2:] == [VisitReported, VisitScheduled]  # a failed visit schedules the next
    case.advance(first + timedelta(days=1), POLICY)
    assert case.stage is Stage.VISIT  # one failure is not enough
    visit(case, "moved", first + timedelta(days=2))
    case.advance(first + timedelta(days=3), POLICY)
    moved = [e for e in case.log if isinstance(e, StageChanged) and e.to_stage == "outsourced"]
    assert case.stage is Stage.OUTSOURCED and moved[0].dpd < POLICY.outsource_at_dpd


def test_an_overdue_visit_counts_as_one_failure():
    case = in_visit()
    due = case.visit_due_on
    visit(case, "refused", due - timedelta(days=1))  # one failure; the next visit due a week later
    case.advance(case.visit_due_on, POLICY)
    assert case.stage is Stage.VISIT
    case.advance(case.visit_due_on + timedelta(days=1), POLICY)  # the next visit now overdue: two
    assert case.stage is Stage.OUTSOURCED
