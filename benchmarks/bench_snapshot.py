"""Loading cases from their snapshots: CPU seconds, bytes per snapshot, memory (issue 13, compact snapshot).

    python -m benchmarks.bench_snapshot [--cases 8000] [--repeat 3] [--batch 5000] [--profile]

Books N cases (``benchmarks.sweep``'s loans) into a new SQLite file and closes
the date their first installment was missed (so each snapshot holds charges and
a stage), then, in this one process:

- loads all N through ``CaseStore.load_tolerant`` in batches of ``--batch``
  (as the close does), ``--repeat`` times: CPU seconds per run (any cache of
  decoded opening events the store keeps is emptied before each cold run;
  one warm run follows, for what a cache still holding them gives);
- the snapshot column's mean size in bytes;
- the traced memory a batch of loaded cases holds, and the store's own caches
  after the loads (``tracemalloc``);
- with ``--profile``, the top of a cProfile of one cold load (cumulative).

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import sqlite3
import tempfile
import time
import tracemalloc
from pathlib import Path


def _clear_caches() -> None:
    from models import repository

    for name in ("_decode_opened",):
        cache = getattr(repository, name, None)
        if cache is not None and hasattr(cache, "cache_clear"):
            cache.cache_clear()


def _load_all(store, ids: list[str], batch: int) -> int:
    count = 0
    for start in range(0, len(ids), batch):
        loaded, unreadable = store.load_tolerant(ids[start : start + batch])
        if unreadable:
            raise SystemExit(f"unreadable cases: {dict(list(unreadable.items())[:3])}")
        count += len(loaded)
        del loaded
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--database", default=None, help="an SQLite file to reuse (built if missing)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-snapshot-"))
    path = Path(args.database) if args.database else workdir / "snap.db"
    url = f"sqlite:///{path}"
    os.environ["COLLECTFLOW_DATABASE_URL"] = url
    os.environ.setdefault("COLLECTFLOW_DATA_DIR", str(workdir / "data"))
    os.environ.setdefault("COLLECTFLOW_KEY_DIR", str(workdir / "keys"))
    os.environ.setdefault("PREFECT_HOME", str(workdir / "prefect"))

    from datetime import date

    from benchmarks.sweep import DUE_DAY, terms
    from flows.bootstrap import bootstrap
    from flows.handlers.cases import advance_batch, book_loans
    from models.db import make_engine, upgrade
    from models.store import CaseStore
    from states.policy import CollectionPolicy

    fresh = not path.exists()
    engine = make_engine(url)
    upgrade(engine)
    store = CaseStore(engine)
    n = args.cases
    if fresh:
        app = bootstrap(engine=engine, policy=CollectionPolicy(), clock=lambda: date(2026, 12, 1))
        began = time.perf_counter()
        for start in range(0, n, 10_000):
            book_loans(store, [(f"SW{k:08d}", terms(k)) for k in range(start, min(n, start + 10_000))])
        ids = store.due_case_ids(DUE_DAY)
        for start in range(0, len(ids), args.batch):
            advance_batch(app, ids[start : start + args.batch], DUE_DAY)
        print(f"booked and closed {n:,} cases in {time.perf_counter() - began:.1f} s ({path})", flush=True)
    with sqlite3.connect(path) as conn:
        ids = [row[0] for row in conn.execute("SELECT case_id FROM cases ORDER BY case_id")]
        (mean_bytes,) = conn.execute("SELECT AVG(LENGTH(snapshot)) FROM cases").fetchone()
        versions = dict(conn.execute("SELECT json_extract(snapshot, '$.v'), COUNT(*) FROM cases GROUP BY 1").fetchall())
    print(f"{len(ids):,} cases; snapshot {mean_bytes:,.0f} bytes per case (mean); versions {versions}", flush=True)

    _load_all(store, ids[:200], args.batch)  # warm the imports and the engine
    gc.collect()
    cold = []
    for _ in range(args.repeat):
        _clear_caches()
        gc.collect()
        began = time.process_time()
        _load_all(store, ids, args.batch)
        cold.append(time.process_time() - began)
    began = time.process_time()
    _load_all(store, ids, args.batch)  # warm: whatever the store cached on the last cold run
    warm = time.process_time() - began
    print(f"load {len(ids):,} cases, CPU s, cold: {' / '.join(f'{s:.2f}' for s in cold)}; warm: {warm:.2f}; "
          f"{len(ids) / min(cold):,.0f} cases per CPU-second", flush=True)

    _clear_caches()
    gc.collect()
    tracemalloc.start()
    loaded, _ = store.load_tolerant(ids[: args.batch])
    batch_mb, batch_peak_mb = (x / 2**20 for x in tracemalloc.get_traced_memory())
    del loaded
    gc.collect()
    tracemalloc.reset_peak()
    _load_all(store, ids, args.batch)
    gc.collect()
    kept_mb = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    per_case_kb = batch_mb * 1024 / min(args.batch, len(ids))
    print(f"memory: a batch of {min(args.batch, len(ids)):,} loaded cases holds {batch_mb:.1f} MiB ({per_case_kb:.1f} KiB per case, "
          f"peak {batch_peak_mb:.1f}); after loading all {len(ids):,}, the store keeps {kept_mb:.1f} MiB", flush=True)

    if args.profile:
        _clear_caches()
        profile = cProfile.Profile()
        profile.enable()
        _load_all(store, ids, args.batch)
        profile.disable()
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(15)

    print(json.dumps({
        "cases": len(ids),
        "snapshot_bytes": round(mean_bytes),
        "load_cpu_s_cold": [round(s, 3) for s in cold],
        "load_cpu_s_warm": round(warm, 3),
        "batch_mib": round(batch_mb, 1),
        "kept_mib": round(kept_mb, 1),
    }))


if __name__ == "__main__":
    main()
