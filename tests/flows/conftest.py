"""Flow tests: the real Prefect flows, in-process, against one shared test server.

``prefect_test_harness`` starts a temporary Prefect server (~18 s on a
2-core box), so every test of this package shares one, started on first use
and stopped when the package is done. Each test gets its own SQLite case
store (``COLLECTFLOW_DATABASE_URL`` in its tmp_path) and no injected fault.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import pytest  # noqa: E402
from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from flows import runtime, simulation  # noqa: E402
from flows.bootstrap import bootstrap  # noqa: E402
from flows.daily import advance_portfolio  # noqa: E402
from flows.handlers.cases import book_loans  # noqa: E402
from models.db import make_engine, upgrade  # noqa: E402
from models.store import CaseStore  # noqa: E402

#: The first business date the tests close. Loans of the synthetic book are
#: disbursed over the 90 days before it, so on this date about two thirds of
#: them have reviews due (a big close, several batches), and about five a day
#: after it.
FIRST_DAY = date(2026, 4, 1)


@pytest.fixture(scope="package", autouse=True)
def prefect_api() -> Iterator[str]:
    """One temporary Prefect server for all flow tests; its API URL.

    Flow run heartbeats are off: at the end of every flow run Prefect joins
    the heartbeat thread, which sleeps in whole seconds (~1 s a run).
    """
    with prefect_test_harness(server_startup_timeout=120):
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield PREFECT_API_URL.value()


@contextmanager
def case_store_at(path: Path) -> Iterator[CaseStore]:
    """Point the flows at the SQLite case store in ``path`` for the ``with`` block."""
    before = os.environ.get("COLLECTFLOW_DATABASE_URL")
    os.environ["COLLECTFLOW_DATABASE_URL"] = f"sqlite:///{path}"
    engine = make_engine(os.environ["COLLECTFLOW_DATABASE_URL"])
    upgrade(engine)  # the store never migrates itself; setup does
    engine.dispose()
    runtime.forget()
    try:
        yield runtime.store()
    finally:
        runtime.forget()
        if before is None:
            os.environ.pop("COLLECTFLOW_DATABASE_URL", None)
        else:
            os.environ["COLLECTFLOW_DATABASE_URL"] = before


class InjectedFault(RuntimeError):
    """A failure injected by a test."""


@contextmanager
def faulty(fault: Callable) -> Iterator[None]:
    """The flows of this process run with ``fault`` called before each case is advanced (the test seam)."""
    with runtime.use(bootstrap(engine=runtime.store().engine, fault=fault)):
        yield


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CaseStore]:
    """An empty case store of this test, which the flows use."""
    with case_store_at(tmp_path / "collectflow.db") as case_store:
        yield case_store


def book(store: CaseStore, size: int, seed: int = 11) -> list[simulation.Borrower]:
    """Book a synthetic portfolio disbursed over the 90 days before FIRST_DAY."""
    borrowers = simulation.make_portfolio(size, FIRST_DAY - timedelta(days=90), seed)
    book_loans(store, [(b.case_id, b.terms) for b in borrowers])
    return borrowers


def fail_for(case_ids: Sequence[str]) -> Callable:
    """A fault hook that raises for these cases, as a bug in the domain code would."""
    wanted = set(case_ids)

    def fault(case) -> None:
        if case.case_id in wanted:
            raise InjectedFault(f"injected fault for case {case.case_id}")

    return fault


def close(day: date, batch_size: int | None = None):
    """Run the daily close flow for one business date; its final state."""
    return advance_portfolio(business_date=day, batch_size=batch_size, return_state=True)


def days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=n) for n in range(count)]


@pytest.fixture
def clean_digest(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """``clean_digest(size, dates, batch_size)``: the digest a clean run of those closes leaves
    on a freshly booked store, the reference a disturbed run must end at."""

    def run(size: int, dates: Sequence[date], batch_size: int | None = None) -> str:
        with case_store_at(tmp_path_factory.mktemp("clean") / "collectflow.db") as clean:
            book(clean, size)
            for day in dates:
                assert close(day, batch_size).is_completed()
            return clean.digest()

    return run
