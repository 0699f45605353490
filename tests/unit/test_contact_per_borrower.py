"""Contact caps per borrower, across all their loans (DOMAIN.md §6: "per borrower and per number").

One person with two loans has one phone: three connected calls a day in all,
six unanswered attempts a day on their number in all, whichever loan each
call was made for. A guarantor's number belongs to one loan and counts there.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from states import worklist
from states.contact import MAX_CONNECTED_CALLS_A_DAY, MAX_UNANSWERED_A_DAY, borrower_day
from states.events import ContactRecorded, ContactRefused
from states.vocabulary import ContactOutcome, ContactParty
from tests.unit.conftest import DUE, POLICY, contact_cmd, open_case

DAY = DUE + timedelta(days=10)  # both loans are in the phone stage


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute)


def two_loans():
    a, b = open_case("case-a"), open_case("case-b")
    a.advance(DAY, POLICY)
    b.advance(DAY, POLICY)
    return a, b


def call(case, other, outcome="connected", when=None, party="borrower"):
    (event,) = case.record_contact(contact_cmd(case, "call", party, outcome, when or at(10)), elsewhere=[other.contact])
    return event


def test_three_connected_calls_a_day_count_both_loans_of_one_borrower():
    a, b = two_loans()
    assert isinstance(call(a, b, when=at(9)), ContactRecorded)
    assert isinstance(call(b, a, when=at(10)), ContactRecorded)
    assert isinstance(call(a, b, when=at(11)), ContactRecorded)
    refused = call(b, a, when=at(12))
    assert isinstance(refused, ContactRefused)
    assert refused.rule == (
        f"at most {MAX_CONNECTED_CALLS_A_DAY} connected calls a day per borrower (2 of them on the borrower's other loans)"
    )
    assert isinstance(call(b, a, when=at(9, day=DAY + timedelta(days=1))), ContactRecorded)  # a new day


def test_unanswered_attempts_on_the_borrowers_number_count_both_loans():
    a, b = two_loans()
    for i in range(MAX_UNANSWERED_A_DAY):
        assert isinstance(call(a if i % 2 else b, b if i % 2 else a, "no_answer", at(9, 5 * i)), ContactRecorded)
    refused = call(a, b, "no_answer", at(11))
    assert isinstance(refused, ContactRefused) and f"at most {MAX_UNANSWERED_A_DAY} unanswered attempts" in refused.rule
    assert "3 of them on the borrower's other loans" in refused.rule


def test_a_guarantors_number_is_one_loans_and_does_not_count_on_the_other():
    a, b = two_loans()
    for i in range(3):  # the borrower unreachable on both loans, so guarantors may be called
        call(a, b, "no_answer", at(9, i))
        call(b, a, "no_answer", at(9, 10 + i))
    for i in range(MAX_UNANSWERED_A_DAY):
        assert isinstance(call(a, b, "no_answer", at(10, i), party="guarantor"), ContactRecorded)
    assert isinstance(call(b, a, "no_answer", at(11), party="guarantor"), ContactRecorded)


def test_borrower_day_sums_connected_calls_and_the_borrowers_unanswered_attempts():
    a, b = two_loans()
    call(a, b, when=at(9))
    call(a, b, "no_answer", at(10))
    call(b, a, "no_answer", at(10, 5))
    day = borrower_day([a.contact, b.contact], DAY)
    assert (day.connected, dict(day.unanswered)) == (1, {ContactParty.BORROWER.value: 2})
    assert borrower_day([a.contact, b.contact], DAY + timedelta(days=1)).connected == 0


def test_the_call_list_leaves_out_a_loan_whose_borrower_had_three_calls_on_another():
    a, b = two_loans()
    for hour in (9, 10, 11):
        call(a, b, when=at(hour))
    entries, left_out = worklist.call_list([b], DAY, POLICY.teams, None, {b.case_id: borrower_day([a.contact], DAY)})
    assert entries == []
    assert [o.reason for o in left_out] == [
        f"{MAX_CONNECTED_CALLS_A_DAY} connected calls already today (with the borrower's other loans)"
    ]
    entries, _ = worklist.call_list([b], DAY, POLICY.teams)  # not told of the other loan: b alone had none
    assert [e.case_id for e in entries] == [b.case_id]


# --- property: any sequence of calls over a borrower's three loans keeps the caps in all -----

calls = st.lists(
    st.tuples(
        st.integers(0, 2),  # which loan
        st.sampled_from([ContactOutcome.CONNECTED, ContactOutcome.NO_ANSWER, ContactOutcome.REFUSED_TO_TALK]),
        st.integers(0, 1),  # which day
        st.integers(8, 21),  # hour
    ),
    min_size=1,
    max_size=50,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls)
def test_random_calls_on_a_borrowers_loans_never_exceed_the_caps_together(sequence):
    loans = [open_case(f"case-{i}") for i in range(3)]
    for case in loans:
        case.advance(DAY, POLICY)
    for n, (which, outcome, day, hour) in enumerate(sequence):
        case = loans[which]
        others = [other.contact for other in loans if other is not case]
        cmd = contact_cmd(case, "call", "borrower", outcome, at(hour, n % 60, DAY + timedelta(days=day)))
        (event,) = case.record_contact(cmd, elsewhere=others)
        assert isinstance(event, (ContactRecorded, ContactRefused))
    taken = [e for case in loans for e in case.log if isinstance(e, ContactRecorded)]
    connected = Counter(e.contacted_at[:10] for e in taken if e.outcome == "connected")
    unanswered = Counter(e.contacted_at[:10] for e in taken if e.outcome != "connected")
    assert max(connected.values(), default=0) <= MAX_CONNECTED_CALLS_A_DAY
    assert max(unanswered.values(), default=0) <= MAX_UNANSWERED_A_DAY
    # a call is refused only when the borrower's day really was full
    refused = [e for case in loans for e in case.log if isinstance(e, ContactRefused)]
    for e in refused:
        assert connected[e.contacted_at[:10]] == MAX_CONNECTED_CALLS_A_DAY or unanswered[e.contacted_at[:10]] == MAX_UNANSWERED_A_DAY
