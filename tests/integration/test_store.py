"""The case store: events and projections written together, guarded, in bulk."""

from __future__ import annotations

import hashlib

import json
import threading
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select, update

from models.errors import CaseNotFound, ConcurrencyError, DuplicatePayment, StoreError, TermsConflict
from models.store import CaseStore, chain_hash, terms_hash
from models.tables import GENESIS_HASH, cases, events, loans, payments
from states.loan import TERM_FIELDS, LoanTerms
from states.case import CollectionCase
from states.events import PaymentReceived
from states.policy import CollectionPolicy
from tests.integration.builders import POLICY, advance, book, opened, pay, payment


@contextmanager
def count_statements(store: CaseStore):
    executed: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        executed.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield executed
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def test_the_terms_hash_of_a_booked_contract_never_changes():
    """A re-import compares this hash with the stored one: its input (``LoanTerms.record()``) keeps its spelling."""
    terms = LoanTerms("HT-000001", "B000001", Decimal("12000.00"), Decimal("0.18"), 12, "equal_installment",
                      date(2026, 9, 15), date(2026, 10, 15), schedule_interest="actual_days")
    # the hash it was booked with before schedule_interest existed (an actual_days plan, the value left out)
    assert terms_hash(terms) == "5cf54374c619bde4118c887c865f8e4ee469d30974d6193da10491584a7958c7"
    monthly = LoanTerms("HT-000001", "B000001", Decimal("12000.00"), Decimal("0.18"), 12, "equal_installment",
                        date(2026, 9, 15), date(2026, 10, 15))
    text = (
        '{"annual_rate":"0.18","borrower_id":"B000001","cap_regime":"licensed","compound_interest":false,'
        '"contract_date":"2026-09-15","contract_no":"HT-000001","day_count":"ACT/360","disbursed_on":"2026-09-15",'
        '"first_due_on":"2026-10-15","late_fee":"0.00","late_fee_rate":"0.00","penalty_uplift":"0.5",'
        '"principal":"12000.00","repayment_method":"equal_installment","schedule_interest":"monthly","term_months":12}'
    )
    assert terms_hash(monthly) == hashlib.sha256(text.encode()).hexdigest()


def test_the_loans_table_holds_each_term_in_its_column():
    """Each term has its column, under its name (an amount as ``<name>_fen``); nothing else but the store's own."""
    columns = set(loans.c.keys())
    stored = {name if name in columns else f"{name}_fen" for name in TERM_FIELDS}
    assert stored <= columns and columns - stored == {"case_id", "terms_hash", "booked_at"}


def test_booking_writes_loan_case_and_opening_event(store):
    loan, case, opening = opened(1)
    result = store.add_cases([(loan, case, opening)])
    assert result.booked == (case.case_id,) and result.already_booked == ()
    row = store.case_row(case.case_id)
    assert row.projection == case.projection()
    assert row.last_hash == chain_hash(GENESIS_HASH, opening[0].canonical_json())
    assert store.events(case.case_id) == opening


def test_rebooking_the_same_contract_is_a_no_op_and_other_terms_are_refused(store):
    book(store, 3)
    digest = store.digest()
    again = store.add_cases([opened(n) for n in (1, 2, 3)])
    assert again.booked == () and again.already_booked == ("MF-000001", "MF-000002", "MF-000003")
    assert store.digest() == digest
    with pytest.raises(TermsConflict, match="MF-000002"):
        store.add_cases([opened(2, principal=Decimal("999.00"))])


def test_events_and_projection_are_written_in_one_transaction(store):
    (cid,) = book(store, 1)
    advance(store, [cid], date(2024, 3, 20))
    stored = store.events(cid)
    row = store.case_row(cid)
    replayed = CollectionCase.replay(stored)
    assert row.projection == replayed.projection()
    assert row.projection.version == len(stored) == stored[-1].seq
    with store.engine.connect() as conn:
        last_hash = conn.execute(select(events.c.hash).where(events.c.case_id == cid, events.c.seq == len(stored))).scalar()
    assert row.last_hash == last_hash


def test_a_failing_write_leaves_neither_events_nor_projection(store):
    first, second = book(store, 2)
    pay(store, first, "100.00", date(2024, 2, 1), "BANK-1")
    before_digest = store.digest()
    case = store.load_one(second)
    version = case.version
    new_events = case.record_payment(payment(case, "100.00", date(2024, 2, 1), "BANK-1"), POLICY)  # the same bank transaction
    with pytest.raises(DuplicatePayment, match="BANK-1.*already recorded on case CASE-000001"):
        store.save([(case, new_events)], expected_versions={second: version})
    assert store.digest() == before_digest
    assert store.case_row(second).projection.version == version


