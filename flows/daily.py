"""The daily close: advance every case that is due, one business date at a time.

    advance_portfolio(business_date)
      for each date not yet closed, in order:
        plan     <- the due cases cut into batches of case-id ranges (close_batches);
                    an open plan of the date (a crashed close's) is taken up instead
        batches  <- one Prefect task each (never one per case), fanned out through the
                    task runner COLLECTFLOW_TASK_RUNNER names (sequential, thread, dask);
                    each task claims the next free batch under a lease and runs
        advance_batch(ids, date): load, step, save in one transaction
        extra workers (role="worker", or `collectflow advance --date D --worker`) claim
        batches of the same plan; the day is closed when every batch is done
      a case that raises is quarantined; the run goes on, then ends Failed
      naming the stuck cases. Retrying the run advances only what is left.
      At the end the daily-report flow publishes the portfolio report as of
      the last date (a report that fails is logged; the close ends as it would).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from datetime import date, timedelta
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import as_completed
from prefect.states import Failed
from prefect.task_runners import TaskRunner

from flows import runtime
from flows.daily_report import daily_report
from flows.handlers.cases import BatchResult, check_not_in_future
from flows.handlers.close import close_next_batch, finish_day, plan_day, wait_for_plan, work_until_done
from flows.runners import batch_runner
from models.batches import ClosePlan
from flows.worklists import publish_call_lists
from flows.handlers.cases import retry_case as retry_one_case
from models.db import is_transient
from models.seals import seal
from states.parse import InputError

STUCK_LISTED = 20  # how many stuck case ids a failure message names


class StuckCases(RuntimeError):
    """A run that left cases stuck; ``summary`` holds its figures (``BatchResult.as_dict()``).

    The data of a Failed state must be an exception: Prefect raises it from
    ``state.result()`` (any other value is a TypeError in the engine).
    """

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


def _transient_only(task, task_run, state) -> bool:
    """Retry what a second try can fix (a locked database, a dropped connection), never a domain error."""
    try:
        state.result(raise_on_failure=True)
    except Exception as exc:  # noqa: BLE001 - classify whatever the task raised
        return is_transient(exc)
    return False


@task(
    name="close-batch",
    retries=3,
    retry_delay_seconds=[1, 5, 20],
    retry_condition_fn=_transient_only,  # a failed try gave its batch back; the retry claims again
    task_run_name="close {business_date} plan {run_no} slot {slot}",
)
def close_batch_task(business_date: date, run_no: int, batches: int, slot: int = 0) -> dict | None:
    """Claim the next free batch of the date's plan and close it; None when none was free."""
    plan = ClosePlan(business_date, run_no, batches, 0, adopted=True)
    outcome = close_next_batch(runtime.app(), plan)
    if outcome is None:
        return None
    return {"batch_no": outcome.batch.batch_no, "attempt": outcome.batch.attempt, **outcome.result.as_dict()}


def work_plan(plan: ClosePlan, runner: TaskRunner | None) -> BatchResult:
    """Close the plan's batches: one task per open batch through ``runner`` (or one after another),
    then wait for the batches other workers hold, taking over any whose lease runs out.
    Returns the figures of the batches this run closed."""
    app = runtime.app()
    status = app.store.close_status(plan.business_date, plan.run_no)
    progress = create_progress_artifact(
        progress=100.0 * status.done / max(1, status.batches),
        description=f"Close of {plan.business_date}: {plan.cases} cases due in {plan.batches} batches",
    )
    mine = BatchResult(plan.business_date)
    slots = iter(range(1, 1_000_000_000))

    def show(done: int, batches: int) -> None:
        update_progress_artifact(artifact_id=progress, progress=100.0 * done / max(1, batches))

    def took(outcome: dict | None) -> bool:
        if outcome is None:
            return False
        mine.merge(BatchResult.from_dict(outcome))
        status = app.store.close_status(plan.business_date, plan.run_no)
        show(status.done, status.batches)
        return True

    def close_one() -> bool:
        return took(close_batch_task(plan.business_date, plan.run_no, plan.batches, slot=next(slots)))

    if runner is not None:
        parameters = {"business_date": plan.business_date, "run_no": plan.run_no, "batches": plan.batches}
        futures = [runner.submit(close_batch_task, {**parameters, "slot": next(slots)}) for _ in range(status.batches - status.done)]
        for future in as_completed(futures):
            took(future.result())  # a batch task that failed for good fails the close here
    work_until_done(app, plan, close_one, on_progress=show)
    show(plan.batches, plan.batches)
    return mine


