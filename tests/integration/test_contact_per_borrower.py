"""Contact caps across a borrower's loans, through the handler, on SQLite and PostgreSQL (DOMAIN.md §6)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from flows.bootstrap import bootstrap
from flows.handlers.cases import handle
from flows.handlers.worklists import call_list
from models.errors import ConcurrencyError
from states.commands import RecordContact
from states.events import ContactRecorded, ContactRefused
from tests.integration.builders import FIRST_DUE, POLICY, advance, case_id, opened

DAY = FIRST_DUE + timedelta(days=10)  # the phone stage


@pytest.fixture
def app(store):
    # loans 1 and 2 are one borrower's; loan 3 is someone else's
    store.add_cases([opened(1, borrower_id="B-SAME"), opened(2, borrower_id="B-SAME"), opened(3)])
    advance(store, [case_id(n) for n in (1, 2, 3)], DAY)
    return bootstrap(engine=store.engine, policy=POLICY, clock=lambda: DAY)


def contact(n: int, hour: int, outcome: str = "connected") -> RecordContact:
    return RecordContact(
        case=case_id(n), operator="op-1", channel="call", party="borrower", outcome=outcome,
        contacted_at=datetime(DAY.year, DAY.month, DAY.day, hour),
    )


def test_the_fourth_connected_call_of_the_day_is_refused_on_the_borrowers_other_loan(app):
    recorded = [handle(contact(n, hour), app) for n, hour in ((1, 9), (2, 10), (1, 11))]
    assert all(isinstance(e, ContactRecorded) for (e,) in recorded)
    (refused,) = handle(contact(2, 12), app)
    assert isinstance(refused, ContactRefused)
    assert refused.rule == "at most 3 connected calls a day per borrower (2 of them on the borrower's other loans)"
    assert isinstance(handle(contact(3, 12), app)[0], ContactRecorded)  # another borrower's loan: own count
    # the refusal is recorded on the loan called, and the call list leaves both loans out today
    assert [type(e).__name__ for e in app.store.events(case_id(2))][-1] == "ContactRefused"
    listed = call_list(app, DAY)
    assert {e.case_id for e in listed.entries} == {case_id(3)}
    assert {o.case_id: o.reason for o in listed.left_out} == {
        case_id(1): "3 connected calls already today (with the borrower's other loans)",  # 2 on it, 1 on loan 2
        case_id(2): "3 connected calls already today (with the borrower's other loans)",
    }


def test_a_contact_on_the_other_loan_meanwhile_refuses_the_commit_and_nothing_is_written(app):
    with app.uow() as uow:
        case = uow.cases.get(case_id(1))
        others = uow.cases.read_only(app.store.borrower_case_ids(case.case_id))
        assert [o.case_id for o in others] == [case_id(2)]
        case.record_contact(contact(1, 9), elsewhere=[o.contact for o in others])
        handle(contact(2, 10), app)  # another collector, at the same moment, on the other loan
        before = len(app.store.events(case_id(1)))
        with pytest.raises(ConcurrencyError, match=case_id(2)):
            uow.commit()
    assert len(app.store.events(case_id(1))) == before
    assert isinstance(handle(contact(1, 9), app)[0], ContactRecorded)  # tried again, it goes through
