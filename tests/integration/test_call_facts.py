"""The call and visit lists read the case rows' call-list facts, and give what the loaded cases give
(issue 13), on SQLite and PostgreSQL: with contacts, promises, pauses, payments, shared borrowers,
rows written before migration 0013 (no facts), and facts edited behind the store's back (verify)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from flows.bootstrap import bootstrap
from flows.handlers.cases import handle
from flows.handlers.worklists import CALLING_STAGES, call_list, visit_list
from models.audit import verify
from models.tables import cases
from states import worklist
from states.commands import MakePromise, PauseCase, RecordContact
from states.contact import borrower_day
from tests.integration.builders import FIRST_DUE, POLICY, advance, case_id, opened, pay

DAY = FIRST_DUE + timedelta(days=12)  # the phone stage
LOANS = 24


@pytest.fixture
def app(store):
    # loans 1-3 and 4-5 are two borrowers' (the caps count across their loans); the rest one each
    borrowers = {1: "B-ONE", 2: "B-ONE", 3: "B-ONE", 4: "B-TWO", 5: "B-TWO"}
    store.add_cases([opened(n, **({"borrower_id": borrowers[n]} if n in borrowers else {})) for n in range(1, LOANS + 1)])
    ids = [case_id(n) for n in range(1, LOANS + 1)]
    advance(store, ids, DAY - timedelta(days=1))
    app = bootstrap(engine=store.engine, policy=POLICY, clock=lambda: DAY)
    at = datetime(DAY.year, DAY.month, DAY.day, 9)
    for n, outcome in ((1, "connected"), (2, "connected"), (3, "connected"), (4, "no_answer"), (6, "invalid_number"), (7, "busy")):
        handle(RecordContact(case=case_id(n), operator="op-1", channel="call", party="borrower", outcome=outcome, contacted_at=at), app)
    handle(MakePromise(case=case_id(8), operator="op-1", amount=Decimal("100.00"), promised_on=DAY + timedelta(days=3), made_on=DAY), app)
    handle(PauseCase(case=case_id(9), operator="op-1", reason="dispute", until=DAY + timedelta(days=5), made_on=DAY), app)
    pay(store, case_id(10), "50.00", DAY, "pay-10")
    return app


def from_loaded_cases(app, as_of):
    """The call list as it was built before the facts: every calling case loaded and judged."""
    loaded = app.store.load(app.store.case_ids_in_stages(CALLING_STAGES))
    several = app.store.borrowers_with_several_loans()
    contacts = {i: c.contact for i, c in app.store.load({i for ids in several.values() for i in ids}).items()}
    elsewhere = {i: borrower_day([contacts[o] for o in several[i]], as_of) for i in loaded if i in several}
    return worklist.call_list(loaded.values(), as_of, app.policy.teams, None, elsewhere)


def assert_lists_as_from_loaded_cases(app, days):
    for as_of in days:
        calls = call_list(app, as_of)
        entries, left_out = from_loaded_cases(app, as_of)
        assert [e.as_dict() for e in calls.entries] == [e.as_dict() for e in entries], as_of
        assert calls.left_out == left_out, as_of


def test_the_lists_from_the_rows_are_the_lists_from_the_loaded_cases(app):
    days = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=4), DAY + timedelta(days=30)]
    assert_lists_as_from_loaded_cases(app, days)
    reasons = {o.reason for o in call_list(app, DAY).left_out}
    assert "3 connected calls already today (with the borrower's other loans)" in reasons  # the facts count across loans
    assert "the borrower's number is invalid: trace a new one or visit" in reasons
    ids = [case_id(n) for n in range(1, LOANS + 1)]
    advance(app.store, ids, DAY + timedelta(days=30))  # the visit stage: called between visits only
    later = DAY + timedelta(days=31)
    assert {e.stage for e in call_list(app, later).entries} == {"visit"}
    assert_lists_as_from_loaded_cases(app, [later, later + timedelta(days=7)])
    loaded = app.store.load(app.store.case_ids_in_stages(("visit",)))
    assert [r["case_id"] for r in visit_list(app, later)] == sorted(i for i, c in loaded.items() if c.visit_due_on is not None)
    assert verify(app.store.engine).ok


def test_a_row_without_facts_is_loaded_and_gives_the_same_list_and_its_next_save_writes_them(app):
    before = call_list(app, DAY)
    with app.store.engine.begin() as conn:  # as rows written before migration 0013 are
        conn.execute(update(cases).where(cases.c.case_id.in_([case_id(1), case_id(5), case_id(11)])).values(call_facts=None))
    assert call_list(app, DAY) == before
    assert verify(app.store.engine).ok  # no facts is not a finding
    advance(app.store, [case_id(11)], DAY + timedelta(days=1))
    assert app.store.call_facts([case_id(11)])[case_id(11)] == worklist.facts_of(app.store.load([case_id(11)])[case_id(11)])


def test_facts_edited_behind_the_stores_back_are_found_by_verify(app):
    with app.store.engine.begin() as conn:
        conn.execute(update(cases).where(cases.c.case_id == case_id(12)).values(call_facts='[1,"phone",null,null,0,[{},0,false],null,[],"0.00",null,0]'))
        conn.execute(update(cases).where(cases.c.case_id == case_id(13)).values(call_facts="not json"))
    report = verify(app.store.engine)
    assert report.failing_cases == [case_id(12), case_id(13)]
    assert {f.problem for f in report.findings} == {"call-list facts differ from replay (the call and visit lists read them): rebuild the case"}

