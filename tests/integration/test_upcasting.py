"""Events stored under an older schema are upgraded on read, never rewritten."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select

from models.audit import verify
from models.store import chain_hash, stored_canonical_json
from models.tables import events, payments
from states.caps import DEFAULT_LPR_TABLE
from states.case import CollectionCase
from states.events import PaymentReceived
from states.loan import LoanTerms
from states.money import to_fen

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
            {**record, "business_date": business_date, "prev_hash": prev, "hash": current, "recorded_at": RECORDED_AT}
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