def close_business_day(business_date: date, batch_size: int | None = None, runner: TaskRunner | None = None) -> BatchResult:
    """Advance every due case to ``business_date``; stuck cases are recorded, not raised.

    The due cases are planned into batches (or an open plan of the date is
    taken up: a crashed close's); extra workers may join the plan while it
    runs. The figures are the whole day's, whoever closed each batch.
    """
    app = runtime.app()
    app.store.begin_business_day(business_date)
    plan = plan_day(app, business_date, batch_size)
    work_plan(plan, runner)
    return finish_day(app, plan)


def help_close(business_date: date, runner: TaskRunner | None) -> BatchResult:
    """As an extra worker: close batches of the date's open plan until all are done; what this worker closed."""
    app = runtime.app()
    plan = wait_for_plan(app, business_date, app.settings.join_seconds)
    if plan is None:
        return BatchResult(business_date)
    return work_plan(plan, runner)


def dates_to_close(last_closed: date | None, requested: date | None, today: date) -> list[date]:
    """The business dates a run must close, in order: one requested date, or catch-up to today.

    A business date is never after today in the lender's time zone: closing
    a day that has not happened would accrue charges for it for ever. Nor is it
    before the last closed date: days close in order (the last one may be closed
    again, which retries its stuck cases).
    """
    if requested is not None:
        check_not_in_future({"business_date": requested}, today)  # a day is closed once it has happened
        if last_closed is not None and requested < last_closed:
            raise InputError(
                f"business_date: {requested} is before the last closed business date {last_closed}; days close in order: "
                f"give {last_closed} (closed again, its stuck cases retried) or a later date"
            )
        return [requested]
    if last_closed is None:
        return [today]
    return [last_closed + timedelta(days=n) for n in range(1, (today - last_closed).days + 1)]


def summary_rows(total: BatchResult) -> list[dict[str, str]]:
    rows = [
        {"figure": "cases advanced", "value": str(total.advanced)},
        {"figure": "events written", "value": str(total.events)},
        {"figure": "charges posted (yuan)", "value": str(total.charges_posted)},
        {"figure": "penalty and compound interest posted (yuan)", "value": str(total.penalties_posted)},
        {"figure": "above the legal cap, unenforceable (yuan)", "value": str(total.unenforceable)},
        {"figure": "stuck cases", "value": str(len(total.stuck))},
    ]
    for move, count in sorted(total.transitions.items()):
        rows.append({"figure": f"stage {move}", "value": str(count)})
    return rows


def _close_run_name() -> str:
    """close-2026-07-02, or close-catch-up when no date is given (the UI lists runs by it)."""
    from prefect.runtime import flow_run

    worker = "worker-" if flow_run.parameters.get("role") == "worker" else ""
    return f"close-{worker}{flow_run.parameters.get('business_date') or 'catch-up'}"


Role = Literal["coordinator", "worker"]


