"""Migration 0015: a store written before it (hex hashes, ``prev_hash``) upgrades to 32-byte hashes and
verifies with the same hashes, MACs, seal and export; tampering it would hide is refused.

``fixtures/store_0012.json`` holds every row of a store the code before 0015 wrote
(``fixtures/make_store_0012.py``: ``write_history`` with a chain key, a seal, an export of a case),
loaded here into a store at revision 0012, on SQLite exactly as SQLite held it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Boolean, Date, DateTime, Engine, MetaData, insert, select, text
from sqlalchemy import exc as sa_exc

from models.audit import verify
from models.db import current_revision, downgrade, head_revision, upgrade
from models.errors import StoreError
from models.export import export_case, verify_export
from models.seals import check_seals, current_leaves
from models.store import CaseStore
from models.tables import cases, events
from states.seals import merkle_root
from tests.integration.builders import FIRST_DUE, advance
from tests.integration.fixtures.make_store_0012 import write_history

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "store_0012.json").read_text(encoding="utf-8"))
CHAIN_KEY = bytes.fromhex(FIXTURE["chain_key"])
AS_OF = FIRST_DUE + timedelta(days=40)


def old_events() -> list[dict]:
    table = FIXTURE["tables"]["events"]
    return sorted((dict(zip(table["columns"], row)) for row in table["rows"]), key=lambda e: (e["case_id"], e["seq"]))


def load_0012(engine: Engine, change=None) -> None:
    """The fixture's rows in a store at revision 0012 (``change(table, row)`` may edit a row first)."""
    upgrade(engine, "0012")
    meta = MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            dumped = FIXTURE["tables"].get(table.name)
            if dumped is None or not dumped["rows"]:
                continue
            if conn.execute(select(table)).first() is not None:  # seeded by the migrations themselves
                assert conn.execute(select(table)).all().__len__() == len(dumped["rows"]), table.name
                continue
            rows = [dict(zip(dumped["columns"], row)) for row in dumped["rows"]]
            if change is not None:
                rows = [change(table.name, dict(row)) for row in rows]
            if engine.dialect.name == "sqlite":  # the values exactly as SQLite held them
                marks = ", ".join("?" * len(dumped["columns"]))
                conn.exec_driver_sql(
                    f'INSERT INTO "{table.name}" ({", ".join(dumped["columns"])}) VALUES ({marks})',
                    [tuple(row[c] for c in dumped["columns"]) for row in rows],
                )
            else:
                conn.execute(insert(table), [{c.name: _typed(c.type, row[c.name]) for c in table.c} for row in rows])


def _typed(kind, value):
    if value is None:
        return None
    if isinstance(kind, DateTime):
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if isinstance(kind, Date):
        return date.fromisoformat(value)
    if isinstance(kind, Boolean):
        return bool(value)
    return value


def stored_events(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(events).order_by(events.c.case_id, events.c.seq)).mappings()]


def test_a_store_written_before_upgrades_and_verifies_with_the_same_hashes_seal_and_export(engine_0012, tmp_path):
    engine = engine_0012
    load_0012(engine)
    with engine.connect() as conn:  # the column the migration drops: a link of the chain, stored twice
        assert conn.execute(text("SELECT count(*) FROM events WHERE prev_hash IS NOT NULL")).scalar_one() == 45
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    old = old_events()
    new = stored_events(engine)
    assert [(e["case_id"], e["seq"], e["hash"], e["mac"]) for e in new] == [(e["case_id"], e["seq"], e["hash"], e["mac"]) for e in old]
    assert "prev_hash" not in new[0] and all(e["mac"] is not None for e in new)
    if engine.dialect.name == "sqlite":  # recorded_at: the same instant, as integer microseconds
        assert [e["recorded_at"] for e in new] == [datetime.fromisoformat(e["recorded_at"]).replace(tzinfo=timezone.utc) for e in old]
    with engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT hash, mac FROM events").all()
    assert {len(bytes(h)) for h, _ in raw} == {32} and {len(bytes(m)) for _, m in raw} == {32}

    report = verify(engine, chain_key=CHAIN_KEY)
    assert report.ok and report.events_checked == 45, [str(f) for f in report.findings]
    assert not verify(engine, chain_key=bytes(32)).ok  # the MACs are checked, under the fixture's key only

    seals = tmp_path / "seals"
    seals.mkdir()
    (seals / f"{FIXTURE['seal']['name']}.json").write_text(FIXTURE["seal"]["json"], encoding="utf-8")
    (seals / f"{FIXTURE['seal']['name']}.leaves").write_text(FIXTURE["seal"]["leaves"], encoding="utf-8")
    findings, count = check_seals(engine, seals)
    assert count == 1 and findings == [], findings
    assert merkle_root(current_leaves(engine)) == json.loads(FIXTURE["seal"]["json"])["root"]

    store = CaseStore(engine, chain_key=CHAIN_KEY)
    document = export_case(store, FIXTURE["case_ids"][2], AS_OF, seals)
    assert json.dumps(document, sort_keys=True) == json.dumps(FIXTURE["export"], sort_keys=True)  # byte for byte
    assert verify_export(json.loads(json.dumps(document))).ok

    advance(store, FIXTURE["case_ids"][1:], AS_OF + timedelta(days=30))  # the chains go on from the old hashes
    assert verify(engine, chain_key=CHAIN_KEY).ok
    findings, _ = check_seals(engine, seals)
    assert findings == []


