"""Seals against someone with write access to the database: every attack below passes a plain
``verify`` (the chain is recomputed, the case rebuilt) and is caught by ``verify --seals``."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select, update

from models.audit import verify
from models.recorder import chain_hash, stored_canonical_json
from models.report_totals import fill_from_events
from models.seals import check_seals, load_seals, public_key_text, read_public_key, seal
from models.settings import Settings
from models.store import CaseStore
from models.tables import GENESIS_HASH, borrowers, cases, credit_reports, events, loans, payments
from tests.integration.builders import FIRST_DUE, advance, book, disable_event_triggers, pay

DAY = FIRST_DUE + timedelta(days=20)


@pytest.fixture
def sealed(store, tmp_path):
    """Three cases with history, sealed once: (store, settings, the trusted public key)."""
    settings = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "keys", seals_dir=tmp_path / "seals")
    ids = book(store, 3)
    advance(store, ids, DAY)
    pay(store, ids[0], "500.00", DAY, "BANK-1")
    made = seal(store.engine, settings, DAY)
    assert made.body.cases == 3 and made.path.exists()
    return store, settings, read_public_key(made.public_key), ids


def findings(store, settings, key):
    found, count = check_seals(store.engine, settings.seals_dir, key)
    return [str(f) for f in found]


def rechain(conn, case_id: str) -> None:
    """What an attacker does after editing: recompute every sha256 of the case and its last_hash."""
    prev = GENESIS_HASH
    for row in conn.execute(select(events).where(events.c.case_id == case_id).order_by(events.c.seq)).mappings().all():
        digest = chain_hash(prev, stored_canonical_json(
            case_id=row["case_id"], seq=row["seq"], type=row["type"], business_date=row["business_date"],
            actor=row["actor"], schema_version=row["schema_version"], payload=row["payload"],
        ))
        conn.execute(update(events).where(events.c.case_id == case_id, events.c.seq == row["seq"]).values(hash=digest))
        prev = digest
    conn.execute(update(cases).where(cases.c.case_id == case_id).values(last_hash=prev))


def test_an_untouched_store_passes_its_seals(sealed):
    store, settings, key, _ = sealed
    assert findings(store, settings, key) == []


def test_deleting_the_newest_event_then_rebuilding_the_case_is_caught(sealed):
    store, settings, key, ids = sealed
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        last = conn.execute(select(cases.c.version).where(cases.c.case_id == ids[1])).scalar_one()
        conn.execute(delete(events).where(events.c.case_id == ids[1], events.c.seq == last))
    store.rebuild_projections([ids[1]])
    assert not verify(store.engine).ok  # the reports' totals still count the event
    with store.engine.begin() as conn:
        fill_from_events(conn)  # an attacker who refills them too
    assert verify(store.engine).ok  # the chain alone cannot tell
    assert any(f.startswith(f"case {ids[1]} seq") and "event is gone" in f for f in findings(store, settings, key))


def test_a_forged_event_with_a_recomputed_sha256_is_caught(sealed):
    store, settings, key, ids = sealed
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        row = conn.execute(select(events).where(events.c.case_id == ids[0], events.c.type == "PaymentReceived")).mappings().one()
        payload = json.loads(row["payload"])
        payload["amount"] = "5.00"  # the money that came in, made smaller
        conn.execute(update(events).where(events.c.case_id == ids[0], events.c.seq == row["seq"]).values(payload=json.dumps(payload)))
        rechain(conn, ids[0])
    assert any(f.startswith(f"case {ids[0]} seq") and "history rewritten" in f for f in findings(store, settings, key))


def test_deleting_a_whole_case_from_every_table_is_caught(sealed):
    store, settings, key, ids = sealed
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        contract = conn.execute(select(cases.c.contract_no).where(cases.c.case_id == ids[2])).scalar_one()
        for table, column in (
            (credit_reports, credit_reports.c.case_id), (payments, payments.c.case_id), (events, events.c.case_id), (cases, cases.c.case_id),
        ):
            conn.execute(delete(table).where(column == ids[2]))
        conn.execute(delete(borrowers).where(borrowers.c.contract_no == contract))
        conn.execute(delete(loans).where(loans.c.contract_no == contract))
        fill_from_events(conn)  # and the reports' totals made from the events left
    assert verify(store.engine).ok
    assert any(f.startswith(f"case {ids[2]} seq") and "event is gone" in f for f in findings(store, settings, key))


def test_an_edited_seal_a_wrong_key_and_a_broken_seal_chain_are_caught(sealed):
    store, settings, key, ids = sealed
    advance(store, ids, DAY + timedelta(days=5))
    second = seal(store.engine, settings, DAY + timedelta(days=5))
    seal(store.engine, settings, DAY + timedelta(days=6))
    assert findings(store, settings, key) == []

    other = read_public_key(public_key_text(Ed25519PrivateKey.generate().public_key()))
    assert sum("bad signature" in f for f in findings(store, settings, other)) == 3

    data = json.loads(second.path.read_text())
    data["events"] -= 1
    second.path.write_text(json.dumps(data))
    assert any("bad signature" in f for f in findings(store, settings, key))

    second.path.unlink()  # a seal taken out of the folder breaks the chain
    assert any("names previous seal" in f for f in findings(store, settings, key))
    assert len(load_seals(settings.seals_dir)) == 2


def test_the_signing_key_never_sits_inside_the_data_directory(tmp_path, store):
    from models.seals import SealError

    inside = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "data" / "keys", seals_dir=tmp_path / "seals")
    with pytest.raises(SealError, match="inside the data directory"):
        seal(store.engine, inside, date(2026, 1, 1))


def test_a_case_export_proves_itself_with_the_public_key_and_an_edit_is_caught(sealed):
    from models.export import export_case, verify_export

    store, settings, key, ids = sealed
    document = export_case(store, ids[0], DAY, settings.seals_dir)
    checked = verify_export(json.loads(json.dumps(document)), key)
    assert checked.ok and checked.sealed_through == store.case_row(ids[0]).projection.version
    assert any(row["type"] == "PaymentReceived" for row in document["timeline"])

    edited = json.loads(json.dumps(document))
    payment = next(e for e in edited["events"] if e["type"] == "PaymentReceived")
    payment["payload"] = payment["payload"].replace('"500.00"', '"5.00"')
    problems = verify_export(edited, key).problems
    assert any("digest does not match" in p for p in problems) and any("its hash is not the chain" in p for p in problems)

    other = read_public_key(public_key_text(Ed25519PrivateKey.generate().public_key()))
    assert any("bad signature" in p for p in verify_export(document, other).problems)


def test_an_export_as_of_a_date_is_the_history_before_the_first_event_dated_later(sealed):
    """A read of personal data dated after the close the case is at, then the next close: an export
    as of that close stops before the read (a chain has no gaps) and still proves itself."""
    from models.export import export_case, verify_export

    store, settings, key, ids = sealed
    case = store.load_one(ids[1])
    version = case.version
    store.save([(case, case.record_personal_data_read(("phone",), DAY + timedelta(days=30), actor="op-1", purpose="audit"))],
               expected_versions={ids[1]: version})
    advance(store, [ids[1]], DAY + timedelta(days=10))  # events dated before the read, recorded after it
    history = store.events(ids[1])
    assert [e.business_date for e in history] != sorted(e.business_date for e in history)
    document = export_case(store, ids[1], DAY + timedelta(days=10), None)
    assert [e["seq"] for e in document["events"]] == list(range(1, version + 1))
    assert verify_export(json.loads(json.dumps(document)), key).ok
    whole = export_case(store, ids[1], DAY + timedelta(days=30), None)
    assert len(whole["events"]) == len(history) and verify_export(whole, key).ok


def test_a_forged_event_with_a_recomputed_sha256_fails_the_keyed_chain(store, tmp_path):
    """Written by a store with the chain key, each write's newest event carries a MAC the forger cannot recompute."""
    key = b"k" * 32
    keyed = CaseStore(store.engine, chain_key=key)
    ids = book(keyed, 2)
    advance(keyed, ids, DAY)
    pay(keyed, ids[0], "500.00", DAY, "BANK-K")
    assert verify(store.engine, chain_key=key).ok
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        row = conn.execute(select(events).where(events.c.case_id == ids[0], events.c.type == "PaymentReceived")).mappings().one()
        # who took the money, rewritten to another operator, and every sha256 recomputed
        conn.execute(update(events).where(events.c.case_id == ids[0], events.c.seq == row["seq"]).values(actor="op-someone-else"))
        rechain(conn, ids[0])
    assert verify(store.engine).ok  # sha256 alone: the forgery holds
    found = [str(f) for f in verify(store.engine, chain_key=key).findings]
    assert any(f.startswith(f"case {ids[0]} seq {row['seq']}: its MAC does not match") for f in found), found
    assert not verify(store.engine, chain_key=b"x" * 32).ok  # another key is no key


