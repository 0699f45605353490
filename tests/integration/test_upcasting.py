"""Events stored under an older schema are upgraded on read, never rewritten."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select

from models.audit import verify
from models.report_totals import fill_from_events
from models.store import chain_hash, stored_canonical_json
from models.tables import events, payments
from states.caps import DEFAULT_LPR_TABLE
from states.case import CollectionCase
from states.events import CaseOpened, PaymentReceived
from states.loan import LoanTerms
from states.money import to_fen
from states.snapshot import record_of

RECORDED_AT = datetime(2023, 4, 21, 18, 0, tzinfo=timezone.utc)
FIXTURE = Path(__file__).parent / "fixtures" / "payment_received_v1.json"


def store_v1_history(store) -> dict:
    """Book the fixture's case, then append its stored rows as the older release wrote them."""
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    raw = fixture["terms"]
    dates = {name: date.fromisoformat(raw[name]) for name in ("disbursed_on", "first_due_on")}
    terms = LoanTerms(**{**raw, **dates})
    case, opening = CollectionCase.open(fixture["case_id"], terms, DEFAULT_LPR_TABLE)
    store.add_cases([(terms, case, opening)])
    prev = store.case_row(fixture["case_id"]).last_hash
    rows, paid = [], []
    for record in fixture["events"]:
        business_date = date.fromisoformat(record["business_date"])
        current = chain_hash(prev, stored_canonical_json(**{**record, "business_date": business_date}))
        rows.append(
            {**record, "business_date": business_date, "hash": current, "recorded_at": RECORDED_AT}
        )
        prev = current
        if record["type"] == "PaymentReceived":
            payload = json.loads(record["payload"])
            paid.append(
                {
                    "payment_id": payload["payment_id"],
                    "case_id": record["case_id"],
                    "seq": record["seq"],
                    "amount_fen": to_fen(Decimal(payload["amount"])),
                    "received_on": business_date,
                }
            )
    with store.engine.begin() as conn:
        conn.execute(insert(events), rows)
        conn.execute(insert(payments), paid)
        fill_from_events(conn)  # the reports' totals, as migration 0014 fills them for such a store
    store.rebuild_projections([fixture["case_id"]])
    return fixture


def test_a_v1_payment_reads_back_as_the_current_version_with_its_channel(store):
    fixture = store_v1_history(store)
    case_id = fixture["case_id"]
    (payment,) = [e for e in store.events(case_id) if isinstance(e, PaymentReceived)]
    assert payment.channel == "bank_transfer"  # what every v1 payment was
    assert payment.schema_version == PaymentReceived.schema_version and payment.amount == Decimal("1000.00")
    assert payment.value_date is None and payment.received_on == payment.business_date  # v2 -> v3: on its day
    with store.engine.connect() as conn:
        stored = conn.execute(
            select(events.c.schema_version, events.c.payload).where(events.c.case_id == case_id, events.c.seq == payment.seq)
        ).one()
    assert stored.schema_version == 1 and "channel" not in json.loads(stored.payload)  # never rewritten


def test_a_v1_history_replays_and_verifies(store):
    fixture = store_v1_history(store)
    case_id = fixture["case_id"]
    projection = store.load_one(case_id).projection()
    expected = fixture["expected"]
    assert (str(projection.total_paid), projection.version, projection.stage) == (
        expected["total_paid"],
        expected["version"],
        expected["stage"],
    )
    report = verify(store.engine)
    assert report.ok, report.findings
    assert report.events_checked == expected["version"]


def test_a_case_opened_under_schema_1_reads_as_actual_days_and_verifies(store):
    """A case booked before plan conventions existed: its CaseOpened v1 (no schedule_interest) and a
    v9 snapshot holding that text as written are read as actual_days, verify clean, and advance as before."""
    from sqlalchemy import update

    from models.tables import GENESIS_HASH, cases
    from tests.integration.builders import POLICY, disable_event_triggers, opened

    terms, case, opening = opened(7)  # an actual_days loan (the store tests' builder)
    store.add_cases([(terms, case, opening)])
    record = json.loads(opening[0].canonical_json())
    payload = {k: v for k, v in record["payload"].items() if k not in ("schedule_interest", "plan_imported")}
    old = {**record, "schema_version": 1, "payload": json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
           "business_date": date.fromisoformat(record["business_date"])}
    text = stored_canonical_json(**old)
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        conn.execute(update(events).where(events.c.case_id == case.case_id, events.c.seq == 1).values(
            schema_version=1, payload=old["payload"], hash=chain_hash(GENESIS_HASH, text), mac=None))
        snapshot = record_of(json.loads(conn.execute(select(cases.c.snapshot).where(cases.c.case_id == case.case_id)).scalar_one()), case.case_id)
        rows = [row + ["0.00"] * (5 - len(row)) for row in snapshot["installments"]]  # as v9 wrote them
        conn.execute(update(cases).where(cases.c.case_id == case.case_id).values(
            last_hash=chain_hash(GENESIS_HASH, text), snapshot=json.dumps({**snapshot, "v": 9, "opened": text, "installments": rows})))
    loaded = store.load_one(case.case_id)
    # upcast to the current version (3 since the compact schedule)
    assert (loaded.terms.schema_version, loaded.terms.schedule_interest, loaded.terms.plan_imported) == (
        CaseOpened.schema_version, "actual_days", False)
    assert verify(store.engine).ok, [str(f) for f in verify(store.engine).findings]
    version = loaded.version
    store.save([(loaded, loaded.advance(date(2024, 2, 16), POLICY))], expected_versions={case.case_id: version})
    assert store.load_one(case.case_id).installments[0].interest_due == Decimal("155.11")  # 10,007 x 18 % x 31 / 360 = 155.1085 (monthly would be 150.11)
    assert verify(store.engine).ok
