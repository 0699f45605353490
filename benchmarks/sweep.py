"""The close against its raw floor, side by side in one run (issue: a million cases per close).

    python -m benchmarks.sweep --cases N [--database URL] [--batch B] [--workers W] [--only-parallel]

Builds N open cases all due on one business date (their first installment
missed the day before), then measures, in this one process:

- the close of that date through the same code the daily flow runs per batch
  (``flows.handlers.cases.advance_batch``), cases per second, and peak RSS;
- the raw floor on SQLite: plain ``sqlite3`` doing the same I/O in one
  transaction (read the N snapshot rows, re-read their versions, append as
  many events of the same payload size, update the N case rows), and the
  close's ratio to it;
- a steady day on which 5 % of the cases are due, against the full close;
- ``verify`` throughput (events per second) and bytes per event on disk;
- the same portfolio booked twice more and closed by 1 and by W worker
  processes (``collectflow advance --worker``, sharing the date through the
  close's batches), wall time each: ``parallel_speedup`` = 1 process / W.

The last line is one JSON object with every figure (null where not measured:
``naive_speedup`` and the flow figures need a Prefect server and are
measured by ``benchmarks/bench_close.py``). No threshold is
asserted: these machines are noisy, so compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

DISBURSED = date(2026, 1, 5)
FIRST_DUE = date(2026, 2, 5)
DUE_DAY = FIRST_DUE + timedelta(days=1)  # every case's first review: the installment was missed


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def terms(n: int, first_due: date = FIRST_DUE):
    from states.loan import LoanTerms

    return LoanTerms(
        contract_no=f"SW-{n:08d}", borrower_id=f"P{n:08d}", principal=Decimal(5000 + (n % 40) * 500),
        annual_rate=Decimal("0.18"), term_months=12, repayment_method="equal_installment",
        disbursed_on=first_due - timedelta(days=31), first_due_on=first_due,
    )


def raw_floor(path: Path, case_ids: list[str], events_written: int, payload_bytes: int) -> float:
    """Seconds plain sqlite3 takes for the close's I/O, in one transaction, on a copy of the table shapes."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS floor_events (case_id TEXT, seq INTEGER, payload TEXT, hash TEXT, PRIMARY KEY (case_id, seq))")
    conn.execute("CREATE TABLE IF NOT EXISTS floor_cases AS SELECT case_id, version, snapshot, last_hash FROM cases")
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS floor_cases_id ON floor_cases (case_id)")
    conn.commit()
    per_case = max(1, events_written // len(case_ids))
    payload = "x" * payload_bytes
    began = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for start in range(0, len(case_ids), 1000):
        chunk = case_ids[start : start + 1000]
        marks = ",".join("?" * len(chunk))
        snapshots = conn.execute(f"SELECT case_id, snapshot FROM floor_cases WHERE case_id IN ({marks})", chunk).fetchall()
        for _, text in snapshots:
            json.loads(text)
        conn.execute(f"SELECT case_id, version FROM floor_cases WHERE case_id IN ({marks})", chunk).fetchall()
        conn.executemany(
            "INSERT INTO floor_events VALUES (?, ?, ?, ?)",
            [(case_id, seq, payload, "0" * 64) for case_id in chunk for seq in range(1, per_case + 1)],
        )
        conn.executemany("UPDATE floor_cases SET version = version + 1, snapshot = ? WHERE case_id = ?", [(text, cid) for cid, text in snapshots])
    conn.commit()
    seconds = time.perf_counter() - began
    conn.close()
    return seconds


def fresh_store(database: str | None, workdir: Path, name: str) -> str:
    """The URL of a new empty store: a SQLite file in ``workdir``, or a new schema of the PostgreSQL ``database``."""
    if database is None or database.startswith("sqlite"):
        return f"sqlite:///{workdir / f'{name}.db'}"
    import psycopg

    from models.db import database_url

    url = database_url(database)
    schema = f"sweep_{name}_{os.getpid()}_{int(time.time())}"
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def parallel_close(database: str | None, workdir: Path, n: int, workers: int, batch: int) -> dict[int, float]:
    """Wall seconds to close the same N-case portfolio by 1 and by ``workers`` worker processes.

    Each store is booked alike; the parent plans the date and closes the day
    (the coordinator's part), and the worker processes are the real command,
    ``collectflow advance --date D --worker``, started together: their start-up
    (~2 s of imports) is inside the figure, as it is in production.
    """
    import subprocess

    from flows.bootstrap import bootstrap
    from flows.handlers.cases import book_loans
    from flows.handlers.close import finish_day, plan_day
    from models.db import make_engine, upgrade
    from states.policy import CollectionPolicy

    os.environ.setdefault("COLLECTFLOW_KEY_DIR", str(workdir / "keys"))  # the workers' and this process's alike
    seconds: dict[int, float] = {}
    size = min(batch, max(1, n // (4 * workers)))  # enough batches for every worker to have several
    for count in (1, workers):
        url = fresh_store(database, workdir, f"w{count}")
        engine = make_engine(url)
        upgrade(engine)
        app = bootstrap(engine=engine, policy=CollectionPolicy(), clock=lambda: date(2026, 12, 1))
        for start in range(0, n, 10_000):
            book_loans(app.store, [(f"SW{k:08d}", terms(k)) for k in range(start, min(n, start + 10_000))])
        env = {**os.environ, "COLLECTFLOW_DATABASE_URL": url, "COLLECTFLOW_JOIN_SECONDS": "60"}
        command = [sys.executable, "-m", "flows.cli", "advance", "--date", DUE_DAY.isoformat(), "--worker", "--json"]
        app.store.begin_business_day(DUE_DAY)
        began = time.perf_counter()
        plan = plan_day(app, DUE_DAY, size)
        procs = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[1]) for _ in range(count)]
        codes = [proc.wait() for proc in procs]
        total = finish_day(app, plan)
        seconds[count] = time.perf_counter() - began
        engine.dispose()
        if any(codes) or total.advanced != n:
            raise SystemExit(f"parallel close with {count} worker(s) failed: exit codes {codes}, {total.advanced} of {n} advanced")
        print(f"close by {count} worker process(es): {n:,} cases in batches of {size:,} in {seconds[count]:.1f} s wall = {n / seconds[count]:,.0f} cases/s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: a new SQLite file)")
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the parallel close, against 1 (1: not measured)")
    parser.add_argument("--only-parallel", action="store_true", help="measure only 1 vs W worker processes")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sweep-"))
    if args.only_parallel:
        walls = parallel_close(args.database, workdir, args.cases, args.workers, args.batch)
        label = "sqlite" if args.database is None or args.database.startswith("sqlite") else "postgresql"
        speedup = walls[1] / walls[args.workers]
        print(f"{args.workers} processes / 1 process, wall, {label}: {walls[1]:.1f} s / {walls[args.workers]:.1f} s = {speedup:.2f}x", flush=True)
        print(json.dumps({"cases": args.cases, "workers": args.workers, "parallel_speedup": round(speedup, 2), "database": label}))
        return
    url = args.database or f"sqlite:///{workdir / 'sweep.db'}"
    os.environ["COLLECTFLOW_DATABASE_URL"] = url

    from flows.bootstrap import bootstrap
    from flows.handlers.cases import advance_batch, book_loans
    from models.audit import verify
    from models.db import make_engine, upgrade
    from models.store import CaseStore
    from states.policy import CollectionPolicy

    engine = make_engine(url)
    upgrade(engine)
    store = CaseStore(engine)
    app = bootstrap(engine=engine, policy=CollectionPolicy(), clock=lambda: date(2026, 12, 1))
    n = args.cases
    began = time.perf_counter()
    for start in range(0, n, 10_000):
        book_loans(store, [(f"SW{k:08d}", terms(k)) for k in range(start, min(n, start + 10_000))])
    book_s = time.perf_counter() - began
    print(f"booked {n:,} cases in {book_s:.1f} s", flush=True)

    ids = store.due_case_ids(DUE_DAY)
    events_before = _count(engine, "events")
    began = time.perf_counter()
    for start in range(0, len(ids), args.batch):
        advance_batch(app, ids[start : start + args.batch], DUE_DAY)
    close_s = time.perf_counter() - began
    events_written = _count(engine, "events") - events_before
    rss = peak_rss_mb()
    print(f"close: {len(ids):,} cases, {events_written:,} events in {close_s:.1f} s = {len(ids) / close_s:,.0f} cases/s; peak RSS {rss:.0f} MiB", flush=True)

    floor_s = floor_ratio = None
    if url.startswith("sqlite"):
        payload_bytes = _avg_payload(engine)
        floor_s = raw_floor(Path(url.removeprefix("sqlite:///")), ids, events_written, payload_bytes)
        floor_ratio = close_s / floor_s
        print(f"raw floor (plain sqlite3, same I/O): {floor_s:.2f} s; the close is {floor_ratio:.1f}x the floor", flush=True)

    # a steady day: the book closed up to the day before (not timed), then a day on which a new
    # slice of 5 % of the book is due (its first installment missed the day before)
    steady_n = max(1, n // 20)
    steady_day = DUE_DAY + timedelta(days=45)
    for day in (steady_day - timedelta(days=d) for d in range(45, 0, -1)):
        todo = store.due_case_ids(day)
        for start in range(0, len(todo), args.batch):
            advance_batch(app, todo[start : start + args.batch], day)
    book_loans(store, [(f"ST{k:08d}", terms(k + 10_000_000, steady_day - timedelta(days=1))) for k in range(steady_n)])
    due = store.due_case_ids(steady_day)
    began = time.perf_counter()
    for start in range(0, len(due), args.batch):
        advance_batch(app, due[start : start + args.batch], steady_day)
    steady_s = time.perf_counter() - began
    print(f"steady day: {len(due):,} cases due ({len(due) / (n + steady_n):.1%} of the book) in {steady_s:.1f} s = {steady_s / close_s:.3f}x the full close", flush=True)

    began = time.perf_counter()
    checked = verify(engine)
    verify_s = time.perf_counter() - began
    print(f"verify: {checked.events_checked:,} events in {verify_s:.1f} s = {checked.events_checked / verify_s:,.0f} events/s ({'ok' if checked.ok else 'FINDINGS'})", flush=True)

    speedup = None
    if args.workers > 1:
        walls = parallel_close(args.database, workdir, n, args.workers, args.batch)
        speedup = walls[1] / walls[args.workers]
        label = "sqlite" if url.startswith("sqlite") else "postgresql"
        print(f"{args.workers} processes / 1 process, wall, {label}: {walls[1]:.1f} s / {walls[args.workers]:.1f} s = {speedup:.2f}x", flush=True)

    bytes_per_event = None
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("DROP TABLE IF EXISTS floor_events")
            conn.execute("DROP TABLE IF EXISTS floor_cases")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
        size = Path(url.removeprefix("sqlite:///")).stat().st_size
        bytes_per_event = size / max(1, checked.events_checked)
        print(f"disk: {size / 2**20:,.0f} MiB for {checked.events_checked:,} events = {bytes_per_event:,.0f} bytes per event (cases, snapshots and indexes included)", flush=True)

    print(json.dumps({
        "cases": n,
        "close_cases_per_s": round(len(ids) / close_s, 1),
        "floor_ratio": None if floor_ratio is None else round(floor_ratio, 2),
        "steady_ratio": round(steady_s / close_s, 4),
        "peak_rss_mb": round(rss, 1),
        "verify_events_per_s": round(checked.events_checked / verify_s, 1),
        "import_rows_per_s": None,
        "import_floor_ratio": None,
        "bytes_per_event": None if bytes_per_event is None else round(bytes_per_event),
        "naive_speedup": None,
        "workers": args.workers,
        "parallel_speedup": None if speedup is None else round(speedup, 2),
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
    }))


def _count(engine, table: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _avg_payload(engine) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text("SELECT avg(length(payload)) FROM events")).scalar_one() or 100)


if __name__ == "__main__":
    sys.exit(main())
