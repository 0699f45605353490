"""Case store throughput, SQLite and PostgreSQL side by side.

For each database: book N cases (loans, cases, opening events), load all N
from their snapshots, advance each one step in memory, and save all N with
their new events in one transaction. Prints seconds, cases per second and
the PostgreSQL/SQLite time ratio for each phase.

    python benchmarks/bench_store.py [--cases 10000]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

(after ``make setup``; from a bare checkout, ``python -m benchmarks.bench_store``).

PostgreSQL runs in a scratch database created for the run and dropped after
it; pass ``--postgres ''`` to benchmark SQLite alone.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import make_url

from models.db import make_engine, upgrade
from models.store import CaseStore
from states.caps import DEFAULT_LPR_TABLE
from states.case import CollectionCase
from states.loan import LoanTerms
from states.policy import CollectionPolicy

T = TypeVar("T")
DISBURSED = date(2024, 1, 15)
FIRST_DUE = date(2024, 2, 15)
BUSINESS_DATE = date(2024, 2, 16)  # every case is due: the first installment was missed
POLICY = CollectionPolicy()


def loan_book(count: int, seed: int = 7) -> list[LoanTerms]:
    rng = random.Random(seed)
    return [
        LoanTerms(
            contract_no=f"BENCH-{n:07d}",
            borrower_id=f"B{rng.randrange(10**9):09d}",
            principal=Decimal(rng.choice([3, 5, 8, 10, 20, 50])) * 1000 + rng.randrange(0, 10) * 100,
            annual_rate=Decimal(rng.choice(["0.12", "0.15", "0.18", "0.2", "0.2399"])),
            term_months=rng.choice([6, 12, 12, 18, 24]),
            repayment_method=rng.choice(["equal_installment", "equal_installment", "equal_principal", "interest_first"]),
            disbursed_on=DISBURSED,
            first_due_on=FIRST_DUE,
            compound_interest=rng.random() < 0.2,
        )
        for n in range(1, count + 1)
    ]


def timed(run: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


class DriverClock:
    """Seconds spent in cursor.execute, to tell the database's share of a write from Python's."""

    def __init__(self, engine) -> None:
        self.seconds = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, *_args) -> None:
        conn.info["driver_clock"] = time.perf_counter()

    def _after(self, conn, *_args) -> None:
        self.seconds += time.perf_counter() - conn.info.pop("driver_clock")

    def lap(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def bench(url: str, book: list[LoanTerms]) -> dict[str, float]:
    engine = make_engine(url)
    upgrade(engine)
    store = CaseStore(engine)
    clock = DriverClock(engine)
    try:
        items = []
        for n, terms in enumerate(book, 1):
            case, events = CollectionCase.open(f"BC-{n:07d}", terms, DEFAULT_LPR_TABLE)
            items.append((terms, case, events))
        ids = [case.case_id for _, case, _ in items]

        clock.lap()
        _, book_s = timed(lambda: store.add_cases(items))
        book_sql = clock.lap()
        due, due_s = timed(lambda: store.due_case_ids(BUSINESS_DATE))
        assert len(due) == len(ids)
        cases, load_s = timed(lambda: store.load(due))
        versions = {case_id: case.version for case_id, case in cases.items()}
        changes, advance_s = timed(lambda: [(c, c.advance(BUSINESS_DATE, POLICY)) for c in cases.values()])
        new_events = sum(len(e) for _, e in changes)
        clock.lap()
        _, save_s = timed(lambda: store.save(changes, expected_versions=versions))
        save_sql = clock.lap()
        assert store.due_case_ids(BUSINESS_DATE) == []
        return {
            "book": book_s,
            "  book: SQL in the driver": book_sql,
            "select due": due_s,
            "load": load_s,
            "advance (domain, in memory)": advance_s,
            "save": save_s,
            "  save: SQL in the driver": save_sql,
            "_events": new_events,
        }
    finally:
        engine.dispose()


def snapshot_cost(book: list[LoanTerms], sample: int = 2000) -> float:
    """Seconds per case spent in CollectionCase.from_snapshot alone (the domain's share of a load)."""
    texts = []
    for n, terms in enumerate(book[:sample], 1):
        case, _ = CollectionCase.open(f"S-{n}", terms, DEFAULT_LPR_TABLE)
        texts.append(json.dumps(case.snapshot()))
    _, seconds = timed(lambda: [CollectionCase.from_snapshot(json.loads(t)) for t in texts])
    return seconds / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    book = loan_book(args.cases)
    snapshot_cost(book, sample=200)  # warm the domain's caches so the first database is not charged for them
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = bench(f"sqlite:///{Path(tmp) / 'bench.db'}", book)
    if args.postgres:
        admin = make_url(args.postgres).set(drivername="postgresql")
        name = f"collectflow_bench_{uuid.uuid4().hex[:8]}"
        conninfo = admin.render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            results["PostgreSQL"] = bench(admin.set(database=name).render_as_string(hide_password=False), book)
        finally:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    n = args.cases
    names = list(results)
    print(f"{n:,} cases; save writes {int(results[names[0]]['_events']):,} events")
    header = f"{'phase':<30}" + "".join(f"{db + ' s':>14}{'cases/s':>10}" for db in names)
    if len(names) == 2:
        header += f"{'PG/SQLite':>11}"
    print(header)
    for phase in [p for p in results[names[0]] if not p.startswith("_")]:
        line = f"{phase:<30}"
        for db in names:
            seconds = results[db][phase]
            rate = "" if phase.startswith(" ") else f"{n / seconds:,.0f}"  # a share of the phase above
            line += f"{seconds:>14.2f}{rate:>10}"
        if len(names) == 2:
            line += f"{results['PostgreSQL'][phase] / results['SQLite'][phase]:>11.2f}"
        print(line)
    print(f"load: CollectionCase.from_snapshot alone takes {snapshot_cost(book) * n:.2f} s per {n:,} cases")


if __name__ == "__main__":
    main()
