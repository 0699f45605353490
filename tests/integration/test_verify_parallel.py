"""verify across processes reports what one process reports, finding for finding, in the same order."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import delete, update

import models.audit
from models.audit import verify
from models.store import CaseStore
from models.tables import cases, daily_event_counts, events
from states.snapshot import packed, record_of
from tests.integration.builders import advance, book, disable_event_triggers, pay


def test_verify_in_two_processes_finds_exactly_what_one_process_finds(store: CaseStore, monkeypatch):
    ids = book(store, 5)
    advance(store, ids, date(2024, 4, 1))
    pay(store, ids[1], "500.00", date(2024, 4, 2), "BANK-0402-7")
    advance(store, ids, date(2024, 5, 1))
    assert verify(store.engine, workers=2).ok
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        conn.execute(update(events).where(events.c.case_id == ids[1], events.c.seq == 3).values(business_date=date(2024, 1, 1)))
        conn.execute(update(cases).where(cases.c.case_id == ids[3]).values(total_paid_fen=1))
        snapshot = record_of(json.loads(conn.execute(cases.select().where(cases.c.case_id == ids[4])).mappings().one()["snapshot"]), ids[4])
        conn.execute(update(cases).where(cases.c.case_id == ids[4]).values(snapshot=json.dumps(packed({**snapshot, "charged": "9.99"}))))
    monkeypatch.setattr(models.audit, "VERIFY_CHUNK", 2)  # 5 cases: three chunks over two processes
    one, progress = verify(store.engine, workers=1), []
    two = verify(store.engine, workers=2, on_progress=progress.append)
    assert one.failing_cases == [ids[1], ids[3], ids[4]]
    assert two.findings == one.findings
    assert (two.cases_checked, two.events_checked) == (one.cases_checked, one.events_checked) == (5, one.events_checked)
    assert progress == [2, 4, 5]


def test_two_processes_report_the_totals_one_process_reports_and_only_when_the_cases_hold(store: CaseStore, monkeypatch):
    ids = book(store, 5)
    advance(store, ids, date(2024, 4, 1))
    advance(store, ids, date(2024, 5, 1))
    with store.engine.begin() as conn:
        conn.execute(delete(daily_event_counts).where(daily_event_counts.c.type == "ChargesAccrued"))
    monkeypatch.setattr(models.audit, "VERIFY_CHUNK", 2)  # the totals run in a worker beside three chunks
    one, two = verify(store.engine, workers=1), verify(store.engine, workers=2)
    assert [f for f in one.findings if "daily_event_counts" in str(f)], one.findings
    assert two.findings == one.findings
    with store.engine.begin() as conn:  # a case that fails: its events cannot be trusted, so no totals
        conn.execute(update(cases).where(cases.c.case_id == ids[2]).values(total_paid_fen=1))
    one, two = verify(store.engine, workers=1), verify(store.engine, workers=2)
    assert one.failing_cases == [ids[2]] and not [f for f in one.findings if "daily_event_counts" in str(f)]
    assert two.findings == one.findings

