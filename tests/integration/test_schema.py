"""The database itself: settings, engines, migrations, exact money, append-only events."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timezone
from decimal import Decimal

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, insert, select, text
from sqlalchemy import exc as sa_exc
from sqlmodel import SQLModel

from models.db import (
    current_revision,
    database_url,
    downgrade,
    head_revision,
    is_transient,
    make_engine,
    upgrade,
    write_transaction,
)
from models.errors import ConcurrencyError
from models.settings import Settings
from models.tables import events, loans, payments
from states.caps import DEFAULT_LPR_TABLE
from tests.integration.builders import book, opened, pay


def test_settings_default_to_a_sqlite_file_in_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("COLLECTFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLLECTFLOW_DATA_DIR", str(tmp_path / "data"))
    settings = Settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'collectflow.db'}"
    assert settings.batch_size == 5000 and settings.timezone == "Asia/Shanghai" and settings.policy_file is None
    engine = make_engine(settings.database_url)  # the data dir is created on first use
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert (tmp_path / "data" / "collectflow.db").exists()


def test_settings_read_collectflow_variables(monkeypatch):
    monkeypatch.setenv("COLLECTFLOW_DATABASE_URL", "postgresql://u@db:5432/cf")
    monkeypatch.setenv("COLLECTFLOW_BATCH_SIZE", "2000")
    monkeypatch.setenv("COLLECTFLOW_TIMEZONE", "Asia/Hong_Kong")
    settings = Settings()
    assert (settings.database_url, settings.batch_size, settings.timezone) == (
        "postgresql://u@db:5432/cf",
        2000,
        "Asia/Hong_Kong",
    )
    monkeypatch.setenv("COLLECTFLOW_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValueError, match="Mars/Olympus"):
        Settings()


def test_plain_postgresql_urls_use_psycopg_3():
    assert database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(ValueError, match="mysql"):
        database_url("mysql://u@h/db")


def test_sqlite_runs_in_wal_with_a_busy_timeout_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        pragmas = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in
                   ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")}
    engine.dispose()
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1, "synchronous": 1}


def test_upgrade_brings_a_database_to_head_and_is_idempotent(engine):
    assert current_revision(engine) == head_revision()
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_migrations_and_tables_agree(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_lpr_fixings_are_seeded(store):
    assert store.lpr_table() == DEFAULT_LPR_TABLE


@pytest.mark.parametrize("yuan", ["99999999999.99", "0.01", "1234567890123.45"])
def test_money_round_trips_exactly(store, yuan):
    loan, case, opening = opened(1, principal=Decimal(yuan), term_months=1)
    store.add_cases([(loan, case, opening)])
    with store.engine.connect() as conn:
        stored = conn.execute(select(loans.c.principal_fen)).scalar_one()
    assert Decimal(stored) / 100 == Decimal(yuan)
    assert store.case_row(case.case_id).projection.principal_outstanding == Decimal(yuan)
    assert store.load_one(case.case_id).principal_outstanding() == Decimal(yuan)


def test_a_one_fen_payment_round_trips(store):
    (case_id,) = book(store, 1)
    pay(store, case_id, "0.01", date(2024, 2, 1), "P-ONE-FEN")
    with store.engine.connect() as conn:
        assert conn.execute(select(payments.c.amount_fen)).scalar_one() == 1
    assert store.case_row(case_id).projection.total_paid == Decimal("0.01")


# --------------------------------------------------------------------------
# the database refuses to change history


def test_update_of_an_event_is_refused_by_the_database(store):
    book(store, 1)
    with pytest.raises(sa_exc.IntegrityError, match="append-only"):
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE events SET actor = 'mallory'"))


def test_delete_of_an_event_is_refused_by_the_database(store):
    book(store, 1)
    with pytest.raises(sa_exc.IntegrityError, match="append-only"):
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM events"))
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 1


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_truncate_of_events_is_refused_on_postgresql(store):
    book(store, 1)
    with pytest.raises(sa_exc.IntegrityError, match="append-only"):
        with store.engine.begin() as conn:
            conn.execute(text("TRUNCATE events CASCADE"))


def test_a_second_event_at_the_same_seq_is_refused_by_the_primary_key(store):
    (case_id,) = book(store, 1)
    with store.engine.connect() as conn:
        row = dict(conn.execute(select(events).where(events.c.case_id == case_id)).mappings().one())
    with pytest.raises(sa_exc.IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(insert(events).values(**{**row, "actor": "second-writer", "recorded_at": datetime.now(timezone.utc)}))


# --------------------------------------------------------------------------
# what the flows retry


def _wrapped(orig: BaseException) -> sa_exc.DBAPIError:
    return sa_exc.OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.OperationalError("database is locked")),
        _wrapped(sqlite3.OperationalError("database table is locked: cases")),
        sa_exc.OperationalError("SELECT 1", {}, psycopg.errors.SerializationFailure("could not serialize access")),
        sa_exc.OperationalError("SELECT 1", {}, psycopg.errors.DeadlockDetected("deadlock detected")),
        _wrapped(psycopg.OperationalError("connection to server at 127.0.0.1 failed: Connection refused")),
        ConcurrencyError("CASE-1", 3, 4),
    ],
    ids=["sqlite-locked", "sqlite-table-locked", "pg-serialization", "pg-deadlock", "pg-connection", "version-conflict"],
)
def test_transient_errors_are_retried(error):
    assert is_transient(error)
    try:
        raise RuntimeError("task failed") from error
    except RuntimeError as chained:
        assert is_transient(chained)


@pytest.mark.parametrize(
    "error",
    [
        sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed: events.case_id")),
        sa_exc.IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key")),
        _wrapped(sqlite3.OperationalError("no such table: cases")),
        ValueError("bad data"),
    ],
    ids=["sqlite-unique", "pg-unique", "sqlite-no-table", "value-error"],
)
def test_permanent_errors_are_not_retried(error):
    assert not is_transient(error)


def test_a_real_lock_timeout_on_sqlite_is_transient(tmp_path):
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    holder, waiter = make_engine(url), make_engine(url)
    event.listen(waiter, "connect", lambda dbapi_conn, _: dbapi_conn.execute("PRAGMA busy_timeout=50"))
    upgrade(holder)
    with write_transaction(holder):
        with pytest.raises(sa_exc.OperationalError) as caught:
            with write_transaction(waiter):
                pass
    holder.dispose()
    waiter.dispose()
    assert "locked" in str(caught.value)
    assert is_transient(caught.value)


def test_a_case_row_never_goes_stale_dpd_is_computed_as_of_the_date_asked(store):
    from datetime import timedelta

    from models.tables import cases
    from tests.integration.builders import FIRST_DUE, advance

    (case_id,) = book(store, 1)
    advance(store, [case_id], FIRST_DUE + timedelta(days=4))  # reviewed at DPD 4 (phone)
    row = store.case_row(case_id).projection

    assert row.oldest_unpaid_due_on == FIRST_DUE
    assert row.dpd(FIRST_DUE + timedelta(days=4)) == 4
    assert (row.dpd(FIRST_DUE + timedelta(days=16)), row.bucket(FIRST_DUE + timedelta(days=16))) == (16, "M1")
    # SQL that selects by DPD selects by the due date, right on any date
    as_of, dpd_at_least = FIRST_DUE + timedelta(days=40), 31
    with store.engine.connect() as conn:
        found = conn.execute(
            select(cases.c.case_id).where(cases.c.oldest_unpaid_due_on <= as_of - timedelta(days=dpd_at_least))
        ).scalars().all()
    assert found == [case_id]


def test_the_migration_fills_the_oldest_unpaid_due_date_from_each_snapshot(engine, store):
    from datetime import timedelta

    from models.tables import cases
    from tests.integration.builders import FIRST_DUE, advance

    ids = book(store, 3)
    advance(store, ids, FIRST_DUE + timedelta(days=40))
    pay(store, ids[1], "100000.00", FIRST_DUE + timedelta(days=40), "PAYOFF-1")  # settled: nothing unpaid
    expected = {case_id: store.case_row(case_id).projection.oldest_unpaid_due_on for case_id in ids}
    assert expected[ids[0]] == FIRST_DUE and expected[ids[1]] is None

    downgrade(engine, "0003")  # the stale columns back, the due date gone
    upgrade(engine)

    with engine.connect() as conn:
        filled = {case_id: due_on for case_id, due_on in conn.execute(select(cases.c.case_id, cases.c.oldest_unpaid_due_on))}
    assert filled == expected



@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE payments SET amount_fen = 1",
        "DELETE FROM payments",
        "UPDATE loans SET principal_fen = 1",
        "DELETE FROM loans",
        "DELETE FROM business_days",
        "UPDATE store_identity SET store_id = 'another'",  # its seals would read as another store's
        "DELETE FROM store_identity",
    ],
)
def test_the_rows_the_history_depends_on_cannot_be_changed_or_removed(store, statement):
    from datetime import timedelta

    from tests.integration.builders import FIRST_DUE, advance

    (case_id,) = book(store, 1)
    advance(store, [case_id], FIRST_DUE + timedelta(days=5))
    pay(store, case_id, "10.00", FIRST_DUE + timedelta(days=5), "BANK-9")
    store.begin_business_day(FIRST_DUE)
    with pytest.raises(sa_exc.IntegrityError, match="append-only"):
        with store.engine.begin() as conn:
            conn.execute(text(statement))
