"""Engines, migrations and the transient-error test: how collectflow reaches its database.

SQLite (the embedded default) runs in WAL mode with a 30 s busy timeout,
foreign keys on and ``synchronous=NORMAL``; SQLAlchemy emits BEGIN itself so
that a writer can take the write lock up front (``BEGIN IMMEDIATE``) instead
of failing half-way when it upgrades a read lock. PostgreSQL goes through
psycopg 3. The schema only ever changes through the Alembic migrations kept
inside this package (``models/migrations``), driven from code, so an
installed wheel can migrate a database with no ini file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from sqlalchemy import Connection, Engine, create_engine, event, exc as sa_exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from models.errors import ConcurrencyError, StoreError
from states.errors import UserError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_SQLITE_BEGIN = "collectflow_sqlite_begin"  # execution option read by the BEGIN hook
_UPGRADE_LOCK_KEY = 0x636F6C6C  # "coll": serializes concurrent upgraders on PostgreSQL


def database_url(url: str | URL) -> URL:
    """Parse a database URL; plain ``postgresql://`` / ``postgres://`` mean psycopg 3."""
    text_url = str(url) if isinstance(url, URL) else url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if text_url.startswith(prefix):
            text_url = "postgresql+psycopg://" + text_url[len(prefix) :]
    try:
        parsed = make_url(text_url)
    except sa_exc.ArgumentError:
        raise UserError(
            f"database URL {text_url!r} is not a URL; give sqlite:///path/to/file.db "
            f"or postgresql://user@host:5432/dbname"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UserError(
            f"database URL {parsed.render_as_string(hide_password=True)!r}: "
            f"{parsed.get_backend_name()!r} is not supported; use sqlite or postgresql"
        )
    return parsed


def in_memory(url: URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database (one per connection unless shared: no other
    process sees it, and nothing written to it outlives the engine)."""
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (database in ("", ":memory:") or "mode=memory" in str(url.query))


def sqlite_file(url: str | URL) -> Path | None:
    """The file a SQLite URL names (None: PostgreSQL, in memory, or a ``file:`` URI)."""
    parsed = database_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or in_memory(parsed) or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def make_engine(url: str | URL | None = None, **engine_kwargs) -> Engine:
    """An engine for the case store (the configured database when ``url`` is None)."""
    if url is None:
        from models.settings import get_settings

        url = get_settings().database_url
    parsed = database_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, pool_pre_ping=True, **engine_kwargs)

    database = parsed.database or ""
    if in_memory(parsed):
        # one connection, or every checkout would see a different empty database
        engine_kwargs.setdefault("poolclass", StaticPool)
    elif not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    connect_args.update(engine_kwargs.pop("connect_args", {}))
    engine = create_engine(parsed, connect_args=connect_args, **engine_kwargs)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection, _record) -> None:
    # Let SQLAlchemy's "begin" hook emit BEGIN (sqlite3's legacy mode would
    # skip it for SELECT and DDL, and cannot say IMMEDIATE).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at BEGIN.

    A deferred SQLite transaction that reads, then writes, can fail at once
    with "database is locked" when another writer committed in between (the
    busy timeout does not help there); IMMEDIATE waits its turn instead.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
        with conn.begin():
            yield conn


# --------------------------------------------------------------------------
# migrations


def alembic_config() -> Config:
    """Alembic configuration pointing at the migrations shipped inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine_or_url: Engine | str | URL) -> str | None:
    engine, owned = _engine(engine_or_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        if owned:
            engine.dispose()


def upgrade(engine_or_url: Engine | str | URL | None = None, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest); a database at head is left alone."""
    engine, owned = _engine(engine_or_url)
    try:
        with _migration_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY})
            config = alembic_config()
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, revision)
            except ResolutionError as exc:  # alembic_version names a revision this code has not
                raise StoreError(
                    f"the database is at a schema this code does not know ({exc}); was it written by a newer release?"
                ) from None
    finally:
        if owned:
            engine.dispose()


def downgrade(engine_or_url: Engine | str | URL | None, revision: str) -> None:
    """Take the database back to ``revision`` (for tests of a migration and for an operator's rollback)."""
    engine, owned = _engine(engine_or_url)
    try:
        with _migration_transaction(engine) as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
    finally:
        if owned:
            engine.dispose()


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """The one transaction a whole upgrade or downgrade runs in.

    On SQLite, foreign keys are not enforced while it runs and checked in full before it commits:
    SQLite can rebuild a table other tables refer to (``events``, migration 0015) only so, and the
    switch takes effect only outside a transaction (https://sqlite.org/lang_altertable.html#otheralter).
    A row left without its parent refuses the commit, naming the table and the row (checked when
    the revision moved: a store at head is not scanned at every start).
    """
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                yield conn
            return
        conn.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
        raw = conn.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                before = MigrationContext.configure(conn).get_current_revision()
                yield conn
                migrated = MigrationContext.configure(conn).get_current_revision() != before
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first() if migrated else None
                if broken is not None:
                    table, rowid, parent, _ = broken
                    raise StoreError(f"migration refused: {table} row {rowid} refers to a {parent} row that is not there")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def _engine(engine_or_url: Engine | str | URL | None) -> tuple[Engine, bool]:
    if isinstance(engine_or_url, Engine):
        return engine_or_url, False
    return make_engine(engine_or_url), True


# --------------------------------------------------------------------------
# transient errors

# serialization failure, deadlock, lock not available, admin/crash shutdown,
# cannot connect now, too many connections
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})


def is_transient(exc: BaseException) -> bool:
    """True when running the same work again may succeed: a lock, a lost connection, a conflict.

    For Prefect's ``retry_condition_fn``. A version conflict counts: the
    retried batch reloads its cases and finds the other writer's work done.
    Constraint violations, bad data and programming errors do not.
    """
    for error in _causes(exc):
        if isinstance(error, ConcurrencyError):
            return True
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.DisconnectionError):
            return True
        if isinstance(error, sqlite3.OperationalError):
            message = str(error).lower()
            if "locked" in message or "busy" in message:
                return True
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and (sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith("08")):
            return True
        if _is_psycopg_connection_failure(error):
            return True
    return False


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        pending.extend(e for e in (getattr(error, "orig", None), error.__cause__, error.__context__) if e is not None)


def _is_psycopg_connection_failure(error: BaseException) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    # A connection that could not be made or was lost carries no SQLSTATE.
    return isinstance(error, psycopg.OperationalError) and getattr(error, "sqlstate", None) is None
