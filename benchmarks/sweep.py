"""The close against its raw floor, side by side in one run (issue: a million cases per close).

    python -m benchmarks.sweep --cases N [--database URL] [--batch B] [--naive-cases M]
                               [--import-rows R] [--flow-cases F | --no-flow] [--workers W] [--only-parallel] [--only-import]

Builds N open cases all due on one business date (their first installment
missed the day before), then measures, in this one process:

- the close of that date through the same code the daily flow runs per batch
  (``flows.handlers.cases.advance_batch``), cases per second, and peak RSS;
- the raw floor: plain ``sqlite3`` doing the same I/O in one transaction
  (read the N snapshot rows with each case's opening event row, re-read
  their versions, append as many events of the payloads' mean size, update
  the N case rows), on PostgreSQL plain psycopg (the events by COPY, the case
  rows by ``UPDATE ... FROM unnest``), and the close's ratio to it;
- a naive baseline on M cases in the same state on the same date, half of
  them each in a Prefect task of its own (one task and one state machine per
  case: replayed from all its events, advanced, saved in its own
  transaction; Prefect's start-up not counted), the other half the same
  without Prefect (``replay_speedup``), and how many times the close's
  per-case cost each is;
- flow vs direct on a busy day: F more cases due the next day, closed by the
  ``advance-portfolio`` Prefect flow (ephemeral local Prefect, its own
  PREFECT_HOME): its close (``close_business_day`` inside the flow) per case
  against the direct close above (``flow_direct_ratio``), and the whole run
  with Prefect's start-up, the call lists, the seal and the report
  (``flow_total_ratio``);
- a steady day on which 5 % of the cases are due, against the full close,
  directly (``steady_ratio``) and through the flow against the busy day
  through the flow (``steady_flow_ratio``; the report the day before's
  close published is built first, not timed, as in daily operation);
- ``verify`` throughput (events per second; every core, and one process on
  a sample) and bytes per event on disk; then ``verify --incremental`` over
  the store unchanged since its first pass, and after a day on which 5 % of
  the cases were advanced (only those replayed; the rest read and compared
  with their checkpoints' digests);
- ``loans import`` of R new loans from a CSV (``flows.handlers.loans.import_file``,
  as the CLI runs it) into a fresh SQLite file, against plain ``sqlite3``
  inserting the same rows into the same tables of another fresh file;
- the same portfolio booked twice more and closed by 1 and by W worker
  processes (``collectflow advance --worker``, sharing the date through the
  close's batches), wall time each: ``parallel_speedup`` = 1 process / W.

The last line is one JSON object with every figure (null where not measured).
No threshold is asserted: these machines are noisy, so compare ratios from one run.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import sqlite3
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")  # a loaded machine starts it slowly

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
        # the case's state: its snapshot row and its opening event row (the close reads both)
        snapshots = conn.execute(
            f"SELECT f.case_id, f.snapshot, e.payload FROM floor_cases f LEFT JOIN events e ON e.case_id = f.case_id AND e.seq = 1 "
            f"WHERE f.case_id IN ({marks})",
            chunk,
        ).fetchall()
        for _, text, opening in snapshots:
            json.loads(text)
            json.loads(opening)
        conn.execute(f"SELECT case_id, version FROM floor_cases WHERE case_id IN ({marks})", chunk).fetchall()
        conn.executemany(
            "INSERT INTO floor_events VALUES (?, ?, ?, ?)",
            [(case_id, seq, payload, "0" * 64) for case_id in chunk for seq in range(1, per_case + 1)],
        )
        conn.executemany("UPDATE floor_cases SET version = version + 1, snapshot = ? WHERE case_id = ?", [(text, cid) for cid, text, _ in snapshots])
    conn.commit()
    seconds = time.perf_counter() - began
    conn.close()
    return seconds


def raw_floor_postgresql(url: str, case_ids: list[str], events_written: int, payload_bytes: int) -> float:
    """Seconds plain psycopg takes for the close's I/O on PostgreSQL, in one transaction, on a copy of
    the table shapes: the same reads as ``raw_floor``, the events by COPY, the case rows by one
    ``UPDATE ... FROM unnest(...)`` a chunk."""
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    per_case = max(1, events_written // len(case_ids))
    payload = "x" * payload_bytes
    with psycopg.connect(conninfo) as conn:
        conn.execute("CREATE TABLE floor_events (case_id text, seq integer, payload text, hash bytea, PRIMARY KEY (case_id, seq))")
        conn.execute("CREATE TABLE floor_cases AS SELECT case_id, version, snapshot, last_hash FROM cases")
        conn.execute("CREATE UNIQUE INDEX floor_cases_id ON floor_cases (case_id)")
        conn.commit()
        began = time.perf_counter()
        for start in range(0, len(case_ids), 1000):
            chunk = case_ids[start : start + 1000]
            snapshots = conn.execute(
                "SELECT f.case_id, f.snapshot, e.payload FROM floor_cases f LEFT JOIN events e ON e.case_id = f.case_id "
                "AND e.seq = 1 WHERE f.case_id = ANY(%s)",
                (chunk,),
            ).fetchall()
            for _, text, opening in snapshots:
                json.loads(text)
                json.loads(opening)
            conn.execute("SELECT case_id, version FROM floor_cases WHERE case_id = ANY(%s) FOR UPDATE", (chunk,)).fetchall()
            with conn.cursor().copy("COPY floor_events (case_id, seq, payload, hash) FROM STDIN") as copy:
                for case_id in chunk:
                    for seq in range(1, per_case + 1):
                        copy.write_row((case_id, seq, payload, bytes(32)))
            conn.execute(
                "UPDATE floor_cases f SET version = f.version + 1, snapshot = t.snapshot "
                "FROM unnest(%s::text[], %s::text[]) AS t(case_id, snapshot) WHERE f.case_id = t.case_id",
                ([cid for cid, _, _ in snapshots], [text for _, text, _ in snapshots]),
            )
        conn.commit()
        return time.perf_counter() - began


def fresh_store(database: str | None, workdir: Path, name: str) -> str:
    """The URL of a new empty store: a SQLite file in ``workdir``, or a new schema of the PostgreSQL ``database``."""
    if database is None or database.startswith("sqlite"):
        return f"sqlite:///{workdir / f'{name}.db'}"
    import psycopg

    from models.db import database_url

    url = database_url(database)
    schema = f"sweep_{name}_{os.getpid()}_{int(time.time())}"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    atexit.register(_drop_schema, conninfo, schema)  # the benchmark leaves nothing in the database
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def _drop_schema(conninfo: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _children_cpu() -> float:
    """CPU seconds (user and system) of the child processes waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
        began, children_before = time.perf_counter(), _children_cpu()
        plan = plan_day(app, DUE_DAY, size)
        procs = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[1]) for _ in range(count)]
        codes = [proc.wait() for proc in procs]
        total = finish_day(app, plan)
        seconds[count] = time.perf_counter() - began
        workers_cpu = _children_cpu() - children_before  # the workers' own CPU, start-up included (not the server's)
        engine.dispose()
        if any(codes) or total.advanced != n:
            raise SystemExit(f"parallel close with {count} worker(s) failed: exit codes {codes}, {total.advanced} of {n} advanced")
        print(f"close by {count} worker process(es): {n:,} cases in batches of {size:,} in {seconds[count]:.1f} s wall = "
              f"{n / seconds[count]:,.0f} cases/s; the workers' CPU {workers_cpu:.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: a new SQLite file)")
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--naive-cases", type=int, default=None, help="cases of the naive baseline (default: min(N, 2,000))")
    parser.add_argument("--import-rows", type=int, default=None, help="rows of the import figure (default: min(N, 10,000); 0: skip)")
    parser.add_argument("--flow-cases", type=int, default=None, help="cases due on the flow's busy day (default: N)")
    parser.add_argument("--no-flow", action="store_true", help="skip the Prefect flow figure")
    parser.add_argument("--no-steady", action="store_true", help="skip the 5 %%-due day (it closes the book through 45 days first)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the parallel close, against 1 (1: not measured)")
    parser.add_argument("--only-parallel", action="store_true", help="measure only 1 vs W worker processes")
    parser.add_argument("--only-import", action="store_true", help="measure only loans import against the raw insert (--import-rows)")
    parser.add_argument("--keep-files", action="store_true", help="keep the stores it builds (default: removed at exit)")
    parser.add_argument("--no-incremental", action="store_true", help="skip verify --incremental (three more passes over the store)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sweep-"))
    if args.keep_files:
        print(f"the stores are kept in {workdir}", flush=True)
    else:  # a million cases is gigabytes of SQLite files
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    if args.only_import:
        rows = 10_000 if args.import_rows is None else args.import_rows
        import_s, raw_s = import_against_raw(workdir, rows)
        print(f"loans import: {rows:,} new loans in {import_s:.1f} s = {rows / import_s:,.0f} rows/s; the same rows "
              f"inserted by plain sqlite3: {raw_s:.2f} s; the import is {import_s / raw_s:.1f}x the raw insert", flush=True)
        print(json.dumps({"import_rows": rows, "import_rows_per_s": round(rows / import_s, 1),
                          "import_floor_ratio": round(import_s / raw_s, 2)}))
        return
    if args.only_parallel:
        walls = parallel_close(args.database, workdir, args.cases, args.workers, args.batch)
        label = "sqlite" if args.database is None or args.database.startswith("sqlite") else "postgresql"
        speedup = walls[1] / walls[args.workers]
        print(f"{args.workers} processes / 1 process, wall, {label}: {walls[1]:.1f} s / {walls[args.workers]:.1f} s = {speedup:.2f}x", flush=True)
        print(json.dumps({"cases": args.cases, "workers": args.workers, "parallel_speedup": round(speedup, 2), "database": label}))
        return
    url = fresh_store(args.database, workdir, "sweep")  # on PostgreSQL a schema of its own, as the parallel figure's
    os.environ["COLLECTFLOW_DATABASE_URL"] = url
    os.environ.setdefault("COLLECTFLOW_DATA_DIR", str(workdir / "data"))
    os.environ.setdefault("COLLECTFLOW_KEY_DIR", str(workdir / "keys"))
    os.environ.setdefault("PREFECT_HOME", str(workdir / "prefect"))  # not the shared ~/.prefect database

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
    naive_n = min(n, 2_000) if args.naive_cases is None else args.naive_cases
    print(f"booked {n:,} cases in {book_s:.1f} s", flush=True)

    ids = [case_id for case_id in store.due_case_ids(DUE_DAY) if case_id.startswith("SW")]
    events_before = _count(engine, "events")
    began = time.perf_counter()
    for start in range(0, len(ids), args.batch):
        advance_batch(app, ids[start : start + args.batch], DUE_DAY)
    close_s = time.perf_counter() - began
    events_written = _count(engine, "events") - events_before
    rss = peak_rss_mb()
    print(f"close: {len(ids):,} cases, {events_written:,} events in {close_s:.1f} s = {len(ids) / close_s:,.0f} cases/s; peak RSS {rss:.0f} MiB", flush=True)

    payload_bytes = _avg_payload(engine, DUE_DAY)
    if url.startswith("sqlite"):
        floor_s = raw_floor(Path(url.removeprefix("sqlite:///")), ids, events_written, payload_bytes)
        floor_name = "plain sqlite3"
    else:
        floor_s = raw_floor_postgresql(url, ids, events_written, payload_bytes)
        floor_name = "plain psycopg, COPY and UPDATE ... FROM"
    floor_ratio = close_s / floor_s
    print(f"raw floor ({floor_name}, same I/O): {floor_s:.2f} s; the close is {floor_ratio:.1f}x the floor", flush=True)

    flow_ratio = flow_total_ratio = flow_s = startup_s = None
    flow_n = n if args.flow_cases is None else args.flow_cases
    if not args.no_flow and flow_n:
        startup_s = prefect_startup()
        print(f"Prefect start-up (local mode, a first empty flow run): {startup_s:.1f} s, not counted below", flush=True)
        flow_day = DUE_DAY + timedelta(days=1)
        book_loans(store, [(f"FL{k:08d}", terms(k + 30_000_000, FIRST_DUE + timedelta(days=1))) for k in range(flow_n)])
        try:
            flow_s, flow_close_s, flow_advanced = flow_close(flow_day, args.batch)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports what it could not measure
            print(f"flow: not measured ({type(exc).__name__}: {exc})", flush=True)
        else:
            direct_per_case = close_s / len(ids)
            flow_ratio = (flow_close_s / flow_advanced) / direct_per_case
            flow_total_ratio = (flow_s / flow_advanced) / direct_per_case
            print(f"flow (advance-portfolio, ephemeral Prefect): {flow_advanced:,} cases in {flow_s:.1f} s in all; its close "
                  f"{flow_close_s:.1f} s = {flow_ratio:.2f}x the direct close per case; the rest (Prefect start-up, call "
                  f"lists, seal, report; start-up not counted) {flow_s - flow_close_s:.1f} s; in all {flow_total_ratio:.2f}x per case", flush=True)

    steady_s = steady_flow_ratio = None
    steady_day = DUE_DAY + timedelta(days=45)
    if not args.no_steady:
        # a steady day: the book closed up to the day before (not timed), then a day on which a new
        # slice of 5 % of the book is due (its first installment missed the day before)
        steady_n = max(1, n // 20)
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
        if flow_s is not None:  # the same through the flow, against the busy day through the flow
            flow_steady_day = steady_day + timedelta(days=1)
            book = n + steady_n + flow_n
            book_loans(store, [(f"SF{k:08d}", terms(k + 40_000_000, steady_day)) for k in range(max(1, book // 20))])
            from flows.handlers.reports import build_report

            build_report(store, steady_day)  # what the day before's close published (not timed): its month's roll rates kept
            steady_flow_s, _, steady_flow_n = flow_close(flow_steady_day, args.batch)
            steady_flow_ratio = steady_flow_s / flow_s
            print(f"steady day through the flow: {steady_flow_n:,} cases due in {steady_flow_s:.1f} s = {steady_flow_ratio:.3f}x "
                  f"the busy day through the flow ({flow_n:,} cases; the flow's fixed costs weigh on both)", flush=True)

    # last of the Prefect figures: a thousand task runs leave Prefect's local server busy for a while
    naive_speedup = replay_speedup = None
    if naive_n:  # cases in the state the close met (booked, first installment just missed), due on a day of their own
        naive_day = steady_day + timedelta(days=5)
        book_loans(store, [(f"NV{k:08d}", terms(k + 20_000_000, naive_day - timedelta(days=1))) for k in range(naive_n)])
        half = naive_n // 2
        replay_s = naive_close(store, app, [f"NV{k:08d}" for k in range(half)], naive_day)
        replay_speedup = (replay_s / half) / (close_s / len(ids))
        print(f"replay baseline (replay all events, advance, save, per case, no Prefect): {half:,} cases in {replay_s:.1f} s; "
              f"{replay_speedup:.1f}x the close's cost per case", flush=True)
        try:
            naive_s = naive_prefect_close([f"NV{k:08d}" for k in range(half, naive_n)], naive_day)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports what it could not measure
            print(f"naive baseline: not measured ({type(exc).__name__}: {exc})", flush=True)
        else:
            naive_speedup = (naive_s / (naive_n - half)) / (close_s / len(ids))
            print(f"naive baseline (a Prefect task per case: replay, own machine, advance, save): {naive_n - half:,} cases "
                  f"in {naive_s:.1f} s; {naive_speedup:.1f}x the close's cost per case", flush=True)

    sample = ids[: min(len(ids), 2_000)]
    chain_key = app.store.chain_key  # as the CLI verifies: the MACs checked too
    began = time.perf_counter()
    one = verify(engine, case_ids=sample, workers=1, chain_key=chain_key)
    one_s = time.perf_counter() - began
    began = time.perf_counter()
    checked = verify(engine, chain_key=chain_key)
    verify_s = time.perf_counter() - began
    print(f"verify: {checked.events_checked:,} events in {verify_s:.1f} s = {checked.events_checked / verify_s:,.0f} events/s "
          f"({os.cpu_count()} cores; {'ok' if checked.ok else 'FINDINGS'}); one process on {len(sample):,} cases: "
          f"{one.events_checked / one_s:,.0f} events/s", flush=True)

    import_rate = import_ratio = None
    import_rows = min(n, 10_000) if args.import_rows is None else args.import_rows
    if import_rows:
        import_s, raw_s = import_against_raw(workdir, import_rows)
        import_rate, import_ratio = import_rows / import_s, import_s / raw_s
        print(f"loans import: {import_rows:,} new loans in {import_s:.1f} s = {import_rate:,.0f} rows/s; the same rows "
              f"inserted by plain sqlite3: {raw_s:.2f} s; the import is {import_ratio:.1f}x the raw insert", flush=True)

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

    unchanged_rate = changed_rate = None
    if not args.no_incremental:
        # the day the 5 % are advanced to: after every day the sweep closed (the steady days run 45 days on)
        changed_day = DUE_DAY + timedelta(days=30) if args.no_steady else steady_day + timedelta(days=15)
        unchanged_rate, changed_rate = incremental_verify(app, engine, ids, args.batch, changed_day)

    print(json.dumps({
        "cases": n,
        "close_cases_per_s": round(len(ids) / close_s, 1),
        "floor_ratio": None if floor_ratio is None else round(floor_ratio, 2),
        "steady_ratio": None if steady_s is None else round(steady_s / close_s, 4),
        "peak_rss_mb": round(rss, 1),
        "verify_events_per_s": round(checked.events_checked / verify_s, 1),
        "verify_one_process_events_per_s": round(one.events_checked / one_s, 1),
        "verify_incremental_events_per_s": unchanged_rate,
        "verify_incremental_5pct_changed_events_per_s": changed_rate,
        "import_rows_per_s": None if import_rate is None else round(import_rate, 1),
        "import_floor_ratio": None if import_ratio is None else round(import_ratio, 2),
        "bytes_per_event": None if bytes_per_event is None else round(bytes_per_event),
        "naive_speedup": None if naive_speedup is None else round(naive_speedup, 1),
        "replay_speedup": None if replay_speedup is None else round(replay_speedup, 1),
        "flow_direct_ratio": None if flow_ratio is None else round(flow_ratio, 2),
        "flow_total_ratio": None if flow_total_ratio is None else round(flow_total_ratio, 2),
        "prefect_startup_s": None if startup_s is None else round(startup_s, 1),
        "steady_flow_ratio": None if steady_flow_ratio is None else round(steady_flow_ratio, 4),
        "workers": args.workers,
        "parallel_speedup": None if speedup is None else round(speedup, 2),
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
    }))


def incremental_verify(app, engine, ids: list[str], batch: int, day: date) -> tuple[float, float]:
    """``verify --incremental`` (every core), events per second: over the store unchanged since a
    first incremental pass (which replays every case and checkpoints it, not timed), then after a
    day on which 5 % of the cases were advanced (those replayed, the rest read and digested)."""
    from flows.handlers.cases import advance_batch
    from models.audit import verify

    def timed() -> tuple[float, int, int]:
        began = time.perf_counter()
        report = verify(engine, chain_key=app.store.chain_key, incremental=True)
        seconds = time.perf_counter() - began
        if not report.ok or report.checkpoint_problem:
            print(f"verify --incremental: FINDINGS or no checkpoints ({report.checkpoint_problem})", flush=True)
        return report.events_checked / seconds, report.cases_replayed, report.events_checked

    first_rate, first_replayed, _ = timed()
    unchanged_rate, replayed, events_checked = timed()
    print(f"verify --incremental: {events_checked:,} events, nothing changed since its first pass ({first_replayed:,} cases "
          f"replayed at {first_rate:,.0f} events/s): {replayed:,} replayed, {unchanged_rate:,.0f} events/s", flush=True)
    changed = ids[: max(1, len(ids) // 20)]
    advanced = sum(advance_batch(app, changed[start : start + batch], day).advanced for start in range(0, len(changed), batch))
    changed_rate, replayed, events_checked = timed()
    print(f"verify --incremental after {advanced:,} cases ({advanced / len(ids):.0%}) were advanced to {day}: {events_checked:,} "
          f"events, {replayed:,} cases replayed, {changed_rate:,.0f} events/s", flush=True)
    return round(unchanged_rate, 1), round(changed_rate, 1)


def naive_close(store, app, case_ids: list[str], day: date) -> float:
    """Seconds to close ``case_ids`` one by one without snapshots: replay every event, advance, save alone."""
    from states.case import CollectionCase

    began = time.perf_counter()
    for case_id in case_ids:
        case = CollectionCase.replay(store.events(case_id), case_id)
        version = case.version
        case.advance(day, app.policy)
        store.save([(case, case.collect_events())], expected_versions={case_id: version})
    return time.perf_counter() - began


def flow_close(day: date, batch: int) -> tuple[float, float, int]:
    """Seconds the ``advance-portfolio`` flow takes to close ``day`` (Prefect start-up, call lists, seal and
    report included), the seconds of its close inside (``close_business_day``, timed here), cases advanced.
    Prints where the rest went."""
    from flows import daily
    from flows.local_server import local_mode_heartbeats_off

    parts = ("close_business_day", "publish_call_lists", "seal", "daily_report")
    timed = dict.fromkeys(parts, 0.0)
    originals = {name: getattr(daily, name) for name in parts}

    def timer(name, function):
        def timed_call(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                timed[name] += time.perf_counter() - began
        return timed_call

    for name, function in originals.items():
        setattr(daily, name, timer(name, function))
    try:
        began = time.perf_counter()
        with local_mode_heartbeats_off():  # as `collectflow advance` runs it in local mode
            state = daily.advance_portfolio(business_date=day, batch_size=batch, return_state=True)
        seconds = time.perf_counter() - began
    finally:
        for name, function in originals.items():
            setattr(daily, name, function)
    rest = seconds - sum(timed.values())
    print("  flow parts: " + ", ".join(f"{name} {t:.1f} s" for name, t in timed.items()) + f", Prefect and the rest {rest:.1f} s", flush=True)
    return seconds, timed["close_business_day"], state.result()["advanced"]


def prefect_startup() -> float:
    """Seconds a first, empty flow run takes: Prefect's local server starting in this process."""
    from prefect import flow

    @flow(name="warm-up")
    def warm_up() -> None:
        return None

    began = time.perf_counter()
    warm_up()
    return time.perf_counter() - began


def naive_prefect_close(case_ids: list[str], day: date) -> float:
    """Seconds to close ``case_ids`` the naive way: a Prefect flow with one task per case, each task
    replaying the case from all its events (its own state machine), advancing it and saving it alone."""
    from prefect import flow, task

    from flows import runtime
    from flows.local_server import local_mode_heartbeats_off
    from states.case import CollectionCase

    @task(name="naive-advance-case")
    def advance_one(case_id: str) -> int:
        store = runtime.store()
        case = CollectionCase.replay(store.events(case_id), case_id)
        version = case.version
        case.advance(day, runtime.app().policy)
        return store.save([(case, case.collect_events())], expected_versions={case_id: version})

    @flow(name="naive-close")
    def naive(ids: list[str]) -> int:
        return sum(advance_one(case_id) for case_id in ids)

    naive([])  # Prefect's start-up is not the naive close's cost
    began = time.perf_counter()
    with local_mode_heartbeats_off():  # as the flow close above
        written = naive(case_ids)
    seconds = time.perf_counter() - began
    if not written:
        raise RuntimeError("the naive close wrote no event: its cases were not due")
    return seconds


def import_against_raw(workdir: Path, rows: int) -> tuple[float, float]:
    """Seconds ``loans import`` takes for ``rows`` new loans into a fresh SQLite file, and seconds plain
    ``sqlite3`` takes to insert the rows it wrote into the same tables of another fresh file."""
    from benchmarks.bench_import import BUSINESS_DATE, SECRET, write_file
    from flows.handlers.loans import import_file
    from models.crypto import Keyring
    from models.db import make_engine, upgrade
    from models.store import CaseStore
    from states.policy import CollectionPolicy

    csv_path = workdir / f"loans-{rows}.csv"
    write_file(csv_path, rows, past_days=28)
    imported, fresh = workdir / "import.db", workdir / "raw-insert.db"
    for path in (imported, fresh):
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
    engine = make_engine(f"sqlite:///{imported}")
    report = import_file(CaseStore(engine), csv_path, business_date=BUSINESS_DATE, policy=CollectionPolicy(),
                         keyring=Keyring.from_secret(SECRET))
    engine.dispose()
    import_s = report.seconds
    source, target = sqlite3.connect(imported), sqlite3.connect(fresh)
    from models.tables import SQLModel

    tables = []
    for table in SQLModel.metadata.sorted_tables:  # parents before children
        empty_before = target.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()[0] == 0
        data = source.execute(f'SELECT * FROM "{table.name}"').fetchall()
        if empty_before and data:  # the rows the import wrote
            columns = [d[1] for d in source.execute(f'PRAGMA table_info("{table.name}")')]
            tables.append((table.name, columns, data))
    target.execute("PRAGMA journal_mode=WAL")
    target.execute("PRAGMA synchronous=NORMAL")
    began = time.perf_counter()
    target.execute("BEGIN IMMEDIATE")
    for name, columns, data in tables:
        names = ", ".join(f'"{c}"' for c in columns)
        target.executemany(f'INSERT INTO "{name}" ({names}) VALUES ({", ".join("?" * len(columns))})', data)
    target.commit()
    raw_s = time.perf_counter() - began
    source.close()
    target.close()
    return import_s, raw_s


def _count(engine, table: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _avg_payload(engine, day: date) -> int:
    """The mean payload length of the events the close of ``day`` wrote."""
    from sqlalchemy import text

    with engine.connect() as conn:
        query = text("SELECT avg(length(payload)) FROM events WHERE business_date = :day")
        return int(conn.execute(query, {"day": day.isoformat()}).scalar_one() or 100)


if __name__ == "__main__":
    sys.exit(main())
