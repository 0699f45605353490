"""Contact conduct across every party (DOMAIN.md §6): the lender and all its agencies count together.

An agency's collector records a contact with ``by="agency:NAME"``; the daily
limits (3 connected calls per borrower, 6 unanswered attempts per number,
per borrower-local day) count every contact on the case whoever made it.
Third parties only once the borrower is unreachable; only the borrower and
the debt-related parties (guarantor, co-borrower) may be asked to pay or
told of the debt.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from states.case import CollectionCase
from states.contact import FAILED_ATTEMPTS_BEFORE_THIRD_PARTY, MAX_CONNECTED_CALLS_A_DAY, MAX_UNANSWERED_A_DAY
from states.events import ContactRecorded, ContactRefused, event_from_record
from states.explain import describe
from states.parse import InputError
from states.vocabulary import CHANNEL_OUTCOMES, ContactChannel, ContactOutcome, ContactParty
from tests.unit.conftest import DUE, POLICY, contact_cmd, open_case

DAY = DUE + timedelta(days=10)  # the case is in the phone stage


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute)


def phone_case():
    case = open_case()
    case.advance(DAY, POLICY)
    return case


def record(case, channel="call", party="borrower", outcome="connected", when=None, **kw):
    (event,) = case.record_contact(contact_cmd(case, channel, party, outcome, when or at(10), **kw))
    return event


def test_the_lenders_and_two_agencies_connected_calls_share_the_three_a_day():
    case = phone_case()
    makers = ["lender", "agency:acme", "agency:beta", "agency:gamma"]
    results = [record(case, when=at(9 + i), by=by) for i, by in enumerate(makers)]
    assert [type(r) for r in results] == [ContactRecorded] * 3 + [ContactRefused]
    assert results[-1].by == "agency:gamma" and f"{MAX_CONNECTED_CALLS_A_DAY} connected calls" in results[-1].rule
    assert [r.by for r in results[:3]] == makers[:3]


def test_unanswered_attempts_on_one_number_count_every_party_that_dialled_it():
    case = phone_case()
    makers = ["lender", "agency:acme"] * 3 + ["agency:beta"]
    results = [record(case, outcome="no_answer", when=at(9, 5 * i), by=by) for i, by in enumerate(makers)]
    assert [type(r) for r in results] == [ContactRecorded] * 6 + [ContactRefused]
    assert f"{MAX_UNANSWERED_A_DAY} unanswered" in results[-1].rule


def test_an_agencys_failed_attempts_make_the_borrower_unreachable_for_a_third_party_contact():
    case = phone_case()
    assert isinstance(record(case, party="guarantor", by="agency:acme"), ContactRefused)
    for minute, by in zip((10, 20, 30), ("lender", "agency:acme", "agency:beta")):
        record(case, outcome="no_answer", when=at(9, minute), by=by)
    assert isinstance(record(case, party="guarantor", when=at(11), by="agency:acme"), ContactRecorded)


@pytest.mark.parametrize("party", ["guarantor", "co_borrower"])
def test_debt_related_parties_may_be_told_of_the_debt_and_asked_to_pay(party):
    case = phone_case()
    record(case, outcome="invalid_number", when=at(9))
    event = record(case, party=party, when=at(10), disclosed_debt=True, asked_to_pay=True, by="agency:acme")
    assert isinstance(event, ContactRecorded) and event.disclosed_debt and event.asked_to_pay


def test_the_debt_is_never_disclosed_to_anyone_else_and_the_refusal_is_recorded():
    case = phone_case()
    record(case, outcome="invalid_number", when=at(9))
    refused = record(case, party="other", when=at(10), disclosed_debt=True, by="agency:acme")
    assert isinstance(refused, ContactRefused) and "never disclosed" in refused.rule
    assert refused in case.log and refused.by == "agency:acme" and refused.disclosed_debt
    assert describe(refused).startswith("call to other by agency:acme (debt disclosed) at ")
    # the same contact that kept the debt to itself takes place
    assert isinstance(record(case, party="other", when=at(11)), ContactRecorded)


def test_nobody_but_the_borrower_and_debt_related_parties_is_asked_to_pay():
    case = phone_case()
    record(case, outcome="invalid_number", when=at(9))
    refused = record(case, party="other", when=at(10), asked_to_pay=True)
    assert isinstance(refused, ContactRefused) and "asked to pay" in refused.rule


def test_a_refused_contact_counts_towards_no_limit():
    case = phone_case()
    record(case, party="other", when=at(9), disclosed_debt=True)  # refused: borrower reachable, debt disclosed
    assert case.contact.on(DAY).connected == 0


@pytest.mark.parametrize(
    "value, message",
    [
        ("agency:", "by: 'agency:' is not who made a contact; use lender or agency:NAME"),
        ("agency:two words", "by (agency name): 'two words' contains spaces"),
        ("acme", "by: 'acme' is not who made a contact"),
    ],
)
def test_who_made_a_contact_is_the_lender_or_an_agency_by_name(value, message):
    case = phone_case()
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        contact_cmd(case, "call", "borrower", "connected", at(10), by=value)


@pytest.mark.parametrize(
    "channel, outcome",
    [("visit", "invalid_number"), ("visit", "busy"), ("sms", "busy"), ("letter", "refused_to_talk"), ("letter", "third_party_reached")],
)
def test_an_outcome_its_channel_cannot_have_is_refused_naming_both_and_what_the_channel_takes(channel, outcome):
    case = phone_case()
    takes = ", ".join(o.value for o in CHANNEL_OUTCOMES[ContactChannel(channel)])
    with pytest.raises(InputError, match=rf"^outcome: '{outcome}' is not an outcome of channel '{channel}', which takes {takes}$"):
        contact_cmd(case, channel, "borrower", outcome, at(10), collectors=2)
    assert outcome not in takes.split(", ") and CHANNEL_OUTCOMES[ContactChannel.CALL] == tuple(ContactOutcome)


def test_party_agency_name_is_the_borrower_contacted_by_that_agency():
    case = phone_case()
    cmd = contact_cmd(case, "call", "agency:acme", "connected", at(10))
    assert (cmd.party, cmd.by) == (ContactParty.BORROWER, "agency:acme")
    with pytest.raises(InputError, match=r"party: 'agency:acme' says the contact was made by that agency, but by is 'agency:beta'"):
        contact_cmd(case, "call", "agency:acme", "connected", at(10), by="agency:beta")


def test_yes_or_no_fields_take_text_as_a_form_or_file_gives_them():
    case = phone_case()
    assert contact_cmd(case, "call", "borrower", "connected", at(10), disclosed_debt="yes").disclosed_debt is True
    with pytest.raises(InputError, match="disclosed_debt: 'maybe' is not yes or no"):
        contact_cmd(case, "call", "borrower", "connected", at(10), disclosed_debt="maybe")


def test_a_version_1_contact_reads_as_the_lenders_with_nothing_said_of_the_debt():
    payload = {"channel": "call", "party": "borrower", "outcome": "connected", "contacted_at": "2026-03-10T10:00",
               "collectors": 1, "note": ""}
    old = event_from_record(case_id="c", seq=5, type="ContactRecorded", business_date="2026-03-10", actor="op-1",
                            schema_version=1, payload=payload)
    assert (old.by, old.disclosed_debt, old.asked_to_pay) == ("lender", False, False)
    refused = event_from_record(case_id="c", seq=6, type="ContactRefused", business_date="2026-03-10", actor="op-1",
                                schema_version=1, payload={"channel": "call", "party": "other",
                                                           "contacted_at": "2026-03-10T10:00", "rule": "x"})
    assert refused.by == "lender"


# --- property: whatever the sequence, the limits hold counting every party together --------

MAKERS = ["lender", "agency:acme", "agency:beta"]
contacts = st.lists(
    st.fixed_dictionaries({
        "by": st.sampled_from(MAKERS),
        "channel": st.sampled_from([ContactChannel.CALL] * 4 + [ContactChannel.SMS, ContactChannel.VISIT]),
        "party": st.sampled_from([ContactParty.BORROWER] * 3 + list(ContactParty)),
        "outcome": st.sampled_from([ContactOutcome.CONNECTED, ContactOutcome.NO_ANSWER] * 3 + list(ContactOutcome)),
        "day": st.integers(0, 2),
        "hour": st.integers(6, 23),
        "minute": st.integers(0, 59),
        "utc": st.booleans(),  # given in UTC: read in the borrower's zone (Asia/Shanghai, +8)
        "disclosed_debt": st.booleans(),
        "asked_to_pay": st.booleans(),
        "collectors": st.integers(1, 2),
    }).filter(lambda c: c["outcome"] in CHANNEL_OUTCOMES[c["channel"]]),  # a misfit is refused as a command
    min_size=1,
    max_size=60,
)


def _when(c: dict) -> datetime:
    local = at(c["hour"], c["minute"], DAY + timedelta(days=c["day"]))
    return (local - timedelta(hours=8)).replace(tzinfo=timezone.utc) if c["utc"] else local


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contacts)
def test_random_contacts_by_the_lender_and_agencies_never_exceed_the_limits_together(sequence):
    case = phone_case()
    for c in sequence:
        cmd = contact_cmd(case, c["channel"], c["party"], c["outcome"], _when(c), by=c["by"], collectors=c["collectors"],
                          disclosed_debt=c["disclosed_debt"], asked_to_pay=c["asked_to_pay"])
        (event,) = case.record_contact(cmd, "Asia/Shanghai")  # every contact is recorded, or its refusal is
        assert isinstance(event, (ContactRecorded, ContactRefused)) and event.by == c["by"]

    taken = [e for e in case.log if isinstance(e, ContactRecorded)]
    calls = [e for e in taken if e.channel == "call"]
    connected = Counter(e.contacted_at[:10] for e in calls if ContactOutcome(e.outcome).reached)
    unanswered = Counter((e.contacted_at[:10], e.party) for e in calls if not ContactOutcome(e.outcome).reached)
    assert max(connected.values(), default=0) <= MAX_CONNECTED_CALLS_A_DAY
    assert max(unanswered.values(), default=0) <= MAX_UNANSWERED_A_DAY
    # nobody outside the debt heard of it, and third parties only once the borrower was unreachable
    assert not [e for e in taken if e.party == "other" and (e.disclosed_debt or e.asked_to_pay)]
    assert not [e for e in taken if e.outcome == "third_party_reached" and (e.disclosed_debt or e.asked_to_pay)]
    failed, invalid = 0, False
    for e in taken:
        if e.party == "borrower":
            failed, invalid = (0, False) if ContactOutcome(e.outcome).reached else (failed + 1, invalid or e.outcome == "invalid_number")
        else:
            assert invalid or failed >= FAILED_ATTEMPTS_BEFORE_THIRD_PARTY, e
    # a limit is named only when it was reached by all the parties together
    for e in case.log:
        if isinstance(e, ContactRefused) and "connected calls" in e.rule:
            before = [t for t in taken if t.seq < e.seq and t.channel == "call" and ContactOutcome(t.outcome).reached]
            assert sum(t.contacted_at[:10] == e.contacted_at[:10] for t in before) == MAX_CONNECTED_CALLS_A_DAY
    assert CollectionCase.replay(case.log).contact == case.contact


# --- the outcomes of a call ------------------------------------------------------------------


def test_a_promise_to_pay_is_a_connected_call_and_busy_is_an_unanswered_attempt():
    case = phone_case()
    assert isinstance(record(case, outcome="promise_to_pay", when=at(9)), ContactRecorded)
    record(case, when=at(10))
    record(case, when=at(11))
    refused = record(case, outcome="promise_to_pay", when=at(12))
    assert isinstance(refused, ContactRefused) and f"{MAX_CONNECTED_CALLS_A_DAY} connected calls" in refused.rule
    busy = [record(case, outcome="busy", when=at(13, i)) for i in range(MAX_UNANSWERED_A_DAY + 1)]
    assert [type(e) for e in busy] == [ContactRecorded] * MAX_UNANSWERED_A_DAY + [ContactRefused]


def test_busy_calls_make_the_borrower_unreachable_and_a_promise_makes_them_reachable_again():
    case = phone_case()
    for i in range(FAILED_ATTEMPTS_BEFORE_THIRD_PARTY):
        record(case, outcome="busy", when=at(9, i))
    assert case.contact.borrower_unreachable
    record(case, outcome="promise_to_pay", when=at(10))
    assert not case.contact.borrower_unreachable


def test_someone_else_answering_is_an_attempt_and_may_not_hear_of_the_debt():
    case = phone_case()
    assert isinstance(record(case, outcome="third_party_reached", when=at(9)), ContactRecorded)
    assert case.contact.failed_in_a_row == 1
    told = record(case, outcome="third_party_reached", when=at(10), disclosed_debt=True)
    asked = record(case, outcome="third_party_reached", when=at(11), asked_to_pay=True)
    assert isinstance(told, ContactRefused) and isinstance(asked, ContactRefused)
    assert told.rule == "someone else answered: the debt is never disclosed to them nor are they asked to pay"
