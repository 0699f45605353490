"""The demo's work without Prefect: book, simulate and close N loans for D days in-process.

Measures what the demo costs besides orchestration (the domain, the store,
SQLite), so a change to either shows up here first. Prints seconds and
case-operations per second.

    .venv/bin/python benchmarks/bench_demo_core.py [N] [DAYS]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
DAYS = int(sys.argv[2]) if len(sys.argv) > 2 else 150
START = date(2026, 1, 1)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    os.environ["COLLECTFLOW_DATABASE_URL"] = f"sqlite:///{workdir / 'bench.db'}"
    from flows import runtime, simulation
    from flows.demo import _command
    from flows.handlers.cases import advance_batch, book_loans, run_commands
    from models.db import upgrade

    upgrade(os.environ["COLLECTFLOW_DATABASE_URL"])
    app = runtime.app()
    store, policy = app.store, app.policy
    borrowers = simulation.make_portfolio(N, START, 7)
    by_day = simulation.index_by_day(borrowers)
    to_book: dict[date, list] = {}
    for b in borrowers:
        to_book.setdefault(max(b.terms.disbursed_on, START), []).append((b.case_id, b.terms))
    operations = 0
    began = time.perf_counter()
    book_loans(store, to_book.pop(START, []))
    for day, actions in sorted((d, a) for d, a in by_day.items() if d < START):
        run_commands(app, day, [(cid, _command(a, day, policy, i)) for i, (cid, a) in enumerate(actions)])
        operations += len(actions)
    for n in range(DAYS):
        day = START + timedelta(days=n)
        if day in to_book:
            book_loans(store, to_book[day])
        actions = by_day.get(day, [])
        if actions:
            run_commands(app, day, [(cid, _command(a, day, policy, i)) for i, (cid, a) in enumerate(actions)])
        ids = store.due_case_ids(day)
        if ids:
            advance_batch(app, ids, day)
        operations += len(actions) + len(ids)
    elapsed = time.perf_counter() - began
    print(f"{N:,} loans x {DAYS} days: {elapsed:.1f} s, {operations:,} case operations, {operations / elapsed:,.0f} per second")


if __name__ == "__main__":
    main()
