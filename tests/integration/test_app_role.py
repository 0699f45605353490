"""Production on PostgreSQL: the application runs under a role that owns nothing.

The schema is migrated by its owner; the application's role gets only what
the close and the operators need (``docs/postgres-roles.sql``), so it can
neither disable the append-only triggers nor rewrite history.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from flows.bootstrap import bootstrap
from flows.handlers.cases import advance_batch, handle
from flows.handlers.close import finish_day, plan_day, work_day
from models.db import make_engine, upgrade
from models.audit import verify
from models.store import CaseStore
from models.tables import roll_rate_memos
from states.reporting import roll_month_ends
from states.commands import RecordPayment
from tests.integration.builders import FIRST_DUE, POLICY, book

GRANTS = Path(__file__).resolve().parents[2] / "docs" / "postgres-roles.sql"
pytestmark = pytest.mark.postgres


@pytest.fixture
def app_role_url(postgres_database):
    """A schema migrated by the owner, and the URL of a login role granted only docs/postgres-roles.sql."""
    owner_url = make_url(postgres_database)
    schema, role = f"t_{uuid.uuid4().hex[:10]}", f"cf_app_{uuid.uuid4().hex[:8]}"
    conninfo = owner_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    scoped = owner_url.update_query_dict({"options": f"-csearch_path={schema}"})
    owner = make_engine(scoped.render_as_string(hide_password=False))
    upgrade(owner)
    with owner.begin() as conn:
        sql = "\n".join(line for line in GRANTS.read_text(encoding="utf-8").splitlines() if not line.startswith("--"))
        for statement in sql.replace(":schema", f'"{schema}"').replace(":role", f'"{role}"').split(";"):
            if statement.strip():
                conn.execute(text(statement))
    yield owner, scoped.set(username=role).render_as_string(hide_password=False)
    owner.dispose()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def test_the_close_and_a_payment_run_under_a_role_that_owns_nothing(app_role_url):
    owner, url = app_role_url
    (case_id,) = book(CaseStore(owner), 1)  # the loans arrive by the import, run as the application too
    engine = make_engine(url)
    try:
        app = bootstrap(engine=engine, policy=POLICY)
        day = FIRST_DUE + timedelta(days=10)
        assert advance_batch(app, [case_id], day).advanced == 1
        assert handle(RecordPayment(case=case_id, operator="op-li", amount="100", received_on=day, payment_id="B-1"), app)
        later = day + timedelta(days=30)  # the close shared by workers: plan, claim, lease, done
        plan = plan_day(app, later, 10)
        work_day(app, later, join_seconds=0)
        assert finish_day(app, plan).advanced == 1
        pair = roll_month_ends(later)
        assert app.store.roll_rates(*pair) == CaseStore(owner).roll_rates(*pair)  # counted and kept by the role
        with owner.connect() as conn:
            assert conn.execute(select(roll_rate_memos.c.to_month_end)).scalars().all() == [pair[1]]
        for replayed in (1, 0):  # verify --incremental keeps its checkpoints under the role
            checked = verify(engine, chain_key=app.store.chain_key, incremental=True, workers=1)
            assert checked.ok and checked.checkpoint_problem is None and checked.cases_replayed == replayed
        with engine.connect() as conn:
            for attack in ("ALTER TABLE events DISABLE TRIGGER USER", "DROP TRIGGER events_refuse_update_delete ON events", "TRUNCATE events"):
                with pytest.raises(Exception, match="must be owner|permission denied|append-only"):
                    with conn.begin():
                        conn.execute(text(attack))
            for rewrite in ("DELETE FROM events", "UPDATE payments SET amount_fen = 1", "DELETE FROM loans"):
                with pytest.raises(Exception, match="permission denied|append-only"):
                    with conn.begin():
                        conn.execute(text(rewrite))
    finally:
        engine.dispose()


def test_a_key_rotation_runs_under_a_role_that_owns_nothing_and_cannot_erase_its_record(app_role_url, tmp_path, monkeypatch):
    import csv

    from flows.handlers.loans import import_file
    from models.crypto import CryptoSettings, load_keyring
    from models.keys import rotate_keys
    from tests.loan_rows import row

    ON = date(2026, 11, 28)
    owner, url = app_role_url
    monkeypatch.delenv("COLLECTFLOW_SECRET_KEY", raising=False)
    settings = CryptoSettings(data_dir=tmp_path / "data", key_dir=tmp_path / "keys", seals_dir=tmp_path / "seals")
    path = tmp_path / "loans.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(row(1)))
        writer.writeheader()
        writer.writerows([row(1), row(2)])
    engine = make_engine(url)
    try:
        store = CaseStore(engine)
        assert import_file(store, path, business_date=ON, policy=POLICY, keyring=load_keyring(settings)).booked == 2
        done = rotate_keys(engine, settings, operator="sup-1", on=ON)
        assert done.rows == 2 and load_keyring(settings).key_id == done.to_key_id
        with engine.connect() as conn:
            for rewrite in ("DELETE FROM key_rotations", "UPDATE key_rotations SET operator = 'x'", "ALTER TABLE key_rotations DISABLE TRIGGER USER"):
                with pytest.raises(Exception, match="must be owner|permission denied|append-only"):
                    with conn.begin():
                        conn.execute(text(rewrite))
    finally:
        engine.dispose()


def test_the_roster_changes_under_a_role_that_owns_nothing_and_cannot_erase_its_history(app_role_url):
    from states.operators import AddOperator, DeactivateOperator

    _, url = app_role_url
    engine = make_engine(url)
    try:
        store = CaseStore(engine)
        store.change_roster(AddOperator("sup-1", "supervisor"))
        store.change_roster(AddOperator("op-li", "collector", operator="sup-1"))
        store.change_roster(DeactivateOperator("op-li", operator="sup-1"))
        assert [c["change"] for c in store.operator_changes()] == ["added", "added", "deactivated"]
        with engine.connect() as conn:
            for rewrite in (
                "UPDATE operator_changes SET actor = 'x'", "DELETE FROM operator_changes", "TRUNCATE operator_changes",
                "DELETE FROM operators", "ALTER TABLE operator_changes DISABLE TRIGGER USER",
            ):
                with pytest.raises(Exception, match="must be owner|permission denied|append-only"):
                    with conn.begin():
                        conn.execute(text(rewrite))
        assert len(store.operator_changes()) == 3
    finally:
        engine.dispose()
