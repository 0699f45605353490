"""Integration fixtures: every store test runs on a real SQLite file and a real PostgreSQL.

PostgreSQL: one freshly created, uniquely named database per test session
(dropped at the end), and a schema of its own per test inside it, migrated
to head. The server is ``COLLECTFLOW_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); the PostgreSQL half is
skipped only when no server answers there (and fails instead when
``COLLECTFLOW_REQUIRE_SERVICES=1``, as in CI), never for any other error.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from models.db import make_engine, upgrade
from models.store import CaseStore

POSTGRES_ADMIN_URL = os.environ.get("COLLECTFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _server_answers(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5432), timeout=3):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database for this test session; its URL (psycopg 3 driver)."""
    if not _server_answers(POSTGRES_ADMIN_URL):
        reason = (
            f"no PostgreSQL server answers at {make_url(POSTGRES_ADMIN_URL).render_as_string(hide_password=True)} "
            f"(start one, or set COLLECTFLOW_TEST_POSTGRES_URL)"
        )
        if os.environ.get("COLLECTFLOW_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + "; COLLECTFLOW_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(reason)
    admin = make_url(POSTGRES_ADMIN_URL)
    name = f"collectflow_test_{uuid.uuid4().hex[:12]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database: a SQLite file in tmp_path, or a new schema in the session's PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'collectflow.db'}"
        return
    database = request.getfixturevalue("postgres_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = make_url(database).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield make_url(database).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            # a connection a test left open would block the drop: fail loudly instead of hanging
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head."""
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def store(engine: Engine) -> CaseStore:
    return CaseStore(engine)
