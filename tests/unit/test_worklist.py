"""Today's call list: who is on it, who is left out and why, in which order, for which team."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from states.lifecycle import Stage
from states.worklist import VISIT_CALL_GAP_DAYS, call_list, call_priority, team_for
from tests.unit.conftest import DUE, POLICY, contact_cmd, open_case, pause_cmd, payment_cmd, promise_cmd

TEAMS = {"collectors": 100}


def in_phone(case_id: str = "case-1", dpd: int = 10, **loan_kw):
    case = open_case(case_id, **loan_kw)
    case.advance(DUE + timedelta(days=dpd), POLICY)
    assert case.stage is Stage.PHONE
    return case


def at(day, hour=10):
    return datetime(day.year, day.month, day.day, hour)


def test_the_priority_is_the_overdue_amount_weighted_by_days_past_due():
    assert call_priority(Decimal("1000.00"), 0) == Decimal("1000.00")
    assert call_priority(Decimal("1000.00"), 30) == Decimal("2000.00")  # a month late counts double
    assert call_priority(Decimal("1000.00"), 15) == Decimal("1500.00")


def test_broken_promises_come_first_then_priority_then_the_never_contacted():
    today = DUE + timedelta(days=20)
    big = in_phone("big", principal="50000.00")
    small = in_phone("small", principal="5000.00")
    promised = in_phone("promised", principal="5000.00")
    promised.make_promise(promise_cmd(promised, "100", DUE + timedelta(days=12), DUE + timedelta(days=10)), POLICY)
    contacted = in_phone("contacted", principal="5000.00")
    contacted.record_contact(contact_cmd(contacted, "call", "borrower", "no_answer", at(DUE + timedelta(days=10))))
    for case in (big, small, promised, contacted):
        case.advance(today - timedelta(days=1), POLICY)  # the promise is judged: broken

    entries, left_out = call_list([small, contacted, big, promised], today, TEAMS)

    assert [e.case_id for e in entries] == ["promised", "big", "small", "contacted"]
    assert entries[0].broken_promise and not left_out
    assert entries[1].priority > entries[2].priority
    assert entries[2].priority == entries[3].priority and entries[3].last_contact_at is not None


def test_paused_promising_and_used_up_cases_are_left_out_with_the_reason():
    today = DUE + timedelta(days=12)
    paused = in_phone("paused")
    paused.pause(pause_cmd(paused, "hardship", today + timedelta(days=5), today), POLICY)
    promising = in_phone("promising")
    promising.make_promise(promise_cmd(promising, "100", today + timedelta(days=3), today), POLICY)
    used_up = in_phone("used-up")
    for hour in (9, 10, 11):
        used_up.record_contact(contact_cmd(used_up, "call", "borrower", "connected", at(today, hour)))
    callable_ = in_phone("callable")

    entries, left_out = call_list([paused, promising, used_up, callable_], today, TEAMS)

    assert [e.case_id for e in entries] == ["callable"]
    reasons = {e.case_id: e.reason for e in left_out}
    assert reasons["paused"] == f"paused until {today + timedelta(days=5)}"
    assert reasons["promising"].startswith("promise to pay 100.00 by") and "still running" in reasons["promising"]
    assert reasons["used-up"] == "3 connected calls already today"


def test_a_visit_stage_case_is_called_between_visits_only():
    case = open_case()
    case.advance(DUE + timedelta(days=35), POLICY)
    assert case.stage is Stage.VISIT
    today = DUE + timedelta(days=36)
    assert [e.case_id for e in call_list([case], today, TEAMS)[0]] == ["case-1"]  # never contacted
    case.record_contact(contact_cmd(case, "call", "borrower", "no_answer", at(today)))
    assert call_list([case], today + timedelta(days=1), TEAMS)[0] == []
    later = today + timedelta(days=VISIT_CALL_GAP_DAYS)
    case.advance(later - timedelta(days=1), POLICY)
    assert [e.case_id for e in call_list([case], later, TEAMS)[0]] == ["case-1"]


def test_cases_not_in_a_calling_stage_or_paid_up_are_not_on_the_list():
    current = open_case("current")
    cured = in_phone("cured")
    paid_on = DUE + timedelta(days=10)
    cured.record_payment(payment_cmd(cured, cured.view(paid_on).projection.total_due, paid_on, "P-1"), POLICY)
    assert cured.stage in (Stage.CURRENT, Stage.SETTLED)
    assert call_list([current, cured], DUE + timedelta(days=11), TEAMS) == ([], [])


def test_the_team_split_is_reproducible_and_follows_the_shares():
    teams = {"a": 60, "b": 30, "c": 10}
    ids = [f"CF{n:07d}" for n in range(5000)]
    first = [team_for(i, teams) for i in ids]
    assert first == [team_for(i, teams) for i in ids]  # the same case, the same team, every day
    counts = Counter(first)
    assert abs(counts["a"] / 5000 - 0.60) < 0.03 and abs(counts["b"] / 5000 - 0.30) < 0.03 and abs(counts["c"] / 5000 - 0.10) < 0.02


@settings(max_examples=40, deadline=None)
@given(
    dpds=st.lists(st.integers(min_value=4, max_value=29), min_size=1, max_size=6),
    actions=st.lists(st.sampled_from(["none", "pause", "promise", "three_calls", "six_misses"]), min_size=6, max_size=6),
)
def test_every_case_that_wants_a_call_is_either_listed_in_order_or_left_out_with_a_reason(dpds, actions):
    today = DUE + timedelta(days=30)
    cases = []
    for n, (dpd, action) in enumerate(zip(dpds, actions)):
        case = in_phone(f"case-{n}", dpd=dpd, principal=f"{5000 + 1000 * n}.00")
        case.advance(today - timedelta(days=1), POLICY)
        if case.stage is not Stage.PHONE:
            continue
        if action == "pause":
            case.pause(pause_cmd(case, "dispute", today + timedelta(days=3), today), POLICY)
        elif action == "promise":
            case.make_promise(promise_cmd(case, "50", today + timedelta(days=2), today), POLICY)
        elif action == "three_calls":
            for hour in (9, 10, 11):
                case.record_contact(contact_cmd(case, "call", "borrower", "connected", at(today, hour)))
        elif action == "six_misses":
            for minute in range(6):
                case.record_contact(contact_cmd(case, "call", "borrower", "no_answer", datetime(today.year, today.month, today.day, 9, minute * 5)))
        cases.append((case, action))

    entries, left_out = call_list([c for c, _ in cases], today, TEAMS)

    listed, left = {e.case_id for e in entries}, {e.case_id for e in left_out}
    assert listed | left == {c.case_id for c, _ in cases} and not listed & left
    for case, action in cases:
        assert (case.case_id in listed) == (action == "none"), (action, left_out)
    keys = [(not e.broken_promise, -e.priority, e.last_contact_at is not None, e.case_id) for e in entries]
    assert keys == sorted(keys)