def test_each_write_keys_its_newest_event_and_an_edit_before_it_fails_that_mac(store):
    """One MAC per write, on its newest event: an edited event without a MAC of its own (recomputed
    sha256 and all) fails the first MAC after it, and the finding names the seqs it can be in."""
    key = b"k" * 32
    keyed = CaseStore(store.engine, chain_key=key)
    ids = book(keyed, 2)
    advance(keyed, ids, DAY)
    with store.engine.connect() as conn:
        rows = conn.execute(select(events).where(events.c.case_id == ids[0]).order_by(events.c.seq)).mappings().all()
    assert rows[-1]["mac"] is not None and any(row["mac"] is None for row in rows)  # advance wrote several events, one keyed
    plain = next(row for row in rows if row["mac"] is None and row["seq"] > 1)
    head = next(row for row in rows if row["mac"] is not None and row["seq"] > plain["seq"])
    before = max((row["seq"] for row in rows if row["mac"] is not None and row["seq"] < plain["seq"]), default=0)
    with store.engine.begin() as conn:
        disable_event_triggers(conn)
        conn.execute(update(events).where(events.c.case_id == ids[0], events.c.seq == plain["seq"]).values(actor="op-someone-else"))
        rechain(conn, ids[0])
    assert verify(store.engine).ok  # sha256 alone: the forgery holds
    found = [str(f) for f in verify(store.engine, chain_key=key).findings]
    assert found == [
        (
            f"case {ids[0]} seq {head['seq']}: its MAC does not match its hash under the chain key: "
            f"an event in seq {before + 1} to {head['seq']} was forged or edited"
        )
    ]


def test_a_newest_event_written_without_the_chain_key_after_keyed_ones_is_a_finding(store):
    key = b"k" * 32
    keyed = CaseStore(store.engine, chain_key=key)
    ids = book(keyed, 1)
    advance(keyed, ids, DAY)
    pay(store, ids[0], "500.00", DAY, "BANK-U")  # a store without the key writes the newest events
    with store.engine.connect() as conn:
        rows = conn.execute(select(events.c.seq, events.c.mac).where(events.c.case_id == ids[0]).order_by(events.c.seq)).all()
    last_keyed = max(seq for seq, mac in rows if mac is not None)
    assert rows[-1].mac is None and last_keyed < rows[-1].seq
    assert [str(f) for f in verify(store.engine, chain_key=key).findings] == [
        f"case {ids[0]} seq {last_keyed + 1}: no MAC after keyed events: written without the chain key (forged?)"
    ]
    assert verify(store.engine).ok  # without the key, only the sha256 chain is checked
