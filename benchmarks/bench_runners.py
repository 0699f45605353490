"""The close through the flow with each task runner, side by side in one run (which to choose).

    python -m benchmarks.bench_runners --cases N [--batch B] [--workers W] [--database URL] [--runners sequential,thread,dask]

For each runner, books the same N cases all due on one date into a fresh
store (a SQLite file, or a new schema of the PostgreSQL database given), then
closes that date through ``advance_portfolio`` in Prefect's local mode with
COLLECTFLOW_TASK_RUNNER set, and prints the wall time and cases per second;
the last line is one JSON object {runner: seconds}. No threshold is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # a loaded machine starts it slowly

from benchmarks.sweep import DUE_DAY, fresh_store, terms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (default: SQLite files)")
    parser.add_argument("--runners", default="sequential,thread,dask")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-runners-"))
    os.environ.setdefault("COLLECTFLOW_KEY_DIR", str(workdir / "keys"))
    os.environ.setdefault("COLLECTFLOW_SEALS_DIR", str(workdir / "seals"))
    os.environ["COLLECTFLOW_TASK_RUNNER_WORKERS"] = str(args.workers)

    from flows import runtime
    from flows.daily import advance_portfolio
    from flows.handlers.cases import book_loans
    from models.db import upgrade

    from prefect import flow

    flow(name="warm-up")(lambda: None)()  # the local Prefect server starts here, outside every timing
    seconds: dict[str, float] = {}
    for runner in args.runners.split(","):
        url = fresh_store(args.database, workdir, runner)
        os.environ["COLLECTFLOW_DATABASE_URL"] = url
        os.environ["COLLECTFLOW_TASK_RUNNER"] = runner
        upgrade(url)
        runtime.forget()
        store = runtime.store()
        for start in range(0, args.cases, 10_000):
            book_loans(store, [(f"SW{k:08d}", terms(k)) for k in range(start, min(args.cases, start + 10_000))])
        began = time.perf_counter()
        state = advance_portfolio(business_date=DUE_DAY, batch_size=args.batch, return_state=True)
        seconds[runner] = time.perf_counter() - began
        result = state.result(raise_on_failure=False)
        print(f"{runner:>10}: {state.type.value}, {seconds[runner]:.1f} s = {args.cases / seconds[runner]:,.0f} cases/s "
              f"({args.cases:,} cases, batches of {args.batch}, {args.workers} workers) {getattr(result, 'get', lambda *_: '')('advanced', '')}", flush=True)
    print(json.dumps({"cases": args.cases, "batch": args.batch, "workers": args.workers,
                      "database": "sqlite" if args.database is None else "postgresql",
                      "seconds": {k: round(v, 2) for k, v in seconds.items()}}))


if __name__ == "__main__":
    sys.exit(main())
