"""verify proves the store matches its events; whoever edits the database directly is caught."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Connection, delete, insert, select, update

from models.audit import rebuild_case, timeline, verify
from models.store import CaseStore, chain_hash
from models.tables import cases, events
from states.events import SYSTEM, CaseReviewed, ChargesAccrued, PaymentReceived
from states.snapshot import packed, record_of
from tests.integration.builders import advance, book, disable_event_triggers, pay

TARGET = "CASE-000002"


@pytest.fixture
def portfolio(store: CaseStore) -> CaseStore:
    ids = book(store, 3)
    advance(store, ids, date(2024, 4, 1))
    pay(store, TARGET, "500.00", date(2024, 4, 2), "BANK-0402-7")
    advance(store, ids, date(2024, 5, 1))
    return store


def first_seq(store: CaseStore, kind: type) -> int:
    return next(e.seq for e in store.events(TARGET) if isinstance(e, kind))


def event_row(conn: Connection, seq: int) -> dict:
    return dict(conn.execute(select(events).where(events.c.case_id == TARGET, events.c.seq == seq)).mappings().one())


def set_event(conn: Connection, seq: int, **values) -> None:
    conn.execute(update(events).where(events.c.case_id == TARGET, events.c.seq == seq).values(**values))


def tamper(store: CaseStore, change) -> None:
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        change(conn)


def findings(store: CaseStore) -> list[tuple[int | None, str]]:
    report = verify(store.engine)
    assert not report.ok
    assert report.failing_cases == [TARGET], report.findings
    return [(f.seq, f.problem) for f in report.findings]


def test_a_clean_store_verifies(portfolio):
    progress: list[int] = []
    report = verify(portfolio.engine, on_progress=progress.append)
    assert report.ok, report.findings
    assert report.cases_checked == 3 and progress[-1] == 3
    with portfolio.engine.connect() as conn:
        assert report.events_checked == conn.execute(select(events.c.seq)).all().__len__()
    assert verify(portfolio.engine, case_ids=[TARGET]).cases_checked == 1


def test_a_changed_amount_is_caught(portfolio):
    seq = first_seq(portfolio, PaymentReceived)

    def change(conn):
        payload = json.loads(event_row(conn, seq)["payload"])
        set_event(conn, seq, payload=json.dumps({**payload, "amount": "5000.00"}, sort_keys=True, separators=(",", ":")))

    tamper(portfolio, change)
    found = findings(portfolio)
    assert any(s == seq and "hash does not match" in p for s, p in found)
    assert any(s is None and "projection total_paid: stored 500.00, replay gives 5000.00" in p for s, p in found)


def test_a_changed_date_is_caught(portfolio):
    seq = first_seq(portfolio, CaseReviewed)
    tamper(portfolio, lambda conn: set_event(conn, seq, business_date=date(2024, 1, 1)))
    assert (seq, "edited") in [(s, p.rsplit(": ", 1)[-1]) for s, p in findings(portfolio)]


def test_a_changed_type_is_caught(portfolio):
    seq = first_seq(portfolio, CaseReviewed)
    tamper(portfolio, lambda conn: set_event(conn, seq, type="PromiseKept"))
    found = findings(portfolio)
    assert any(s == seq and "hash does not match" in p for s, p in found)
    assert any("replay fails" in p and "PromiseKept" in p for _, p in found)


def test_a_deleted_event_is_caught(portfolio):
    seq = first_seq(portfolio, ChargesAccrued) + 1
    tamper(portfolio, lambda conn: conn.execute(delete(events).where(events.c.case_id == TARGET, events.c.seq == seq)))
    found = findings(portfolio)
    assert any(s == seq + 1 and f"seq {seq} missing" in p for s, p in found)
    assert any(s == seq + 1 and "does not link" in p for s, p in found)


def test_two_swapped_events_are_caught(portfolio):
    a = first_seq(portfolio, PaymentReceived) - 1
    b = a + 1

    def swap(conn):
        first, second = event_row(conn, a), event_row(conn, b)
        content = ("type", "business_date", "actor", "schema_version", "payload")
        set_event(conn, a, **{k: second[k] for k in content})
        set_event(conn, b, **{k: first[k] for k in content})

    tamper(portfolio, swap)
    found = findings(portfolio)
    assert {s for s, p in found if "hash does not match" in p} == {a, b}


def test_an_inserted_event_is_caught(portfolio):
    def insert_one(conn):
        last = conn.execute(select(events).where(events.c.case_id == TARGET).order_by(events.c.seq.desc())).mappings().first()
        forged = CaseReviewed(case_id=TARGET, seq=last["seq"] + 1, business_date=date(2024, 5, 2), actor=SYSTEM, dpd=0, next_review_on=None)
        conn.execute(
            insert(events).values(
                case_id=TARGET, seq=forged.seq, business_date=forged.business_date, type=forged.type,
                schema_version=forged.schema_version, actor=forged.actor,
                payload=json.dumps(forged.payload(), sort_keys=True, separators=(",", ":")),
                hash=chain_hash(last["hash"], forged.canonical_json()),
                recorded_at=datetime.now(timezone.utc),
            )
        )  # a perfectly chained forgery: only the case row can give it away

    tamper(portfolio, insert_one)
    found = findings(portfolio)
    assert any("last_hash" in p for _, p in found)
    assert any("version" in p and "newest event" in p for _, p in found)


def test_an_edited_projection_is_caught(portfolio):
    with portfolio.engine.begin() as conn:
        conn.execute(update(cases).where(cases.c.case_id == TARGET).values(total_paid_fen=0, stage="settled"))
    found = findings(portfolio)
    assert any(p.startswith("projection stage: stored settled, replay gives ") for _, p in found)
    assert any("projection total_paid: stored 0.00, replay gives 500.00" in p for _, p in found)


def test_a_rebuilt_case_verifies_again(portfolio):
    with portfolio.engine.begin() as conn:
        conn.execute(update(cases).where(cases.c.case_id == TARGET).values(total_paid_fen=0))
    assert not verify(portfolio.engine).ok
    rebuild_case(portfolio, "MF-000002", on=date(2026, 12, 1), actor="op-audit", reason="total paid edited by hand")
    assert verify(portfolio.engine).ok
    (rebuilt,) = [e for e in portfolio.events(TARGET) if e.type == "CaseRebuilt"]
    assert (rebuilt.actor, rebuilt.reason) == ("op-audit", "total paid edited by hand")


def test_a_case_whose_events_fail_against_a_seal_is_not_rebuilt(portfolio, tmp_path):
    from models.errors import StoreError
    from models.seals import seal
    from models.settings import Settings
    from tests.integration.builders import disable_event_triggers

    settings = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "keys", seals_dir=tmp_path / "seals")
    seal(portfolio.engine, settings, date(2026, 12, 1))
    with portfolio.engine.begin() as conn:
        disable_event_triggers(conn)
        last = conn.execute(select(cases.c.version).where(cases.c.case_id == TARGET)).scalar_one()
        conn.execute(events.delete().where(events.c.case_id == TARGET, events.c.seq == last))  # the newest event erased
    with pytest.raises(StoreError, match="not rebuilt, its events fail: sealed on 2026-12-01 but the event is gone"):
        rebuild_case(portfolio, TARGET, on=date(2026, 12, 1), actor="op-x", reason="cover it up", seals=settings.seals_dir)


def test_an_edited_snapshot_is_caught(portfolio):
    def edit(conn):
        snapshot = record_of(json.loads(conn.execute(select(cases.c.snapshot).where(cases.c.case_id == TARGET)).scalar()), TARGET)
        snapshot["total_paid"] = "0.00"
        conn.execute(update(cases).where(cases.c.case_id == TARGET).values(snapshot=json.dumps(packed(snapshot))))

    with portfolio.engine.begin() as conn:
        edit(conn)
    assert findings(portfolio) == [(None, "snapshot differs from replay in: total_paid")]


def test_a_packed_snapshot_cut_short_is_caught_and_the_case_still_loads(portfolio):
    expected = portfolio.load_one(TARGET).snapshot()
    with portfolio.engine.begin() as conn:
        row = json.loads(conn.execute(select(cases.c.snapshot).where(cases.c.case_id == TARGET)).scalar())
        conn.execute(update(cases).where(cases.c.case_id == TARGET).values(snapshot=json.dumps(row[:4])))
    assert findings(portfolio) == [(None, f"snapshot cannot be read back: case {TARGET}: a packed snapshot has 3 values, not 5 to 27")]
    assert portfolio.load_one(TARGET).snapshot() == expected  # a snapshot is a cache: the load replays the events


# --------------------------------------------------------------------------
# the timeline a person reads


def test_the_timeline_explains_every_charge_and_keeps_running_balances(portfolio):
    rows = timeline(portfolio, "MF-000002")
    stored = portfolio.events(TARGET)
    assert [r.seq for r in rows] == [e.seq for e in stored]
    assert rows[-1].after == portfolio.case_row(TARGET).projection
    assert rows[0].description.startswith("case opened for contract MF-000002")
    payment = next(r for r in rows if r.type == "PaymentReceived")
    assert "payment BANK-0402-7 of 500.00 by bank_transfer" in payment.description
    assert payment.balances["total_paid"] == Decimal("500.00")
    penalty = next(c for r in rows for c in r.charges if c.kind == "accrual" and c.component == "penalty_interest")
    assert penalty.base > 0 and penalty.annual_rate == Decimal("0.27") and penalty.days >= 1
    assert "x 27%" in penalty.text()
    posting = next(c for r in rows for c in r.charges if c.kind == "posting")
    assert posting.cap_limit is not None and posting.enforceable is not None
    as_dict = payment.as_dict()
    assert as_dict["balances"]["total_paid"] == "500.00" and json.dumps(as_dict)


def test_the_timeline_as_of_a_date_stops_there(portfolio):
    rows = timeline(portfolio, TARGET, as_of=date(2024, 3, 1))
    assert rows and all(r.business_date <= date(2024, 3, 1) for r in rows)
    assert rows[-1].after.total_paid == Decimal("0.00")


def test_a_deleted_payment_row_is_found_by_verify(store):
    from sqlalchemy import delete

    from models.audit import verify as run_verify
    from models.tables import payments
    from tests.integration.builders import FIRST_DUE

    (case_id,) = book(store, 1)
    advance(store, [case_id], FIRST_DUE + timedelta(days=10))
    pay(store, case_id, "300.00", FIRST_DUE + timedelta(days=10), "BANK-77")
    assert run_verify(store.engine).ok
    with store.engine.begin() as conn:
        with pytest.raises(Exception, match="append-only: DELETE on payments refused"):
            with conn.begin_nested():
                conn.execute(delete(payments).where(payments.c.payment_id == "BANK-77"))
        disable_event_triggers(conn)  # as someone who owns the tables could
        conn.execute(delete(payments).where(payments.c.payment_id == "BANK-77"))  # the id is free again
    found = [str(f) for f in run_verify(store.engine).findings]
    assert any("payment BANK-77: its payments row is missing" in f for f in found), found


def test_an_edited_loan_row_is_found_by_verify(portfolio):
    from models.tables import loans
    from tests.integration.builders import disable_event_triggers

    with portfolio.engine.begin() as conn:
        disable_event_triggers(conn)  # the database refuses it otherwise
        conn.execute(update(loans).where(loans.c.case_id == TARGET).values(annual_rate="0.36"))
    found = [str(f) for f in verify(portfolio.engine).findings]
    assert f"case {TARGET} seq 1: loans row annual_rate: 0.36, but the case was opened with 0.18" in found
    assert f"case {TARGET} seq 1: loans row terms do not match its terms hash: edited" in found


def test_an_events_hash_is_recomputed_from_its_text_as_stored_or_else_its_canonical_form():
    from models.recorder import chain_hash, recomputed_hash, stored_canonical_json

    columns = {"case_id": "C-1", "seq": 2, "type": "CaseReviewed", "business_date": date(2026, 3, 2), "actor": "system",
               "schema_version": 1, "payload": '{"dpd":3,"next_review_on":"2026-03-03"}'}
    prev = "ab" * 32
    stored = chain_hash(prev, stored_canonical_json(**columns))
    assert recomputed_hash(prev, stored, columns) == stored  # the text this code writes: canonical already
    spaced = {**columns, "payload": '{"next_review_on": "2026-03-03", "dpd": 3}', "hash": stored}  # another writer's spelling
    assert recomputed_hash(prev, stored, spaced) == stored  # the chain hashes the canonical form (the row's other columns left out)
    edited = {**columns, "payload": '{"dpd":30,"next_review_on":"2026-03-03"}'}
    assert recomputed_hash(prev, stored, edited) != stored
    assert recomputed_hash("cd" * 32, stored, columns) != stored  # another link


@pytest.mark.parametrize("kind", ["computed", "actual_days", "plan"])
def test_a_loans_row_rehashes_to_its_terms_hash_from_its_own_values(store, kind):
    """verify rehashes each loans row from its values (``record_hash``) and rebuilds its terms only
    when that does not give the stored hash: for rows this code books, it always does."""
    from dataclasses import replace as changed

    from sqlalchemy import select as select_rows

    from models.booking import record_hash
    from models.borrowers import booked_terms
    from models.tables import loans
    from states.caps import DEFAULT_LPR_TABLE
    from states.case import CollectionCase
    from states.loan import record_value
    from states.schedule import ScheduleInterest
    from tests.integration.builders import case_id, terms

    loan = terms(7)
    if kind == "actual_days":
        loan = changed(loan, schedule_interest=ScheduleInterest.ACTUAL_DAYS)
    if kind == "plan":
        loan = loan.with_plan(tuple(changed(i, interest=i.interest + 1) for i in loan.schedule))
    case, opening = CollectionCase.open(case_id(7), loan, DEFAULT_LPR_TABLE)
    store.add_cases([(loan, case, opening)])
    with store.engine.connect() as conn:
        row = conn.execute(select_rows(loans)).mappings().one()
    plan = case.terms.schedule if kind == "plan" else None
    assert record_hash({k: record_value(v) for k, v in booked_terms(row).items()}, plan) == row["terms_hash"]
    assert verify(store.engine).ok
