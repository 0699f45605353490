"""Payment file import: rows per second on SQLite (and PostgreSQL when a server is given).

    .venv/bin/python benchmarks/bench_payments.py                          # 100,000 rows, SQLite
    .venv/bin/python benchmarks/bench_payments.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/bench_payments.py --rows 20000 --cases 5000 --profile

Each run is a fresh process with an empty database (a SQLite file; a
PostgreSQL database created for the run and dropped after). It first books
``--cases`` loans (disbursed 2026-09-20, first due 2026-10-20) and closes
them through 2026-11-20 as the daily close would (not timed), then imports
a CSV of ``--rows`` payments spread over them (about rows / cases a case,
dated from 2026-11-21 to the business date 2026-11-28: a week of a
channel's feed, in shuffled order, so each case's payments must be sorted
by date), through ``flows.handlers.payments.import_payments`` exactly as
``collectflow payments import`` runs it. Reported: rows/s, wall time, events
written, rows applied and rejected (a few payments land on a case that an
earlier one settled: the domain refuses them), the memory high-water mark.
``--profile`` prints the 25 costliest functions of the import (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import os
import pstats
import random
import resource
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_import import postgres_database  # noqa: E402  (benchmarks/ is this script's folder)

BUSINESS_DATE = date(2026, 11, 28)
DISBURSED, FIRST_DUE = date(2026, 9, 20), date(2026, 10, 20)
CLOSED = date(2026, 11, 20)  # the last close before the payments
FIRST_PAID = CLOSED + timedelta(days=1)
CHANNELS = ("bank_transfer", "alipay", "wechat_pay", "cash", "agency")


def contract(n: int) -> str:
    return f"PB{n:08d}"


def write_file(path: Path, rows: int, cases: int, seed: int = 2026) -> None:
    from states.paymentfile import COLUMNS

    rng = random.Random(seed)
    days = (BUSINESS_DATE - FIRST_PAID).days
    lines = [
        {
            "payment_id": f"BANK-{n:09d}",
            "contract_no": contract(1 + n % cases),
            "amount": f"{rng.randrange(5_000, 80_000) / 100:.2f}",
            "paid_on": (FIRST_PAID + timedelta(days=rng.randrange(0, days + 1))).isoformat(),
            "channel": rng.choice(CHANNELS),
            "currency": "CNY",
            "payer_name": "",
        }
        for n in range(rows)
    ]
    rng.shuffle(lines)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, [c.name for c in COLUMNS])
        writer.writeheader()
        writer.writerows(lines)


def book(app, cases: int) -> None:
    from states.case import CollectionCase
    from states.loan import LoanTerms

    from flows.handlers.cases import advance_batch

    store = app.store
    lpr = store.lpr_table()
    for start in range(1, cases + 1, 2_000):
        items = []
        for n in range(start, min(start + 2_000, cases + 1)):
            terms = LoanTerms(
                contract_no=contract(n), borrower_id=f"PB-B{n:08d}", principal=Decimal(3_000 + n % 20 * 1_000),
                annual_rate=Decimal("0.18"), term_months=12, repayment_method="equal_installment",
                disbursed_on=DISBURSED, first_due_on=FIRST_DUE,
            )
            case, events = CollectionCase.open(f"C-{contract(n)}", terms, lpr)
            case.collect_events()
            items.append((terms, case, events))
        store.add_cases(items)
        advance_batch(app, [case.case_id for _, case, _ in items], CLOSED)


def import_once(url: str, path: Path, cases: int, profile: bool) -> dict:
    """Run in a child process: book the cases into the empty database at ``url``, then import ``path``."""
    from flows.bootstrap import bootstrap
    from flows.handlers.payments import import_payments
    from models.db import make_engine, upgrade

    engine = make_engine(url)
    upgrade(engine)
    app = bootstrap(engine=engine, clock=lambda: BUSINESS_DATE)
    began = time.perf_counter()
    book(app, cases)
    booking = time.perf_counter() - began

    def on_progress(stage: str, rows: int, done: int, total: int) -> None:
        print(f"\r  {stage} {done / max(total, 1):6.1%} {rows:,} rows ", end="", file=sys.stderr, flush=True)

    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    report = import_payments(
        app, path, business_date=BUSINESS_DATE, operator="bench-op", rejects=path.with_suffix(f".{uuid.uuid4().hex[:6]}.rejects.csv"),
        on_progress=on_progress,
    )
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(25)
    print(file=sys.stderr)
    if report.rejects_file:
        Path(report.rejects_file).unlink()
    engine.dispose()
    return {
        "cases": cases,
        "booking_seconds": round(booking, 1),
        "rows": report.rows,
        "applied": report.applied,
        "unchanged": report.unchanged,
        "rejected": report.rejected,
        "first_rejections": report.rejections[:3],
        "events": report.events,
        "cases_cured": report.cases_cured,
        "cases_settled": report.cases_settled,
        "amount_applied": str(report.amount_applied),
        "seconds": round(report.seconds, 1),
        "rows_per_second": round(report.rows_per_second),
        "rss_high_water_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run_child(url: str, path: Path, cases: int, profile: bool) -> dict:
    command = [sys.executable, __file__, "--child", url, str(path), str(cases)] + (["--profile"] if profile else [])
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=25_000)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/collectflow-bench-payments"))
    parser.add_argument("--postgres", help="a PostgreSQL server's URL (an admin database): also run there")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("URL", "FILE", "CASES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(import_once(args.child[0], Path(args.child[1]), int(args.child[2]), args.profile)))
        return

    args.work_dir.mkdir(parents=True, exist_ok=True)
    path = args.work_dir / f"payments-{args.rows}-{args.cases}.csv"
    if not path.exists():
        write_file(path, args.rows, args.cases)
    results: dict[str, dict] = {}
    database = args.work_dir / f"payments-{uuid.uuid4().hex[:8]}.db"
    print(f"SQLite: {database}", file=sys.stderr)
    try:
        results["sqlite"] = run_child(f"sqlite:///{database}", path, args.cases, args.profile)
    finally:
        for leftover in args.work_dir.glob(database.name + "*"):
            leftover.unlink()
    if args.postgres:
        with postgres_database(args.postgres) as url:
            results["postgresql"] = run_child(url, path, args.cases, args.profile)

    print(f"\npayment import, {args.rows:,} rows over {args.cases:,} cases ({path.stat().st_size / 2**20:.1f} MiB CSV)\n")
    print("| database | rows/s | wall | applied | rejected | events | RSS high-water |")
    print("|---|---|---|---|---|---|---|")
    for db, r in results.items():
        print(f"| {db} | {r['rows_per_second']:,} | {r['seconds']:,} s | {r['applied']:,} | {r['rejected']:,} | {r['events']:,} | {r['rss_high_water_mb']} MiB |")
    print("\n" + json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