def test_a_second_writer_from_the_same_version_gets_a_concurrency_error(store):
    (cid,) = book(store, 1)
    worker_a, worker_b = store.load_one(cid), store.load_one(cid)
    loaded_at = worker_a.version
    store.save([(worker_a, worker_a.advance(date(2024, 3, 1), POLICY))], expected_versions={cid: loaded_at})
    written = store.digest()
    late = worker_b.record_payment(payment(worker_b, "50.00", date(2024, 2, 1), "BANK-LATE"), POLICY)
    with pytest.raises(ConcurrencyError, match=rf"case {cid}.*expected version {loaded_at}, found version {worker_a.version}"):
        store.save([(worker_b, late)], expected_versions={cid: loaded_at})
    assert store.digest() == written
    assert not store.payment_exists("BANK-LATE")


def test_two_simultaneous_writers_of_one_case_one_wins(store):
    (cid,) = book(store, 1)
    workers = [store.load_one(cid) for _ in range(4)]
    loaded_at = workers[0].version
    changes = [(w, w.advance(date(2024, 3, 1), POLICY)) for w in workers]
    barrier = threading.Barrier(len(workers))
    outcomes: list[str] = []

    def write(change):
        barrier.wait()
        try:
            store.save([change], expected_versions={cid: loaded_at})
            outcomes.append("saved")
        except ConcurrencyError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(c,)) for c in changes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["saved"]
    assert store.case_row(cid).projection.version == workers[0].version
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == workers[0].version


def test_save_refuses_events_that_do_not_continue_the_history(store):
    (cid,) = book(store, 1)
    case = store.load_one(cid)
    new_events = case.advance(date(2024, 3, 1), POLICY)
    with pytest.raises(StoreError, match="do not take version 0"):
        store.save([(case, new_events)], expected_versions={cid: 0})
    with pytest.raises(StoreError, match="no expected version"):
        store.save([(case, new_events)], expected_versions={})


def test_a_batch_of_thousands_loads_and_saves_in_a_few_statements(store):
    ids = book(store, 2000)
    day = date(2024, 2, 16)
    assert store.due_case_ids(day) == sorted(ids)
    with count_statements(store) as loading:
        loaded = store.load(ids)
    assert list(loaded) == ids and len(loading) <= 10
    versions = {cid: c.version for cid, c in loaded.items()}
    changes = [(c, c.advance(day, POLICY)) for c in loaded.values()]
    with count_statements(store) as saving:
        written = store.save(changes, expected_versions=versions)
    assert written == sum(len(evs) for _, evs in changes) > 2000
    assert len(saving) <= 20, saving
    assert store.due_case_ids(day) == []
    again = store.load(ids[:50] + ids[-50:])
    assert all(again[c].projection() == loaded[c].projection() for c in again)
    summary = store.portfolio_summary()
    assert summary.total.cases == 2000
    assert {s.stage: s.cases for s in summary.stages} == {"overdue": 2000}


def test_a_stuck_case_is_retried_by_every_close_until_its_fix_lands(store):
    ids = book(store, 3)
    day, next_day = date(2024, 2, 16), date(2024, 2, 17)
    store.mark_stuck(ids[1], day, "InjectedFault: boom")
    assert store.due_case_ids(day) == ids  # rerunning the failed date retries it
    assert store.due_case_ids(next_day) == ids  # and so does the next close
    assert store.due_case_ids(next_day, limit=1) == [ids[0]]
    (stuck,) = store.stuck_cases()
    assert (stuck.case_id, stuck.stuck_on, stuck.error) == (ids[1], day, "InjectedFault: boom")
    store.clear_stuck(ids[1])
    assert store.stuck_cases() == [] and store.due_case_ids(next_day) == ids
    with pytest.raises(CaseNotFound, match="NOPE"):
        store.mark_stuck("NOPE", day, "x")


def test_closed_cases_are_never_due(store):
    (cid,) = book(store, 1)
    case = store.load_one(cid)
    version = case.version
    new_events = case.record_payment(payment(case, "20000.00", date(2024, 2, 1), "PAYOFF-1"), POLICY)
    store.save([(case, new_events)], expected_versions={cid: version})
    assert store.case_row(cid).projection.stage == "settled"
    assert store.due_case_ids(date(2030, 1, 1)) == []


def test_save_batch_quarantines_and_clears_in_the_same_transaction(store):
    ids = book(store, 3)
    day = date(2024, 2, 16)
    store.mark_stuck(ids[0], date(2024, 2, 15), "old error")
    loaded = store.load(ids)
    versions = {cid: c.version for cid, c in loaded.items()}
    changes = [(loaded[cid], loaded[cid].advance(day, POLICY)) for cid in ids[:2]]
    store.save_batch(changes, expected_versions=versions, stuck={ids[2]: "ValueError: bad"}, business_date=day, cleared=ids[:2])
    assert [(s.case_id, s.error) for s in store.stuck_cases()] == [(ids[2], "ValueError: bad")]
    assert store.case_row(ids[0]).projection.version > 1


