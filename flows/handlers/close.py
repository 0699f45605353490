"""The close of one business date, shared by any number of workers through the close's batches.

    plan_day(app, day, size)      the date's open plan, or a new one of the cases due now
    close_next_batch(app, plan)   claim the next free batch under a lease, advance its cases
                                  (``cases.advance_batch``), mark it done with its figures
    work_until_done(app, plan, close_one)   take batches until none is free; then wait for the
                                  batches others hold, taking over any whose lease runs out
    finish_day(app, plan)         every batch done: the day's figures, and the day is closed
                                  (or failed, naming its stuck cases)

The daily flow (the coordinator) plans, fans the batches out through its task
runner and finishes the day; an extra worker (``collectflow advance --date D
--worker``, or the flow with ``role="worker"``) only joins an open plan and
works batches. A worker that dies holds its batch until its lease runs out;
the next worker to claim it finds the cases the dead one committed no longer
due and advances the rest, so every due case is advanced exactly once (the
version guard and the events primary key refuse a second write of a step).
No Prefect here: the flow calls these inside its tasks.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from flows.bootstrap import App
from flows.handlers.cases import BatchResult, advance_batch
from models.batches import ClaimedBatch, ClosePlan
from models.db import is_transient
from models.errors import StoreError


class CloseNotDone(StoreError):
    """The day cannot be closed yet: some batch of its plan is not done."""


@dataclass(frozen=True)
class BatchOutcome:
    batch: ClaimedBatch
    result: BatchResult


def new_owner() -> str:
    """Who holds a claim: host, process and a token of its own (two claims of one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def plan_day(app: App, business_date: date, batch_size: int | None = None) -> ClosePlan:
    return app.store.plan_close(business_date, batch_size or app.settings.batch_size)


def close_next_batch(app: App, plan: ClosePlan) -> BatchOutcome | None:
    """Claim the next free batch of ``plan`` and close it; None when no batch is free now."""
    batch = app.store.claim_batch(plan.business_date, plan.run_no, new_owner(), app.settings.lease_seconds)
    if batch is None:
        return None
    try:
        with _lease_kept(app, batch):
            ids = app.store.due_case_ids_in(batch.business_date, batch.first_case_id, batch.last_case_id)
            result = advance_batch(app, ids, batch.business_date)
    except BaseException:
        _give_back(app, batch)
        raise
    app.store.finish_batch(batch, result.as_dict(), merge=merge_results)
    return BatchOutcome(batch, result)


def work_until_done(
    app: App, plan: ClosePlan, close_one: Callable[[], bool], *, on_progress: Callable[[int, int], None] | None = None
) -> None:
    """Close batches with ``close_one`` until every batch of the plan is done.

    ``close_one`` claims and closes one batch (False: none was free). When none
    is free, the rest are held by other workers: wait, and take over any batch
    whose holder's lease runs out.
    """
    pause = min(1.0, app.settings.lease_seconds / 4)
    while True:
        status = app.store.close_status(plan.business_date, plan.run_no)
        if on_progress is not None:
            on_progress(status.done, status.batches)
        if status.complete:
            return
        if status.free and close_one():  # nothing free: no claim (and no task run) until a lease runs out
            continue
        time.sleep(pause)


def work_day(app: App, business_date: date, *, join_seconds: float | None = None) -> BatchResult | None:
    """Join the open close of ``business_date`` as an extra worker; what this worker advanced.

    Waits up to ``join_seconds`` (``COLLECTFLOW_JOIN_SECONDS``) for the
    coordinator to plan the date; None when no close of it was open to join.
    """
    plan = wait_for_plan(app, business_date, app.settings.join_seconds if join_seconds is None else join_seconds)
    if plan is None:
        return None
    mine = BatchResult(business_date)

    def close_one() -> bool:
        try:
            outcome = close_next_batch(app, plan)
        except Exception as exc:  # noqa: BLE001 - a lock or a lost race: the batch was given back, claim again
            if not is_transient(exc):
                raise
            return True
        if outcome is not None:
            mine.merge(outcome.result)
        return outcome is not None

    work_until_done(app, plan, close_one)
    return mine


def wait_for_plan(app: App, business_date: date, seconds: float) -> ClosePlan | None:
    """The date's open plan, waiting up to ``seconds`` for one to appear."""
    deadline = time.monotonic() + seconds
    while True:
        plan = app.store.open_plan(business_date)
        if plan is not None or time.monotonic() >= deadline:
            return plan
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def day_total(app: App, plan: ClosePlan) -> BatchResult:
    """The figures of every batch of the plan, added up (the batches must all be done)."""
    status = app.store.close_status(plan.business_date, plan.run_no)
    if not status.complete:
        raise CloseNotDone(
            f"close of {plan.business_date}: {status.batches - status.done} of {status.batches} batches not done "
            f"({status.held} held by a worker); the day stays open"
        )
    total = BatchResult(plan.business_date)
    for result in status.results:
        total.merge(BatchResult.from_dict(result))
    return total


def finish_day(app: App, plan: ClosePlan) -> BatchResult:
    """Close the business day (failed if a case got stuck) once every batch is done; its figures."""
    total = day_total(app, plan)
    if app.store.finish_plan(plan.business_date, plan.run_no) or not plan.batches:  # the day's figures, added once
        app.store.finish_business_day(plan.business_date, advanced=total.advanced, stuck=len(total.stuck))
    return total


def merge_results(stored: dict, new: dict) -> dict:
    """Two finishers of one batch (a lease ran out): what each advanced adds up."""
    total = BatchResult.from_dict(stored)
    total.merge(BatchResult.from_dict(new))
    return total.as_dict()


@contextmanager
def _lease_kept(app: App, batch: ClaimedBatch) -> Iterator[None]:
    """Renew the batch's lease every third of it while the batch is worked on (a dead process renews nothing)."""
    stop = threading.Event()
    every = app.settings.lease_seconds / 3

    def renew() -> None:
        while not stop.wait(every):
            try:
                if not app.store.renew_lease(batch, app.settings.lease_seconds):
                    return  # taken over: the version guard settles who writes
            except Exception:  # noqa: BLE001 - a failed renewal only risks a takeover, never a double write
                continue

    keeper = threading.Thread(target=renew, name=f"lease-{batch.business_date}-{batch.batch_no}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()


def _give_back(app: App, batch: ClaimedBatch) -> None:
    try:
        app.store.release_batch(batch)
    except Exception:  # noqa: BLE001 - the lease runs out by itself; the original error matters
        pass
