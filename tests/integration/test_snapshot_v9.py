"""A store written before snapshot v10 (each snapshot holding its opening event) loads, verifies and goes on.

``fixtures/snapshots_v9.json`` holds the snapshots the release before v10
wrote for the history ``write_history`` makes (and the last hash of each
case then; the events' format has changed since, the history has not). The test
writes that history again, puts the old snapshots back in the case rows, and
loads them: from the snapshots themselves, not by replay.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from models.audit import verify
from models.tables import cases
from states.case import CollectionCase
from states.snapshot import record_of
from tests.integration.builders import FIRST_DUE, POLICY, advance, book, pay

FIXTURE = Path(__file__).parent / "fixtures" / "snapshots_v9.json"


def write_history(store) -> list[str]:
    """Three cases: one only booked, one overdue for 40 days, one paid in part and overdue."""
    ids = book(store, 3, start=901)
    advance(store, ids[1:], FIRST_DUE + timedelta(days=1))
    pay(store, ids[2], "500.00", FIRST_DUE + timedelta(days=3), "P-V9-1")
    advance(store, ids[1:], FIRST_DUE + timedelta(days=40))
    return ids


def test_v9_snapshots_written_by_the_release_before_load_as_they_are_verify_and_go_on(store, monkeypatch):
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    ids = write_history(store)
    # the same history, in the events' newer format (compact payloads since CaseOpened and ChargesAccrued
    # v3, so not the same hashes): each case at the version its old snapshot was taken at
    old = fixture["snapshots"]
    assert {case_id: case.version for case_id, case in store.load(ids).items()} == {i: json.loads(t)["version"] for i, t in old.items()}
    assert sorted(old) == ids and {json.loads(text)["v"] for text in old.values()} == {9}
    assert all("opened" in json.loads(text) for text in old.values())
    with store.engine.begin() as conn:
        for case_id in ids:
            conn.execute(update(cases).where(cases.c.case_id == case_id).values(snapshot=old[case_id]))

    replayed = {case_id: CollectionCase.replay(store.events(case_id), case_id) for case_id in ids}
    with monkeypatch.context() as patch:  # loaded from the v9 snapshots, not rebuilt by replay
        patch.setattr(CollectionCase, "replay", classmethod(lambda cls, *a, **k: pytest.fail("replayed a v9 snapshot")))
        loaded = store.load(ids)
    for case_id in ids:
        assert loaded[case_id].snapshot() == replayed[case_id].snapshot()
        assert loaded[case_id].terms == replayed[case_id].terms
        assert loaded[case_id].projection() == replayed[case_id].projection()
    report = verify(store.engine)
    assert report.ok, [str(f) for f in report.findings]

    later = FIRST_DUE + timedelta(days=75)
    expected = {case_id: [e.canonical_json() for e in replayed[case_id].advance(later, POLICY)] for case_id in ids}
    versions = {case_id: case.version for case_id, case in loaded.items()}
    changes = [(case, case.advance(later, POLICY)) for case in loaded.values()]
    assert {case.case_id: [e.canonical_json() for e in new] for case, new in changes} == expected
    store.save(changes, expected_versions=versions)
    with store.engine.connect() as conn:
        written = dict(conn.execute(select(cases.c.case_id, cases.c.snapshot).where(cases.c.case_id.in_(ids))).all())
    assert {json.loads(text)[0] for text in written.values()} == {CollectionCase.SNAPSHOT_VERSION}  # packed (v11)
    assert all("opened" not in record_of(json.loads(text), case_id) for case_id, text in written.items())
    assert all(len(written[case_id]) < len(old[case_id]) / 2 for case_id in ids)
    for case_id, case in store.load(ids).items():
        assert case.snapshot() == replayed[case_id].snapshot()
    report = verify(store.engine)
    assert report.ok, [str(f) for f in report.findings]