@flow(name="advance-portfolio", log_prints=False, flow_run_name=_close_run_name)
def advance_portfolio(business_date: date | None = None, batch_size: int | None = None, role: Role = "coordinator"):
    """Close ``business_date``, or every date since the last closed one up to today (Asia/Shanghai).

    ``role="worker"``: join the close of ``business_date`` (default: the dates
    being closed now) as an extra worker, closing batches until none is left;
    the coordinator (the default role) plans, seals and reports.
    """
    logger = get_run_logger()
    store = runtime.store()
    if role == "worker":
        return help_close_dates(business_date)
    dates = dates_to_close(store.last_closed_business_date(), business_date, runtime.today())
    total = BatchResult(dates[-1] if dates else runtime.today())
    runner = batch_runner(runtime.settings())
    with runner if runner is not None else nullcontext():
        for day in dates:
            result = close_business_day(day, batch_size, runner)
            logger.info("closed %s: %d advanced, %d stuck", day, result.advanced, len(result.stuck))
            total.merge(result)
    if dates:
        publish_call_lists(dates[-1])  # a supervisor finds today's lists in the UI in the morning
        sealed = seal(runtime.app().engine, runtime.settings(), dates[-1])  # a copy outside the case store
        create_markdown_artifact(
            key="portfolio-seal",
            markdown=f"Seal of {dates[-1]} ({sealed.path.name}):\n\n```json\n{json.dumps(sealed.as_dict(), indent=2)}\n```",
            description=f"Signed portfolio seal of {dates[-1]}: {sealed.body.cases} cases, {sealed.body.events} events",
        )
    create_table_artifact(
        key="daily-close-summary",
        table=summary_rows(total),
        description=f"Daily close {dates[0] if dates else ''} .. {dates[-1] if dates else ''}",
    )
    reported = daily_report(business_date=dates[-1] if dates else None, return_state=True)
    if not reported.is_completed():  # the report never changes how the close ends
        logger.warning("daily report not published: %s", reported.message)
    if total.stuck:
        listed = ", ".join(sorted(total.stuck)[:STUCK_LISTED])
        more = f" and {len(total.stuck) - STUCK_LISTED} more" if len(total.stuck) > STUCK_LISTED else ""
        first_id = sorted(total.stuck)[0]
        create_table_artifact(
            key="stuck-cases",
            table=[
                {"case_id": case_id, "error": error, "when fixed": f"run the retry-case deployment with case_id={case_id}, or retry this run"}
                for case_id, error in sorted(total.stuck.items())[:500]
            ],
            description=f"{len(total.stuck)} stuck case(s) of the close; fix the data, then retry this run from the UI or run retry-case",
        )
        message = (
            f"{len(total.stuck)} stuck case(s): {listed}{more}. First error ({first_id}): "
            f"{total.stuck[first_id]}. Fix the data, then retry this run or run retry-case."
        )
        return Failed(message=message, data=StuckCases(message, total.as_dict()))
    return total.as_dict()


def help_close_dates(business_date: date | None) -> dict:
    """The worker role: help close ``business_date``, or each date being closed (waiting a while for one)."""
    app = runtime.app()
    if business_date is not None:
        dates = [business_date]
    else:
        deadline = time.monotonic() + app.settings.join_seconds
        while not (dates := app.store.dates_being_closed()) and time.monotonic() < deadline:
            time.sleep(0.5)
    mine = BatchResult(dates[0] if dates else runtime.today())
    runner = batch_runner(app.settings)
    with runner if runner is not None else nullcontext():
        for day in dates:
            done = help_close(day, runner)
            get_run_logger().info("helped close %s: %d cases advanced by this worker", day, done.advanced)
            mine.merge(done)
    return mine.as_dict()


@flow(name="retry-case", flow_run_name="retry-{case_id}")
def retry_case(case_id: str, business_date: date | None = None):
    """Advance one (stuck) case to a date: by default the date it got stuck on, else the last closed one."""
    case_id, day, result = retry_one_case(runtime.app(), case_id, business_date or None)
    if day is None:
        return Failed(message=f"case {case_id}: no business date has been closed yet; give business_date")
    if result.stuck:
        message = f"case {case_id} is still stuck: {result.stuck[case_id]}"
        return Failed(message=message, data=StuckCases(message, result.as_dict()))
    get_run_logger().info("case %s advanced to %s (%d events)", case_id, day, result.events)
    return result.as_dict()
