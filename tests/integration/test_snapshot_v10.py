"""A store written before snapshot v11 and call-list facts v2 (decimal text, ISO dates, keyed rows) loads,
lists, verifies and goes on.

``fixtures/snapshots_v10.json`` holds the snapshots and call-list facts the release before v11 wrote for
the history ``write_history`` makes (``fixtures/make_snapshots_v10.py`` wrote it). The test writes that
history again (the same events: with each ``ChargesAccrued`` in its v3 form, the same hashes), puts the old snapshots and facts
back in the case rows, and loads them: from the snapshots themselves, not by replay; the lists read the
v1 facts as they are; the next save rewrites both in the current versions.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from models.audit import verify
from models.recorder import chain_hash
from models.tables import GENESIS_HASH, cases
from states.case import CollectionCase
from states.commands import MakePromise, RecordContact
from states.snapshot import SNAPSHOT_VERSION
from states.worklist import FACTS_VERSION, facts_of
from tests.integration.builders import FIRST_DUE, OPERATOR, POLICY, advance, book, pay
from tests.unit.conftest import as_v3_json

FIXTURE = Path(__file__).parent / "fixtures" / "snapshots_v10.json"


def v3_last_hash(history) -> str:
    last = GENESIS_HASH
    for event in history:
        last = chain_hash(last, as_v3_json(event))
    return last


def write_history(store) -> list[str]:
    """Four cases: one only booked, one overdue for 40 days (visit stage), one paid in part and overdue
    as long, one in the phone stage with an unanswered call and a promise to pay."""
    ids = book(store, 4, start=1001)
    advance(store, ids[1:], FIRST_DUE + timedelta(days=1))
    pay(store, ids[2], "500.00", FIRST_DUE + timedelta(days=3), "P-V10-1")
    advance(store, ids[1:], FIRST_DUE + timedelta(days=12))
    called_on = FIRST_DUE + timedelta(days=12)
    case = store.load_one(ids[3])
    version = case.version
    new = case.record_contact(RecordContact(
        case=case.case_id, operator=OPERATOR, channel="call", party="borrower", outcome="no_answer",
        contacted_at=datetime(called_on.year, called_on.month, called_on.day, 10, 15),
    ), POLICY)
    new += case.make_promise(MakePromise(
        case=case.case_id, operator=OPERATOR, amount="300.00", promised_on=called_on + timedelta(days=5), made_on=called_on,
    ), POLICY)
    store.save([(case, new)], expected_versions={case.case_id: version})
    advance(store, ids[1:3], FIRST_DUE + timedelta(days=40))
    return ids


@pytest.fixture
def fixture():
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_v10_snapshots_and_v1_facts_written_by_the_release_before_load_list_verify_and_go_on(store, monkeypatch, fixture):
    ids = write_history(store)
    old, old_facts = fixture["snapshots"], fixture["call_facts"]
    # the events are as they were: the same chains, a ChargesAccrued in the v3 form the fixture's release wrote
    assert {case_id: v3_last_hash(store.events(case_id)) for case_id in ids} == fixture["last_hash"]
    assert sorted(old) == ids and {json.loads(text)["v"] for text in old.values()} == {10}
    assert {json.loads(text)[0] for text in old_facts.values() if text is not None} == {1}
    assert sum(text is not None for text in old_facts.values()) >= 2  # the listed cases keep facts
    with store.engine.begin() as conn:
        for case_id in ids:
            conn.execute(update(cases).where(cases.c.case_id == case_id).values(snapshot=old[case_id], call_facts=old_facts[case_id]))

    replayed = {case_id: CollectionCase.replay(store.events(case_id), case_id) for case_id in ids}
    with monkeypatch.context() as patch:  # loaded from the v10 snapshots and v1 facts, not rebuilt by replay
        patch.setattr(CollectionCase, "replay", classmethod(lambda cls, *a, **k: pytest.fail("replayed a v10 snapshot")))
        loaded = store.load(ids)
        facts = store.call_facts(ids)
    for case_id in ids:
        assert loaded[case_id].snapshot() == replayed[case_id].snapshot()
        assert loaded[case_id].terms == replayed[case_id].terms
        assert loaded[case_id].projection() == replayed[case_id].projection()
        assert facts[case_id] == facts_of(replayed[case_id])
    report = verify(store.engine)
    assert report.ok, [str(f) for f in report.findings]

    later = FIRST_DUE + timedelta(days=75)
    expected = {case_id: [e.canonical_json() for e in replayed[case_id].advance(later, POLICY)] for case_id in ids}
    versions = {case_id: case.version for case_id, case in loaded.items()}
    changes = [(case, case.advance(later, POLICY)) for case in loaded.values()]
    assert {case.case_id: [e.canonical_json() for e in new] for case, new in changes} == expected
    store.save(changes, expected_versions=versions)
    with store.engine.connect() as conn:
        written = {i: (s, f) for i, s, f in conn.execute(select(cases.c.case_id, cases.c.snapshot, cases.c.call_facts).where(cases.c.case_id.in_(ids)))}
    assert {json.loads(s)[0] for s, _ in written.values()} == {SNAPSHOT_VERSION}  # packed (v11)
    assert {json.loads(f)[0] for _, f in written.values() if f is not None} <= {FACTS_VERSION}
    for case_id, case in store.load(ids).items():
        assert case.snapshot() == replayed[case_id].snapshot()
    for case_id, stored in store.call_facts(ids).items():
        assert stored == facts_of(replayed[case_id])
    report = verify(store.engine)
    assert report.ok, [str(f) for f in report.findings]
