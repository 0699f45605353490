"""Wiring, in one place: settings -> engine -> case store -> unit of work, policy and clock.

Nothing is wired implicitly. ``bootstrap()`` builds an ``App`` from the
settings (or from what a test passes in); the CLI, the Prefect flows and the
tests all get their store, policy and "today" from it. Opening the store
never migrates it: ``collectflow db upgrade`` (and the demo's and the tests'
setup) does that, and a store that is behind says so in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from models.crypto import CryptoKeyError, configured_chain_key, load_chain_key
from models.db import current_revision, head_revision, make_engine, sqlite_file
from models.errors import StoreError
from models.recorder import chain_key_mismatch
from models.settings import Settings, get_settings
from models.store import CaseStore
from models.uow import UnitOfWork
from states.errors import UserError
from states.policy import CollectionPolicy

#: A test seam: called with each case before the close advances it (a test makes it raise).
Fault = Callable[[object], None]


class SchemaBehind(StoreError):
    """The database is not at the schema this code needs."""


class NoDatabase(StoreError):
    """The configured SQLite file does not exist."""


@dataclass(frozen=True)
class App:
    """What every entry point needs, built once per process (or per test)."""

    settings: Settings
    store: CaseStore
    policy: CollectionPolicy
    clock: Callable[[], date]
    fault: Fault | None = field(default=None, compare=False)

    @property
    def engine(self) -> Engine:
        return self.store.engine

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.store)

    def today(self) -> date:
        """Today in the lender's time zone: the latest business date anything may be dated."""
        return self.clock()


def load_policy(path: Path | None) -> CollectionPolicy:
    """The policy in force: the operator's TOML file, or DOMAIN.md's defaults."""
    if path is None:
        return CollectionPolicy()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"policy file {str(path)!r}: cannot be read ({exc.strerror or exc}); set COLLECTFLOW_POLICY_FILE to a TOML file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"policy file {str(path)!r}: not UTF-8 text (byte {exc.start}); save it as UTF-8 TOML") from None
    return CollectionPolicy.from_toml(text)


def lender_clock(timezone: str) -> Callable[[], date]:
    zone = ZoneInfo(timezone)
    return lambda: datetime.now(zone).date()


def check_schema(engine: Engine) -> None:
    """Refuse, in one line, a database that is not at the schema this code needs."""
    found, wanted = current_revision(engine), head_revision()
    if found != wanted:
        state = "has no collectflow schema yet" if found is None else f"is at schema {found}, this code needs {wanted}"
        raise SchemaBehind(f"the database {engine.url.render_as_string(hide_password=True)} {state}; run: collectflow db upgrade")


def check_exists(url: str) -> None:
    """Refuse, in one line, a SQLite file that is not there, before opening it would create it (and its
    folder): only ``collectflow db upgrade`` and ``collectflow demo`` make a new database."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise NoDatabase(
            f"there is no database at {path}: check COLLECTFLOW_DATABASE_URL, or create one there with: "
            "collectflow db upgrade (or collectflow demo for a synthetic book)"
        )


def check_chain_key(engine: Engine, chain_key: bytes) -> None:
    """Refuse, in one line, a chain key other than the one the store's events were keyed with: what
    it wrote would read as forged, for good (events are never edited)."""
    with engine.connect() as conn:
        problem = chain_key_mismatch(conn, chain_key)
    if problem is not None:
        raise CryptoKeyError(problem)


def bootstrap(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    policy: CollectionPolicy | None = None,
    clock: Callable[[], date] | None = None,
    fault: Fault | None = None,
    require_schema: bool = True,
    make_keys: bool = True,
) -> App:
    """Build the App: every part may be passed in (tests do), the rest comes from the settings.

    ``make_keys=False`` (``doctor``): a chain key not made yet is not generated; the store then has
    none (it would write unkeyed), which only a command that reads and says so may accept."""
    settings = settings or get_settings()
    if engine is None:
        check_exists(settings.database_url)
    engine = engine or make_engine(settings.database_url)
    chain_key = load_chain_key(settings) if make_keys else configured_chain_key(settings)
    if require_schema:
        check_schema(engine)
        if chain_key is not None:
            check_chain_key(engine, chain_key)
    return App(
        settings=settings,
        store=CaseStore(engine, chain_key=chain_key),
        policy=policy or load_policy(settings.policy_file),
        clock=clock or lender_clock(settings.timezone),
        fault=fault,
    )
