"""Daily close throughput, measured side by side in one run.

Books N cases (default 20,000) in a fresh SQLite file, then times:

  1. a busy day (every case due) advanced by the store directly, in batches;
  2. the same kind of day through the Prefect flow (local mode), to show what
     orchestration costs on top (one task per batch, never per case);
  3. a quiet day (no case due): the close costs the query, not the portfolio;
  4. the naive alternative: loading and stepping every case every day.

Prints figures and ratios, with the CPU seconds of the direct closes (steadier than wall
time on a shared machine; compare two branches by alternating runs); no threshold is asserted
(machines here are noisy).

    .venv/bin/python benchmarks/bench_close.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
DISBURSED = date(2026, 1, 5)
FIRST_DUE = date(2026, 2, 5)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-close-"))
    os.environ["COLLECTFLOW_DATABASE_URL"] = f"sqlite:///{workdir / 'bench.db'}"

    from flows import runtime
    from flows.daily import advance_portfolio
    from flows.handlers.cases import advance_batch, book_loans
    from models.db import upgrade
    from states.loan import LoanTerms

    upgrade(os.environ["COLLECTFLOW_DATABASE_URL"])
    app = runtime.app()
    store = app.store
    loans = [
        (
            f"B{n:07d}",
            LoanTerms(
                contract_no=f"BENCH-{n:07d}",
                borrower_id=f"P{n:07d}",
                principal=Decimal(5000 + (n % 40) * 500),
                annual_rate=Decimal("0.18"),
                term_months=12,
                repayment_method="equal_installment",
                disbursed_on=DISBURSED,
                first_due_on=FIRST_DUE,
            ),
        )
        for n in range(N)
    ]
    began = time.perf_counter()
    book_loans(store, loans)
    book_s = time.perf_counter() - began

    cpu: dict[str, float] = {}

    def direct_close(day: date, batch: int, name: str) -> tuple[float, int]:
        began, cpu_began = time.perf_counter(), time.process_time()
        ids = store.due_case_ids(day)
        for i in range(0, len(ids), batch):
            advance_batch(app, ids[i : i + batch], day)
        cpu[name] = time.process_time() - cpu_began
        return time.perf_counter() - began, len(ids)

    # 1. busy day: every case's first installment was missed yesterday
    busy_s, busy_n = direct_close(FIRST_DUE + timedelta(days=1), 5_000, "busy day, store directly (batches of 5,000)")
    # 2. the next busy day (DPD 4: every case escalates to phone) through the Prefect flow
    began = time.perf_counter()
    state = advance_portfolio(business_date=FIRST_DUE + timedelta(days=4), batch_size=5_000, return_state=True)
    flow_s = time.perf_counter() - began
    flow_n = state.result()["advanced"]
    # ... and the same kind of day (month end posting) directly, for a like-for-like ratio
    busy2_s, busy2_n = direct_close(date(2026, 2, 28), 5_000, "busy day (month end), store directly")
    # 3. a quiet day: nothing is due between two reviews
    quiet_s, quiet_n = direct_close(FIRST_DUE + timedelta(days=5), 5_000, "quiet day: nothing due")
    # 4. naive: load and step every case every day
    began = time.perf_counter()
    ids = [case_id for case_id, _ in loans]
    for i in range(0, len(ids), 5_000):
        cases = store.load(ids[i : i + 5_000])
        for case in cases.values():
            case.advance(date(2026, 3, 1), app.policy)
    naive_s = time.perf_counter() - began

    print(f"collectflow daily close, {N:,} cases, SQLite ({workdir})")
    print(f"{'step':58} {'cases':>8} {'seconds':>9} {'cases/s':>9} {'CPU s':>7}")
    rows = [
        ("book the portfolio", N, book_s),
        ("busy day, store directly (batches of 5,000)", busy_n, busy_s),
        ("busy day, Prefect flow in local mode (incl. start-up)", flow_n, flow_s),
        ("busy day (month end), store directly", busy2_n, busy2_s),
        ("quiet day: nothing due", quiet_n, quiet_s),
        ("naive: load and step every case (no next_review_on)", N, naive_s),
    ]
    for name, n, seconds in rows:
        rate = f"{n / seconds:,.0f}" if n and seconds else "-"
        used = f"{cpu[name]:.2f}" if name in cpu else "-"
        print(f"{name:58} {n:>8,} {seconds:>9.2f} {rate:>9} {used:>7}")
    print()
    print(f"flow / direct (same kind of day):        {flow_s / busy2_s:5.2f}x  (Prefect start-up and task runs)")
    print(f"quiet day / busy day:                    {quiet_s / busy_s:7.4f}x  (a day's cost follows the work due)")
    print(f"naive every-case step / quiet day:       {naive_s / max(quiet_s, 1e-6):7.0f}x")


if __name__ == "__main__":
    main()
