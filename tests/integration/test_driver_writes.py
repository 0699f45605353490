"""Rows the close writes through the driver (SQLite executemany with tuples) hold what SQLAlchemy
would have written: the column text its type gives, read back to the same values."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from models.store import CaseStore
from models.tables import cases, events
from tests.integration.builders import advance, book, pay


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL writes through SQLAlchemy
def test_the_close_writes_the_column_text_sqlalchemy_would_write(store: CaseStore):
    ids = book(store, 2)
    advance(store, ids, date(2024, 4, 1))
    pay(store, ids[0], "500.00", date(2024, 4, 2), "BANK-1")
    advance(store, ids, date(2024, 5, 1))
    with store.engine.connect() as conn:
        written = conn.execute(select(events).where(events.c.case_id == ids[0]).order_by(events.c.seq)).mappings().all()
        raw = conn.exec_driver_sql("SELECT business_date, recorded_at, mac, hash FROM events WHERE case_id = ? ORDER BY seq", (ids[0],)).all()
        row = conn.execute(select(cases).where(cases.c.case_id == ids[0])).mappings().one()
        raw_case = conn.exec_driver_sql("SELECT accrued_through, next_review_on, stuck, version FROM cases WHERE case_id = ?", (ids[0],)).one()

    # SQLAlchemy's SQLite storage formats: dates ISO; an event's recorded_at as integer microseconds
    # since 1970 UTC, its hash as 32 bytes (hex text in Python), its MAC none (written unkeyed)
    assert len(written) > 5 and written[-1]["business_date"] > date(2024, 4, 2)
    assert [r[0] for r in raw] == [e["business_date"].isoformat() for e in written]
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert [r[1] for r in raw] == [(e["recorded_at"] - epoch) // timedelta(microseconds=1) for e in written]
    assert all(type(r[1]) is int and abs(e["recorded_at"] - datetime.now(timezone.utc)) < timedelta(hours=1) for r, e in zip(raw, written))
    assert [r[2] for r in raw] == [None] * len(written)
    assert [r[3] for r in raw] == [bytes.fromhex(e["hash"]) for e in written] and all(len(r[3]) == 32 for r in raw)
    assert raw_case[:3] == (row["accrued_through"].isoformat(), row["next_review_on"].isoformat(), int(row["stuck"]))
    assert raw_case[3] == row["version"] == written[-1]["seq"]


def test_the_driver_binds_give_sqlalchemys_text_for_every_value_of_a_date_or_hash(tmp_path):
    from sqlalchemy import Column, Date, Integer, MetaData, Table, insert

    from models.db import make_engine
    from models.sql import executemany_rows
    from models.tables import HashBytes

    engine = make_engine(f"sqlite:///{tmp_path / 'binds.db'}")
    table = Table("binds", MetaData(), Column("n", Integer, primary_key=True), Column("day", Date, nullable=True),
                  Column("digest", HashBytes, nullable=True))
    table.create(engine)
    day = date(2024, 2, 29)
    values = [day, day, date(1, 1, 1), date(9999, 12, 31), datetime(2024, 3, 1, 23, 59, tzinfo=timezone.utc), None, day]
    digests = ["ab" * 32, "ab" * 32, None, "0" * 64, "cd" * 32, None, "ab" * 32]
    rows = [{"n": n, "day": v, "digest": d} for n, (v, d) in enumerate(zip(values, digests))]
    with engine.begin() as conn:
        executemany_rows(conn, "INSERT INTO binds (n, day, digest) VALUES (?, ?, ?)",
                         [("n", table.c.n), ("day", table.c.day), ("digest", table.c.digest)], rows)
        conn.execute(insert(table), [{**row, "n": row["n"] + 100} for row in rows])
        raw = conn.exec_driver_sql("SELECT n, day, digest FROM binds ORDER BY n").all()
    by_driver, by_sqlalchemy = raw[: len(rows)], raw[len(rows):]
    assert [r[1:] for r in by_driver] == [r[1:] for r in by_sqlalchemy]
    assert by_driver[4][1] == "2024-03-01" and by_driver[5][1:] == (None, None)  # a datetime: its date, as SQLAlchemy writes it
    with engine.begin() as conn, pytest.raises(ValueError, match="not a sha256 digest in lowercase hex"):
        executemany_rows(conn, "INSERT INTO binds (n, digest) VALUES (?, ?)", [("n", table.c.n), ("digest", table.c.digest)],
                         [{"n": 50, "digest": "AB" * 32}])
    engine.dispose()


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_events_copied_into_postgresql_are_the_rows_an_insert_writes(store: CaseStore, monkeypatch):
    import models.recorder
    from models.db import make_engine, upgrade
    from models.store import CaseStore as Store

    def history(into: CaseStore) -> None:
        ids = book(into, 3)
        advance(into, ids, date(2024, 4, 1))
        pay(into, ids[0], "500.00", date(2024, 4, 2), "BANK-1")
        advance(into, ids, date(2024, 5, 1))

    copies = []
    real_copy = models.recorder.copy_rows
    monkeypatch.setattr(models.recorder, "copy_rows", lambda *a: copies.append(1) or real_copy(*a))
    history(store)  # the events by COPY
    assert copies
    columns = [c for c in events.c if c.name != "recorded_at"]
    with store.engine.connect() as conn:
        copied = conn.execute(select(*columns).order_by(events.c.case_id, events.c.seq)).all()
        raw = conn.exec_driver_sql("SELECT business_date, recorded_at, hash, mac FROM events ORDER BY case_id, seq").all()
    assert {(type(r[0]), type(r[1]), type(r[2]), r[3]) for r in raw} == {(date, datetime, bytes, None)}  # timestamptz, bytea
    assert all(abs(r[1] - datetime.now(timezone.utc)) < timedelta(hours=1) and len(r[2]) == 32 for r in raw)

    url = store.engine.url.update_query_dict({"options": store.engine.url.query["options"] + "_ins"})
    schema = url.query["options"].removeprefix("-csearch_path=")
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    other = make_engine(url)
    try:
        upgrade(other)
        monkeypatch.setattr(models.recorder, "copy_rows", lambda *a: False)  # as another driver: INSERT
        inserted_store = Store(other)
        history(inserted_store)
        with other.connect() as conn:
            inserted = conn.execute(select(*columns).order_by(events.c.case_id, events.c.seq)).all()
        assert copied == inserted and len(copied) > 10
        assert inserted_store.digest() == store.digest()
    finally:
        other.dispose()
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


def test_rows_read_through_the_driver_are_the_rows_sqlalchemy_reads(store: CaseStore):
    from models.sql import driver_rows, mark

    keyed = CaseStore(store.engine, chain_key=b"k" * 32)  # MACs: a column of hashes with NULLs
    ids = book(keyed, 3)
    advance(keyed, ids, date(2024, 4, 1))
    pay(keyed, ids[1], "500.00", date(2024, 4, 2), "BANK-1")
    with store.engine.connect() as conn, conn.begin():
        columns = list(events.c)
        wanted = conn.execute(select(events).where(events.c.case_id.in_(ids)).order_by(events.c.case_id, events.c.seq)).mappings().all()
        sql = f"SELECT {', '.join(c.name for c in columns)} FROM events WHERE case_id IN ({', '.join([mark(conn)] * 3)}) ORDER BY case_id, seq"
        read = list(driver_rows(conn, sql, columns, ids, yield_per=7))  # several fetches
        assert read == [dict(row) for row in wanted] and len(read) > 20
        assert {type(r["business_date"]) for r in read} == {date} and {r["mac"] is None for r in read} == {True, False}
        # the statement's streaming option stays with it: the connection writes as before
        conn.execute(cases.update().where(cases.c.case_id == ids[0]).values(stuck=True))
