"""What-if replay: the same inputs under another policy; under the same policy, the same history."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from states.policy import CollectionPolicy
from states.whatif import compare, rerun
from tests.unit.conftest import DUE, POLICY, LoggedCase, loan, payment_cmd, promise_cmd
from states.caps import DEFAULT_LPR_TABLE


def recorded(actions, through):
    """A case run under the default policy with these (day offset, kind) actions; its history."""
    case, _ = LoggedCase.open("case-1", loan(term=6, method="equal_installment"), DEFAULT_LPR_TABLE)
    for n, (offset, kind) in enumerate(sorted(actions)):
        day = DUE + timedelta(days=offset)
        if case.stage.is_closed:
            break
        case.advance(day - timedelta(days=1), POLICY)
        if kind == "pay":
            case.record_payment(payment_cmd(case, "400.00", day, f"P-{n}"), POLICY)
        elif not case.stage.is_closed:
            case.make_promise(promise_cmd(case, "300.00", day + timedelta(days=5), day), POLICY)
    if not case.stage.is_closed:
        case.advance(through, POLICY)
    return case.log


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=80), st.sampled_from(["pay", "promise"])), max_size=5, unique_by=lambda a: a[0]))
def test_under_the_same_policy_the_rerun_is_the_recorded_history_event_for_event(actions):
    through = DUE + timedelta(days=100)
    history = recorded(actions, through)
    made, refused = rerun(history, POLICY, through)
    assert refused == []
    assert made == history


def test_escalating_to_visit_at_dpd_20_moves_the_case_out_of_phone_for_exactly_dpd_20_to_30():
    through = DUE + timedelta(days=45)
    history = recorded([], through)
    sooner = replace(POLICY, visit_at_dpd=20)

    diff = compare(history, sooner, DUE, through)

    assert diff.days_in_another_stage == 11  # DPD 20, 21, ..., 30
    assert diff.actual.escalations[-1].startswith("phone->visit on " + str(DUE + timedelta(days=31)))
    assert diff.whatif.escalations[-1] == f"phone->visit on {DUE + timedelta(days=20)}"
    assert diff.actual.final_stage == diff.whatif.final_stage == "visit"


def test_an_input_the_new_policy_refuses_is_listed_not_forced():
    through = DUE + timedelta(days=30)
    history = recorded([(10, "promise")], through)  # a promise 5 days ahead
    strict = CollectionPolicy(promise_max_days=3)

    diff = compare(history, strict, DUE, through)

    assert len(diff.refused) == 1 and diff.refused[0].startswith(f"PromiseMade of {DUE + timedelta(days=10)} refused")
    assert diff.differs


def test_a_stored_contact_whose_outcome_its_channel_cannot_have_is_listed_as_refused_not_a_crash():
    from datetime import datetime

    from states.events import ContactRecorded
    from tests.unit.conftest import contact_cmd

    day = DUE + timedelta(days=10)
    case, _ = LoggedCase.open("case-1", loan(term=6, method="equal_installment"), DEFAULT_LPR_TABLE)
    case.advance(day, POLICY)
    case.record_contact(contact_cmd(case, "call", "borrower", "invalid_number", datetime(day.year, day.month, day.day, 10)))
    # as a contact recorded before a visit's outcomes were checked was stored
    history = [replace(e, channel="visit", collectors=2) if isinstance(e, ContactRecorded) else e for e in case.log]
    made, refused = rerun(history, POLICY, day)
    assert refused == [(f"ContactRecorded of {day} refused: outcome: 'invalid_number' is not an outcome of channel 'visit', "
                        "which takes connected, promise_to_pay, no_answer, refused_to_talk, third_party_reached")]
    assert not any(isinstance(e, ContactRecorded) for e in made)