def test_the_same_history_written_today_reads_back_alike_and_differs_only_where_charges_accrued_v4_is_shorter(db_url, tmp_path):
    """The fixture's history written by today's code: the same events read back and the same case rows
    and snapshots; the bytes differ only in each ``ChargesAccrued`` (v4 leaves out what recomputes), so
    each case's hashes are the old ones up to its first of those; only each write's newest event is keyed,
    with the old MAC where its hash is the old one."""
    from models.db import make_engine

    engine = make_engine(db_url)
    upgrade(engine)
    try:
        store = CaseStore(engine, chain_key=CHAIN_KEY)
        assert write_history(store) == FIXTURE["case_ids"]
        new, old = stored_events(engine), old_events()
        assert [(e["case_id"], e["seq"], e["type"]) for e in new] == [(e["case_id"], e["seq"], e["type"]) for e in old]
        charged: set[str] = set()
        for e, o in zip(new, old, strict=True):
            assert (e["payload"] == o["payload"]) == (e["type"] != "ChargesAccrued"), (e["seq"], e["type"])
            if e["type"] == "ChargesAccrued":  # the chain differs from a case's first one on
                charged.add(e["case_id"])
            assert (e["hash"] == o["hash"]) == (e["case_id"] not in charged), (e["case_id"], e["seq"])
            assert e["mac"] is None or e["hash"] != o["hash"] or e["mac"] == o["mac"]
        assert charged and sum(e["mac"] is not None for e in new) < len(new)
        assert all(e["mac"] is not None for e in {e["case_id"]: e for e in new}.values())  # each case's newest

        old_store = _old_store(tmp_path)
        try:
            for case_id in FIXTURE["case_ids"]:
                assert store.events(case_id) == CaseStore(old_store).events(case_id)
            exported = export_case(store, FIXTURE["case_ids"][2], AS_OF, None)["events"]
            assert [{k: v for k, v in e.items() if k not in ("hash", "prev_hash", "payload", "schema_version")} for e in exported] == [
                {k: v for k, v in e.items() if k not in ("hash", "prev_hash", "payload", "schema_version")} for e in FIXTURE["export"]["events"]
            ]
            assert _cases_and_snapshots(engine) == _cases_and_snapshots(old_store)
        finally:
            old_store.dispose()
    finally:
        engine.dispose()


def _cases_and_snapshots(engine) -> tuple[list, dict]:
    """Each case row but its last hash and call-list facts (the old code kept none: migration 0013),
    and its snapshot as the case it loads (the stored text depends on the version that wrote it)."""
    store = CaseStore(engine)
    with engine.connect() as conn:
        rows = [
            {k: v for k, v in row.items() if k not in ("last_hash", "snapshot", "call_facts")}
            for row in conn.execute(select(cases).order_by(cases.c.case_id)).mappings()
        ]
    loaded = store.load([row["case_id"] for row in rows])
    snapshots = {row["case_id"]: loaded[row["case_id"]].snapshot() for row in rows}
    return rows, snapshots


def _old_store(tmp_path) -> Engine:
    from models.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    load_0012(engine)
    upgrade(engine)
    return engine


