"""Loan book import: rows per second on SQLite and PostgreSQL, and the memory it takes.

    .venv/bin/python benchmarks/bench_import.py                  # 100,000 rows on each database
    .venv/bin/python benchmarks/bench_import.py --rows 1000000   # the issue's million
    .venv/bin/python benchmarks/bench_import.py --past-days 120  # loans with dues in the past

Writes a realistic CSV once (cached under --work-dir): invented borrowers
(``flows.simulation.make_person``: names, valid national ids, phones,
addresses, 30 % with a guarantor) and the demo's loan mix, disbursed over
the ``--past-days`` days before the business date (default 28: every first
due date still ahead, the shape of a daily feed; more days put dues in the
past, so the import also reviews those cases up to the business date).

Each import runs in a fresh process against an empty database (a SQLite
file; a PostgreSQL database created for the run and dropped after), through
``flows.handlers.loans.import_file`` exactly as ``collectflow loans import``
runs it. Reported: wall time, rows/s, events written, the resident set size
at 10 %, 50 % and 100 % of the file and its high-water mark (bounded memory
means the three stay flat however long the file), and the database size.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUSINESS_DATE = date(2026, 11, 28)
SECRET = "benchmark-secret-benchmark-secret-0123456789"


def write_file(path: Path, rows: int, past_days: int, seed: int = 2026) -> None:
    from flows.simulation import make_person, make_terms
    from states.loanfile import COLUMNS, LoanRecord, record_values

    rng = random.Random(seed)
    tmp = path.with_suffix(".partial")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, [c.name for c in COLUMNS])
        writer.writeheader()
        for n in range(1, rows + 1):
            disbursed = BUSINESS_DATE - timedelta(days=rng.randrange(0, past_days))
            terms = make_terms(rng, n, disbursed)
            record = LoanRecord(n, replace(terms, contract_no=f"BM{n:09d}", borrower_id=f"P{n:09d}"), make_person(seed, n))
            writer.writerow({k: "" if v is None else v for k, v in record_values(record).items()})
            if n % 100_000 == 0:
                print(f"  wrote {n:,} rows", file=sys.stderr, flush=True)
    tmp.rename(path)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def import_once(url: str, path: Path) -> dict:
    """Run in a child process: import ``path`` into the empty database at ``url``."""
    from models.crypto import Keyring
    from models.db import make_engine, upgrade
    from flows.handlers.loans import import_file
    from models.store import CaseStore
    from states.policy import CollectionPolicy

    engine = make_engine(url)
    upgrade(engine)
    store = CaseStore(engine)
    marks: dict[str, float] = {}
    started = rss_mb()

    def on_progress(rows: int, done: int, total: int) -> None:
        for label, fraction in (("10%", 0.1), ("50%", 0.5), ("100%", 1.0)):
            if label not in marks and done >= fraction * total:
                marks[label] = round(rss_mb(), 1)
        print(f"\r  {done / total:6.1%} {rows:,} rows", end="", file=sys.stderr, flush=True)

    report = import_file(
        store, path, business_date=BUSINESS_DATE, policy=CollectionPolicy(), keyring=Keyring.from_secret(SECRET),
        on_progress=on_progress,
    )
    print(file=sys.stderr)
    size = None
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            from sqlalchemy import text

            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
    if engine.dialect.name == "sqlite":
        database = Path(engine.url.database)
        size = sum(p.stat().st_size for p in database.parent.glob(database.name + "*"))
    engine.dispose()
    return {
        "rows": report.rows,
        "booked": report.booked,
        "rejected": report.rejected,
        "events": report.events,
        "seconds": round(report.seconds, 1),
        "rows_per_second": round(report.rows_per_second),
        "rss_start_mb": round(started, 1),
        "rss_mb_at": marks,
        "rss_high_water_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "database_mb": round(size / 2**20, 1) if size else None,
    }


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A PostgreSQL database created for one run on the server at ``admin_url``, dropped after; its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url)
    name = f"collectflow_bench_{uuid.uuid4().hex[:8]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    print(f"PostgreSQL: database {name}", file=sys.stderr)
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_child(url: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, str(path)], check=True, stdout=subprocess.PIPE, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--past-days", type=int, default=28)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/collectflow-bench-import"))
    parser.add_argument("--postgres", default=os.environ.get("COLLECTFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--child", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(import_once(args.child[0], Path(args.child[1]))))
        return

    args.work_dir.mkdir(parents=True, exist_ok=True)
    path = args.work_dir / f"loans-{args.rows}-{args.past_days}d.csv"
    if not path.exists():
        print(f"writing {path} ...", file=sys.stderr)
        began = time.perf_counter()
        write_file(path, args.rows, args.past_days)
        print(f"  {time.perf_counter() - began:.0f} s, {path.stat().st_size / 2**20:.0f} MiB", file=sys.stderr)

    results: dict[str, dict] = {}
    if args.only in (None, "sqlite"):
        database = args.work_dir / f"import-{uuid.uuid4().hex[:8]}.db"
        print(f"SQLite: {database}", file=sys.stderr)
        try:
            results["sqlite"] = run_child(f"sqlite:///{database}", path)
        finally:
            for leftover in args.work_dir.glob(database.name + "*"):
                leftover.unlink()
    if args.only in (None, "postgresql"):
        with postgres_database(args.postgres) as url:
            results["postgresql"] = run_child(url, path)

    print(f"\nloan import, {args.rows:,} rows disbursed over the {args.past_days} days before {BUSINESS_DATE} "
          f"({path.stat().st_size / 2**20:.0f} MiB CSV), {os.cpu_count()} CPUs\n")
    print("| database | rows/s | wall | events | RSS at 10 % / 50 % / 100 % | RSS high-water | database size |")
    print("|---|---|---|---|---|---|---|")
    for db, r in results.items():
        at = r["rss_mb_at"]
        print(
            f"| {db} | {r['rows_per_second']:,} | {r['seconds']:,} s | {r['events']:,} | "
            f"{at.get('10%')} / {at.get('50%')} / {at.get('100%')} MiB | {r['rss_high_water_mb']} MiB | {r['database_mb']} MiB |"
        )
    print("\n" + json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