def test_a_case_is_found_by_id_or_contract_number(store):
    book(store, 2)
    assert store.resolve_case_id("MF-000002") == "CASE-000002"
    assert store.resolve_case_id("CASE-000001") == "CASE-000001"
    assert store.case_row("MF-000001").case_id == "CASE-000001"
    with pytest.raises(CaseNotFound, match="'MF-404'"):
        store.resolve_case_id("MF-404")
    with pytest.raises(CaseNotFound, match="CASE-404"):
        store.load(["CASE-000001", "CASE-404"])
    loaded, unreadable = store.load_tolerant(["CASE-000001", "CASE-404"])
    assert list(loaded) == ["CASE-000001"] and unreadable == {"CASE-404": "no such case"}


def test_events_as_of_a_date_are_the_history_up_to_it(store):
    (cid,) = book(store, 1)
    advance(store, [cid], date(2024, 4, 1))
    all_events = store.events(cid)
    early = store.events(cid, as_of=date(2024, 2, 20))
    assert early == [e for e in all_events if e.business_date <= date(2024, 2, 20)]
    assert early == all_events[: len(early)] and 1 < len(early) < len(all_events)
    assert CollectionCase.replay(early).projection().accrued_through <= date(2024, 2, 20)


def test_payments_are_recorded_with_their_event(store):
    (cid,) = book(store, 1)
    new_events = pay(store, cid, "916.80", date(2024, 2, 15), "BANK-0215-01")
    (received,) = [e for e in new_events if isinstance(e, PaymentReceived)]
    assert store.payment_exists("BANK-0215-01") and not store.payment_exists("BANK-0215-02")
    with store.engine.connect() as conn:
        row = conn.execute(select(payments)).mappings().one()
    assert (row["case_id"], row["seq"], row["amount_fen"], row["received_on"]) == (
        cid,
        received.seq,
        91680,
        date(2024, 2, 15),
    )


def test_an_unreadable_snapshot_is_replaced_by_a_replay(store):
    (cid,) = book(store, 1)
    advance(store, [cid], date(2024, 3, 1))
    expected = store.load_one(cid).projection()
    with store.engine.begin() as conn:
        conn.execute(update(cases).where(cases.c.case_id == cid).values(snapshot=json.dumps({"v": 0})))
    assert store.load_one(cid).projection() == expected
    store.rebuild_projections([cid])
    with store.engine.connect() as conn:
        assert json.loads(conn.execute(select(cases.c.snapshot)).scalar())[0] == CollectionCase.SNAPSHOT_VERSION  # packed (v11)


def test_business_days_are_recorded(store):
    assert store.last_closed_business_date() is None
    store.begin_business_day(date(2024, 3, 1))
    assert store.business_day(date(2024, 3, 1)).status == "running"
    store.finish_business_day(date(2024, 3, 1), advanced=10, stuck=0)
    store.begin_business_day(date(2024, 3, 2))
    store.finish_business_day(date(2024, 3, 2), advanced=5, stuck=1)
    day = store.business_day(date(2024, 3, 2))
    assert (day.status, day.cases_advanced, day.stuck) == ("failed", 5, 1) and day.finished_at is not None
    assert store.last_closed_business_date() == date(2024, 3, 1)
    with pytest.raises(StoreError, match="'done'"):
        store.record_business_day(date(2024, 3, 3), "done")


def test_policies_are_versioned_by_fingerprint(store):
    default = CollectionPolicy()
    assert store.save_policy(default) == 1
    assert store.save_policy(CollectionPolicy()) == 1
    stricter = CollectionPolicy(phone_at_dpd=2)
    assert store.save_policy(stricter) == 2
    assert store.stored_policy() == stricter
    assert store.stored_policy(1).fingerprint() == default.fingerprint()


def test_the_digest_is_unchanged_by_a_day_run_twice(store):
    ids = book(store, 20)
    day = date(2024, 3, 5)
    advance(store, ids, day)
    digest = store.digest()
    assert advance(store, ids, day) == 0
    assert store.digest() == digest
    advance(store, ids, date(2024, 3, 20))
    assert store.digest() != digest


def test_the_digest_is_the_same_on_both_databases(store, tmp_path):
    """Same history and projections give the same digest whatever the database (code-point order)."""
    ids = book(store, 12)
    advance(store, ids, date(2024, 3, 5))
    from models.db import make_engine, upgrade

    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other)
    twin = CaseStore(other)
    book(twin, 12)
    advance(twin, ids, date(2024, 3, 5))
    same = twin.digest() == store.digest()
    other.dispose()
    assert same
