"""The call-list facts a case row keeps give the lists the loaded case gives (issue 13: lists from rows).

``states.worklist.facts_record`` is written with every case saved; the morning
call lists and the visit list read it instead of loading each case. Over the
random histories of every kind of loan and operator action (the pinned close's
generator), with calls of every outcome added, the facts read back from their
stored JSON must give, on the day and on later days, the same call list entry
or the same reason for leaving the case out, the same DPD and overdue amount
(to the digit), and the same visit figures, as the case itself.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest

from states.caps import DEFAULT_LPR_TABLE
from states.case import CollectionCase
from states.errors import DomainError, UserError
from states.events import canonical_json, parse_json
from states.lifecycle import Stage
from states.worklist import (
    LISTED_STAGES, CallFacts, call_list, facts_from_record, facts_of, facts_record, wants_a_call, why_not_today,
)
from tests.unit.conftest import contact_cmd
from tests.unit.test_close_pinned import KINDS, POLICIES, _step, _terms

TEAMS = {"north": 60, "south": 40}
OUTCOMES = ("connected", "promise_to_pay", "no_answer", "busy", "invalid_number", "refused_to_talk")


def stored_facts(case: CollectionCase) -> CallFacts:
    """The facts as a list reads them back from the case row."""
    return facts_from_record(case.case_id, case.contract_no, parse_json(canonical_json(facts_record(case))))


def assert_same_lists(case: CollectionCase, days: list[date]) -> None:
    if case.stage not in LISTED_STAGES:  # no list reads the case: its row keeps none
        assert facts_record(case) is None
        facts = facts_of(case)  # what a list works out for another loan of the borrower
    else:
        facts = stored_facts(case)
        assert facts == facts_of(case)
    assert (facts.stage, facts.visit_due_on, facts.failed_visits) == (case.stage, case.visit_due_on, case.failed_visits)
    for as_of in days:
        assert str(facts.overdue_total(as_of)) == str(case.overdue_total(as_of)), as_of
        assert facts.dpd(as_of) == case.dpd(as_of), as_of
        assert wants_a_call(facts, as_of) == wants_a_call(case, as_of)
        assert why_not_today(facts, as_of) == why_not_today(case, as_of)
        from_case, from_facts = call_list([case], as_of, TEAMS), call_list([facts], as_of, TEAMS)
        assert [e.as_dict() for e in from_facts[0]] == [e.as_dict() for e in from_case[0]], as_of
        assert from_facts[1] == from_case[1], as_of


def _call(case: CollectionCase, rng: random.Random, day: date) -> None:
    at = datetime(day.year, day.month, day.day, rng.randrange(8, 20), rng.randrange(0, 60))
    party = rng.choice(["borrower", "borrower", "guarantor"])
    try:
        case.record_contact(contact_cmd(case, "call", party, rng.choice(OUTCOMES), at))
    except UserError:  # a call the conduct rules refuse is not made
        pass


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_the_stored_facts_give_the_loaded_cases_lists_on_random_histories(seed):
    rng = random.Random(seed)
    compared = calling = 0
    for n in range(40):
        terms = _terms(rng, n)
        policy = rng.choice(POLICIES)
        case, _ = CollectionCase.open(f"case-{seed}-{n}", terms, DEFAULT_LPR_TABLE)
        day = terms.disbursed_on
        for k in range(rng.randrange(4, 16)):
            day += timedelta(days=rng.randrange(0, 50))
            try:
                if rng.random() < 0.35 and not case.stage.is_closed and day >= case.accrued_through:
                    for _ in range(rng.randrange(1, 5)):
                        _call(case, rng, day)
                else:
                    _step(case, rng.choice(KINDS), rng, k, day, policy)
            except (UserError, DomainError):
                continue
            case.collect_events()
            after = max(day, case.accrued_through)
            assert_same_lists(case, [after, after + timedelta(days=1), after + timedelta(days=9), after + timedelta(days=40)])
            compared += 1
            calling += case.stage in (Stage.PHONE, Stage.VISIT)
    assert compared > 200 and calling > 20  # the histories reach the calling stages


def test_a_record_of_another_version_is_refused_by_name():
    terms = _terms(random.Random(1), 1)
    case, _ = CollectionCase.open("case-v", terms, DEFAULT_LPR_TABLE)
    case.advance(terms.first_due_on + timedelta(days=12), POLICIES[0])
    record = facts_record(case)
    record[0] = 99
    with pytest.raises(DomainError, match="case case-v: call-list facts of version 99; this code reads version 1"):
        facts_from_record("case-v", case.contract_no, record)
