"""The morning call lists from the case rows' facts against loading every calling case (issue 13).

    python -m benchmarks.bench_call_list [--cases 8000] [--repeat 3] [--database FILE]

Books N cases (``benchmarks.sweep``'s loans, every 10th borrower with a second
loan) into a new SQLite file and closes them into the phone stage, records a
connected call on every 7th (three on every 49th, which leaves it out of the
day's list), then, in this one process, alternating, ``--repeat``
times each:

- ``call_lists_by_team`` as the daily close publishes it (the rows' call-list
  facts, ``store.call_facts``);
- the same lists built as before the facts were kept: every calling case loaded
  from its snapshot and opening event (``store.load``), and the borrowers' other
  loans loaded for their contact counters, then judged by the same
  ``states.worklist.call_list``;

and checks both give the same entries and the same cases left out. Prints the
wall seconds of each, cases per second and the ratio. The last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", default=None, help="an SQLite file to reuse (built if missing)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-call-list-"))
    path = Path(args.database) if args.database else workdir / "calls.db"
    url = f"sqlite:///{path}"
    os.environ["COLLECTFLOW_DATABASE_URL"] = url
    os.environ.setdefault("COLLECTFLOW_DATA_DIR", str(workdir / "data"))
    os.environ.setdefault("COLLECTFLOW_KEY_DIR", str(workdir / "keys"))
    os.environ.setdefault("PREFECT_HOME", str(workdir / "prefect"))

    from dataclasses import replace

    from benchmarks.sweep import DUE_DAY, terms
    from flows.bootstrap import bootstrap
    from flows.handlers.cases import advance_batch, book_loans, handle
    from flows.handlers.worklists import CALLING_STAGES, call_lists_by_team
    from models.db import make_engine, upgrade
    from models.store import CaseStore
    from states import worklist
    from states.commands import RecordContact
    from states.contact import borrower_day
    from states.policy import CollectionPolicy

    phone_day = DUE_DAY + timedelta(days=10)
    list_day = phone_day + timedelta(days=1)
    fresh = not path.exists()
    engine = make_engine(url)
    upgrade(engine)
    store = CaseStore(engine)
    policy = CollectionPolicy(teams={"north": 50, "south": 30, "west": 20})
    app = bootstrap(engine=engine, policy=policy, clock=lambda: list_day)
    n = args.cases
    if fresh:
        began = time.perf_counter()
        for start in range(0, n, 10_000):
            loans = [(f"SW{k:08d}", terms(k)) for k in range(start, min(n, start + 10_000))]
            loans = [(i, replace(t, borrower_id=f"P{k - k % 2:08d}") if k % 20 < 2 else t) for k, (i, t) in enumerate(loans, start)]
            book_loans(store, loans)
        for day in (DUE_DAY, phone_day):
            ids = store.due_case_ids(day)
            for start in range(0, len(ids), 5_000):
                advance_batch(app, ids[start : start + 5_000], day)
        for k in range(0, n, 7):  # a call on every 7th; every 49th's three calls leave it (and its borrower's other loan) out
            for hour in (9, 10, 11) if k % 49 == 0 else (10,):
                at = datetime(list_day.year, list_day.month, list_day.day, hour)
                handle(RecordContact(case=f"SW{k:08d}", operator="op-1", channel="call", party="borrower", outcome="connected", contacted_at=at), app)
        print(f"booked, closed into the phone stage and called {n:,} cases in {time.perf_counter() - began:.1f} s ({path})", flush=True)

    def from_loaded_cases() -> tuple[list, list]:
        several = store.borrowers_with_several_loans()
        entries, left_out = [], []
        ids = store.case_ids_in_stages(CALLING_STAGES)
        for start in range(0, len(ids), 2_000):
            loaded = store.load(ids[start : start + 2_000])
            others = {i: several[i] for i in loaded if i in several}
            contacts = {i: c.contact for i, c in store.load({o for os_ in others.values() for o in os_}).items()}
            elsewhere = {i: borrower_day([contacts[o] for o in os_ if o in contacts], list_day) for i, os_ in others.items()}
            chosen, skipped = worklist.call_list(loaded.values(), list_day, policy.teams, None, elsewhere)
            entries += chosen
            left_out += skipped
        entries.sort(key=worklist.calling_order)
        return entries, sorted(left_out, key=lambda e: e.case_id)

    def from_facts() -> tuple[list, list]:
        lists = call_lists_by_team(app, list_day)
        entries = sorted((e for calls in lists.values() for e in calls.entries), key=worklist.calling_order)
        return entries, sorted((o for calls in lists.values() for o in calls.left_out), key=lambda e: e.case_id)

    calling = len(store.case_ids_in_stages(CALLING_STAGES))
    facts_s, loaded_s = [], []
    for _ in range(args.repeat):
        for label, build, times in (("facts", from_facts, facts_s), ("loaded", from_loaded_cases, loaded_s)):
            began = time.perf_counter()
            result = build()
            times.append(time.perf_counter() - began)
            if label == "facts":
                facts_result = result
            else:
                assert [e.as_dict() for e in result[0]] == [e.as_dict() for e in facts_result[0]], "the entries differ"
                assert result[1] == facts_result[1], "the cases left out differ"
    entries, left_out = facts_result
    best_facts, best_loaded = min(facts_s), min(loaded_s)
    print(f"{calling:,} calling cases: {len(entries):,} calls, {len(left_out):,} left out; both ways give the same lists", flush=True)
    print(f"from the rows' facts: {' / '.join(f'{s:.2f}' for s in facts_s)} s = {calling / best_facts:,.0f} cases/s", flush=True)
    print(f"loading every case:   {' / '.join(f'{s:.2f}' for s in loaded_s)} s = {calling / best_loaded:,.0f} cases/s", flush=True)
    print(f"loading ÷ facts: {best_loaded / best_facts:.1f}x", flush=True)
    print(json.dumps({
        "cases": n, "calling": calling, "calls": len(entries), "left_out": len(left_out),
        "facts_s": round(best_facts, 3), "loaded_s": round(best_loaded, 3), "speedup": round(best_loaded / best_facts, 2),
        "as_of": date.isoformat(list_day),
    }))


if __name__ == "__main__":
    main()