@pytest.mark.parametrize(
    ("column", "edit", "refusal"),
    [
        ("prev_hash", lambda v: "f" + v[1:], "its prev_hash is not the hash of the event before it"),
        ("hash", str.upper, "its hash is not a sha256 digest in lowercase hex"),
        ("mac", lambda v: v[:63], "its mac is not a sha256 digest in lowercase hex"),
    ],
    ids=["a-broken-link", "an-uppercase-hash", "a-short-mac"],
)
def test_an_event_that_does_not_link_or_parse_refuses_the_migration_naming_it(engine_0012, column, edit, refusal):
    engine = engine_0012

    def tamper(table: str, row: dict) -> dict:
        if table == "events" and (row["case_id"], row["seq"]) == ("CASE-000953", 5):
            row[column] = edit(row[column])
        return row

    load_0012(engine, tamper)
    with pytest.raises(StoreError) as refused:
        upgrade(engine)
    assert str(refused.value).startswith(f"migration 0015 refused: case CASE-000953 seq 5: {refusal}")
    assert "\n" not in str(refused.value)
    assert current_revision(engine) == "0012"  # nothing converted
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events WHERE prev_hash IS NOT NULL")).scalar_one() == 45


def test_a_downgrade_gives_back_the_rows_as_they_were(engine_0012):
    engine = engine_0012
    load_0012(engine)
    upgrade(engine)
    downgrade(engine, "0012")
    old = old_events()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            columns = FIXTURE["tables"]["events"]["columns"]
            rows = conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM events ORDER BY case_id, seq").all()
            assert [dict(zip(columns, r)) for r in rows] == old
        else:
            rows = conn.execute(text("SELECT case_id, seq, prev_hash, hash, mac FROM events ORDER BY case_id, seq")).all()
            assert [tuple(r) for r in rows] == [(e["case_id"], e["seq"], e["prev_hash"], e["hash"], e["mac"]) for e in old]
    upgrade(engine)
    assert verify(engine, chain_key=CHAIN_KEY).ok


def test_after_the_migration_the_database_still_refuses_to_change_history(engine_0012):
    engine = engine_0012
    load_0012(engine)
    with engine.connect() as conn:
        triggers_before = _event_triggers(conn)
    upgrade(engine)
    with engine.connect() as conn:
        assert _event_triggers(conn) == triggers_before
    statements = ["UPDATE events SET actor = 'mallory'", "DELETE FROM events"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE events CASCADE")
    for statement in statements:
        with pytest.raises(sa_exc.IntegrityError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(statement))
    assert len(stored_events(engine)) == 45


def test_a_hash_that_is_not_lowercase_hex_cannot_be_written(store):
    ids = write_history(store)
    row = {k: v for k, v in stored_events(store.engine)[-1].items()}
    for bad in (row["hash"].upper(), row["hash"][:62], "z" * 64, " ".join([row["hash"][:32], row["hash"][32:62]])):
        with pytest.raises(sa_exc.StatementError, match="lowercase hex"):
            with store.engine.begin() as conn:
                conn.execute(insert(events).values(**{**row, "seq": row["seq"] + 1, "hash": bad}))
    assert len(store.events(ids[-1])) == row["seq"]


def _event_triggers(conn) -> list[tuple]:
    if conn.dialect.name == "sqlite":
        return conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events' ORDER BY name").all()
    return conn.exec_driver_sql(
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal ORDER BY tgname"
    ).all()


@pytest.fixture
def engine_0012(db_url):
    from models.db import make_engine

    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_the_fixture_is_the_old_format():
    assert FIXTURE["revision"] == "0012"
    old = old_events()
    for before, event in zip([None, *old], old):
        linked = before["hash"] if before is not None and before["case_id"] == event["case_id"] else "0" * 64
        assert event["prev_hash"] == linked
    assert isinstance(old[0]["recorded_at"], str) and len(old[0]["hash"]) == 64


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL enforces its foreign keys throughout
def test_on_sqlite_a_row_left_without_its_event_refuses_the_upgrade_and_foreign_keys_stay_on(engine_0012):
    engine = engine_0012
    load_0012(engine)
    path = engine.url.database
    with sqlite3.connect(path) as raw:  # foreign keys off: as a hand edit of the file could leave it
        raw.execute("INSERT INTO payments (payment_id, case_id, seq, amount_fen, received_on) VALUES ('P-ORPHAN', 'CASE-000953', 999, 1, '2024-02-18')")
    with pytest.raises(StoreError, match="migration refused: payments row .* refers to a events row that is not there"):
        upgrade(engine)
    assert current_revision(engine) == "0012"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # switched back on the pooled connection
