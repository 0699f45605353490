"""The close's batches: planned once, claimed under leases, taken over when a lease runs out, done once.

On SQLite and PostgreSQL, in one process (the workers here are owners of
claims); tests/integration/test_close_workers.py runs real worker processes.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from flows.bootstrap import bootstrap
from flows.handlers.cases import advance_batch
from flows.handlers.close import CloseNotDone, close_next_batch, finish_day, plan_day, work_day
from models.db import make_engine, upgrade
from models.settings import Settings
from models.store import CaseStore
from tests.integration.builders import FIRST_DUE, POLICY, book

DAY = FIRST_DUE + timedelta(days=10)


def make_app(engine, tmp_path, **settings):
    values = dict(database_url=str(engine.url), key_dir=tmp_path / "keys", seals_dir=tmp_path / "seals", data_dir=tmp_path / "data")
    values.update(settings)
    return bootstrap(Settings(**values), engine=engine, policy=POLICY, clock=lambda: date(2026, 12, 1))


def test_a_close_is_planned_once_into_case_id_ranges_and_a_second_planner_takes_it_up(store, tmp_path):
    ids = book(store, 23)
    app = make_app(store.engine, tmp_path)
    plan = plan_day(app, DAY, batch_size=10)
    assert (plan.run_no, plan.batches, plan.cases, plan.adopted) == (1, 3, 23, False)
    rows = store.batch_rows(DAY)
    assert [(r["first_case_id"], r["last_case_id"], r["cases"]) for r in rows] == [
        (ids[0], ids[9], 10), (ids[10], ids[19], 10), (ids[20], ids[22], 3),
    ]
    again = plan_day(app, DAY, batch_size=5)  # a crashed coordinator's rerun, or a second one
    assert (again.run_no, again.batches, again.adopted) == (1, 3, True)
    assert len(store.batch_rows(DAY)) == 3


def test_two_owners_never_hold_one_batch_and_a_run_out_lease_is_taken_over(store, tmp_path):
    book(store, 6)
    app = make_app(store.engine, tmp_path)
    plan = plan_day(app, DAY, batch_size=3)
    first = store.claim_batch(DAY, plan.run_no, "worker-a", lease_seconds=0.5)
    second = store.claim_batch(DAY, plan.run_no, "worker-b", lease_seconds=60)
    assert (first.batch_no, second.batch_no) == (1, 2)
    assert store.claim_batch(DAY, plan.run_no, "worker-c", lease_seconds=60) is None  # both held
    time.sleep(0.8)  # worker-a died: its lease runs out
    taken = store.claim_batch(DAY, plan.run_no, "worker-c", lease_seconds=60)
    assert (taken.batch_no, taken.attempt) == (1, 2)
    assert not store.renew_lease(first, 60)  # the dead owner's lease is gone for good
    assert store.renew_lease(taken, 60)


def test_a_batch_finished_by_two_owners_counts_each_case_once(store, tmp_path):
    ids = book(store, 4)
    app = make_app(store.engine, tmp_path, lease_seconds=0.3)
    plan = plan_day(app, DAY, batch_size=4)
    slow = store.claim_batch(DAY, plan.run_no, "slow", lease_seconds=0.3)
    first_half = advance_batch(app, ids[:2], DAY)  # the slow owner commits half, then its lease runs out
    time.sleep(0.5)
    outcome = close_next_batch(app, plan)  # another takes it over: only the rest is still due
    assert (outcome.batch.batch_no, outcome.result.advanced) == (1, 2)
    from flows.handlers.close import merge_results

    store.finish_batch(slow, first_half.as_dict(), merge=merge_results)  # the slow one finishes late
    total = finish_day(app, plan)
    assert total.advanced == 4
    assert store.business_day(DAY).status == "closed"
    assert store.business_day(DAY).cases_advanced == 4
    assert finish_day(app, plan).advanced == 4  # a second finisher (two coordinators) adds nothing
    assert store.business_day(DAY).cases_advanced == 4


def test_the_day_is_not_closed_while_a_batch_is_open(store, tmp_path):
    book(store, 4)
    app = make_app(store.engine, tmp_path)
    plan = plan_day(app, DAY, batch_size=2)
    store.begin_business_day(DAY)
    close_next_batch(app, plan)
    with pytest.raises(CloseNotDone, match="1 of 2 batches not done"):
        finish_day(app, plan)
    assert store.business_day(DAY).status == "running"


def test_one_worker_through_the_batches_ends_as_the_plain_close(engine, db_url, tmp_path):
    reference_engine = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    upgrade(reference_engine)
    reference = CaseStore(reference_engine)
    store = CaseStore(engine)
    ids = book(store, 12)
    book(reference, 12)
    advance_batch(make_app(reference_engine, tmp_path), ids, DAY)
    app = make_app(engine, tmp_path)
    plan = plan_day(app, DAY, batch_size=5)
    assert work_day(app, DAY, join_seconds=0).advanced == 12
    assert finish_day(app, plan).advanced == 12
    assert [r["attempts"] for r in store.batch_rows(DAY)] == [1, 1, 1]
    assert _histories(store) == _histories(reference)
    assert store.due_case_ids(DAY) == []
    reference_engine.dispose()


def test_a_rerun_of_a_failed_day_plans_only_what_is_left(store, tmp_path):
    ids = book(store, 6)
    stuck = ids[4]

    def fault(case):
        if case.case_id == stuck:
            raise RuntimeError("broken data")

    app = make_app(store.engine, tmp_path)
    failing = bootstrap(app.settings, engine=store.engine, policy=POLICY, clock=app.clock, fault=fault)
    plan = plan_day(failing, DAY, batch_size=4)
    work_day(failing, DAY, join_seconds=0)
    assert list(finish_day(failing, plan).stuck) == [stuck]
    assert store.business_day(DAY).status == "failed"
    rerun = plan_day(app, DAY, batch_size=4)  # the fix landed: a new plan of the one case left
    assert (rerun.run_no, rerun.batches, rerun.cases) == (2, 1, 1)
    work_day(app, DAY, join_seconds=0)
    assert finish_day(app, rerun).advanced == 1
    assert store.business_day(DAY).status == "closed"


def _histories(store: CaseStore) -> list[tuple]:
    """Every case's version and last hash (the seal's leaves): equal means the same events were written."""
    from models.seals import current_leaves

    return [(leaf.case_id, leaf.seq, leaf.hash) for leaf in current_leaves(store.engine)]
