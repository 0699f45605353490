"""verify --incremental: every chain rehashed, only changed cases replayed, and every edit a full
verify catches still caught, finding for finding (``models.checkpoints``)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import delete, func, select, update

import models.audit
import models.checkpoints
from models.audit import verify
from models.sql import driver_rows, mark
from models.store import CaseStore
from models.tables import cases, credit_reports, events, loans, payments, verified_cases
from states.errors import UserError
from states.snapshot import packed, record_of
from tests.integration.builders import advance, book, disable_event_triggers, pay

KEY = b"k" * 32
TARGET = "CASE-000002"


@pytest.fixture
def keyed(store: CaseStore) -> CaseStore:
    """Three keyed cases with history, the second of them with a payment."""
    keyed = CaseStore(store.engine, chain_key=KEY)
    ids = book(keyed, 3)
    advance(keyed, ids, date(2024, 4, 1))
    pay(keyed, TARGET, "500.00", date(2024, 4, 2), "BANK-0402-7")
    advance(keyed, ids, date(2024, 5, 1))
    return keyed


def incremental(store: CaseStore, **kwargs):
    return verify(store.engine, chain_key=KEY, incremental=True, **kwargs)


def checkpoint_count(store: CaseStore) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(verified_cases)).scalar_one()


def tamper(store: CaseStore, change) -> None:
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        change(conn)


def test_a_second_incremental_verify_replays_only_the_cases_that_changed(keyed):
    first = incremental(keyed)
    assert first.ok, first.findings
    assert (first.cases_checked, first.cases_replayed) == (3, 3) and checkpoint_count(keyed) == 3
    second = incremental(keyed)
    assert second.ok and (second.cases_replayed, second.events_checked) == (0, first.events_checked)
    pay(keyed, TARGET, "100.00", date(2024, 5, 2), "BANK-0502-1")
    third = incremental(keyed)
    assert third.ok and third.cases_replayed == 1 and third.events_checked > first.events_checked
    assert incremental(keyed).cases_replayed == 0


def test_a_full_verify_neither_reads_nor_writes_checkpoints(keyed):
    report = verify(keyed.engine, chain_key=KEY)
    assert report.ok and report.cases_replayed == 3 and checkpoint_count(keyed) == 0


def _payload_amount(conn):
    seq = conn.execute(select(events.c.seq).where(events.c.case_id == TARGET, events.c.type == "PaymentReceived")).scalar_one()
    payload = json.loads(conn.execute(select(events.c.payload).where(events.c.case_id == TARGET, events.c.seq == seq)).scalar_one())
    text = json.dumps({**payload, "amount": "5000.00"}, sort_keys=True, separators=(",", ":"))
    conn.execute(update(events).where(events.c.case_id == TARGET, events.c.seq == seq).values(payload=text))


def _snapshot(conn):
    stored = conn.execute(select(cases.c.snapshot).where(cases.c.case_id == TARGET)).scalar_one()
    record = record_of(json.loads(stored), TARGET)
    conn.execute(update(cases).where(cases.c.case_id == TARGET).values(snapshot=json.dumps(packed({**record, "charged": "9.99"}))))


def _newest_event_gone(conn):
    newest = conn.execute(select(func.max(events.c.seq)).where(events.c.case_id == TARGET)).scalar_one()
    conn.execute(delete(events).where(events.c.case_id == TARGET, events.c.seq == newest))


EDITS = {
    "a payment's amount in its event": _payload_amount,
    "the case row's total paid": lambda conn: conn.execute(update(cases).where(cases.c.case_id == TARGET).values(total_paid_fen=1)),
    "the snapshot": _snapshot,
    "the loans row's principal": lambda conn: conn.execute(update(loans).where(loans.c.case_id == TARGET).values(principal_fen=1)),
    "the payments row deleted": lambda conn: conn.execute(delete(payments).where(payments.c.case_id == TARGET)),
    "the newest event deleted": _newest_event_gone,
    "an old MAC": lambda conn: conn.execute(update(events).where(events.c.case_id == TARGET, events.c.mac.is_not(None)).values(mac="0" * 64)),
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_an_edit_after_a_checkpoint_gives_exactly_the_findings_of_a_full_verify(keyed, edit):
    assert incremental(keyed).ok
    tamper(keyed, edit)
    full, found = verify(keyed.engine, chain_key=KEY), incremental(keyed)
    assert not full.ok and full.failing_cases == [TARGET]
    assert found.findings == full.findings
    assert found.cases_replayed == 1  # the two untouched cases are not replayed again


def test_a_forged_copied_or_deleted_checkpoint_only_costs_a_replay(keyed):
    assert incremental(keyed).ok
    with keyed.engine.begin() as conn:  # another case's genuine checkpoint, copied onto the target
        other = conn.execute(select(verified_cases).where(verified_cases.c.case_id == "CASE-000001")).mappings().one()
        conn.execute(update(verified_cases).where(verified_cases.c.case_id == TARGET).values(mac=other["mac"]))
        conn.execute(delete(verified_cases).where(verified_cases.c.case_id == "CASE-000003"))
    report = incremental(keyed)
    assert report.ok and report.cases_replayed == 2 and checkpoint_count(keyed) == 3

    def forge(key: bytes):
        def edit_and_forge(conn):  # the row edited and a checkpoint made for it as verify would make it, under ``key``
            conn.execute(update(cases).where(cases.c.case_id == TARGET).values(total_paid_fen=1))
            history = list(driver_rows(
                conn, models.audit._EVENTS_OF_CASES.format(mark(conn)), models.audit._CHECKED_COLUMNS, [TARGET], yield_per=100
            ))
            row = conn.execute(select(cases).where(cases.c.case_id == TARGET)).mappings().one()
            loan = conn.execute(select(loans).where(loans.c.case_id == TARGET)).mappings().one()
            paid = {p["payment_id"]: (p["seq"], p["amount_fen"]) for p in conn.execute(select(payments).where(payments.c.case_id == TARGET)).mappings()}
            credit = conn.execute(select(credit_reports).where(credit_reports.c.case_id == TARGET)).mappings().all()
            digest = models.checkpoints.case_digest(models.audit._compared_rows(history, row, loan, credit, ([], []), paid))
            forged = models.checkpoints.checkpoint_mac(key, TARGET, row["version"], digest)
            conn.execute(update(verified_cases).where(verified_cases.c.case_id == TARGET).values(mac=forged))

        return edit_and_forge

    tamper(keyed, forge(b"not the chain key".ljust(32)))
    found = incremental(keyed)
    assert found.failing_cases == [TARGET] and found.findings == verify(keyed.engine, chain_key=KEY).findings
    tamper(keyed, forge(KEY))  # whoever holds the chain key can forge a checkpoint (and a MAC): it stays off the database
    assert incremental(keyed).ok and not verify(keyed.engine, chain_key=KEY).ok


def test_a_stuck_flag_is_no_change_but_other_code_replays_every_case(keyed, monkeypatch):
    assert incremental(keyed).ok
    with keyed.engine.begin() as conn:  # a quarantine sets the flags without an event
        conn.execute(update(cases).where(cases.c.case_id == TARGET).values(stuck=True, stuck_error="boom", stuck_on=date(2024, 5, 1)))
    assert incremental(keyed).cases_replayed == 0
    monkeypatch.setattr(models.checkpoints, "fingerprint", lambda: b"the rules of another release")
    assert incremental(keyed).cases_replayed == 3


def test_incremental_in_two_processes_replays_and_checkpoints_as_one_process(keyed, monkeypatch):
    monkeypatch.setattr(models.audit, "VERIFY_CHUNK", 2)  # 3 cases: two chunks over two processes
    two = incremental(keyed, workers=2)
    assert two.ok and two.cases_replayed == 3 and checkpoint_count(keyed) == 3
    assert incremental(keyed, workers=1).cases_replayed == 0
    tamper(keyed, EDITS["the snapshot"])
    assert incremental(keyed, workers=2).findings == verify(keyed.engine, chain_key=KEY, workers=1).findings


def test_incremental_needs_the_chain_key(keyed):
    with pytest.raises(UserError, match="verify --incremental needs the chain key"):
        verify(keyed.engine, incremental=True)
