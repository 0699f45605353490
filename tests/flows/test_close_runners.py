"""The close fans its batches out through the task runner COLLECTFLOW_TASK_RUNNER names, and extra
workers (the flow's worker role) join a date's plan; every way ends as the sequential close."""

from __future__ import annotations

import pytest

from flows import runtime
from flows.daily import advance_portfolio
from flows.handlers.close import plan_day
from flows.runners import batch_runner
from models.settings import Settings
from tests.flows.conftest import FIRST_DAY, book, close

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("runner", ["thread", "dask"])
def test_the_close_through_a_task_runner_ends_as_the_sequential_close(store, monkeypatch, clean_digest, runner):
    reference = clean_digest(60, [FIRST_DAY], batch_size=8)  # the default on SQLite: sequential
    monkeypatch.setenv("COLLECTFLOW_TASK_RUNNER", runner)
    monkeypatch.setenv("COLLECTFLOW_TASK_RUNNER_WORKERS", "2")
    runtime.forget()  # the App reads its settings when it is built
    assert type(batch_runner(runtime.settings())).__name__ == {"thread": "ThreadPoolTaskRunner", "dask": "DaskTaskRunner"}[runner]
    book(store, 60)
    due = len(store.due_case_ids(FIRST_DAY))
    state = close(FIRST_DAY, batch_size=8)
    assert state.is_completed(), state.message
    assert state.result()["advanced"] == due
    batches = store.batch_rows(FIRST_DAY)
    assert len(batches) == -(-due // 8) and all(b["done_at"] and b["attempts"] == 1 for b in batches)
    assert store.business_day(FIRST_DAY).status == "closed"
    assert store.digest() == reference


def test_a_worker_run_closes_the_batches_of_an_open_plan_and_the_coordinator_closes_the_day(store, clean_digest):
    reference = clean_digest(40, [FIRST_DAY], batch_size=6)
    book(store, 40)
    due = len(store.due_case_ids(FIRST_DAY))
    plan_day(runtime.app(), FIRST_DAY, 6)  # as a coordinator that planned, then died
    helped = advance_portfolio(business_date=FIRST_DAY, role="worker", return_state=True)
    assert helped.is_completed(), helped.message
    assert helped.result()["advanced"] == due
    assert store.last_closed_business_date() is None  # a worker never closes the day
    closed = close(FIRST_DAY)  # the coordinator takes up the plan: every batch done, the day closes
    assert closed.is_completed() and closed.result()["advanced"] == due
    assert store.last_closed_business_date() == FIRST_DAY
    assert store.digest() == reference


def test_a_task_runner_setting_that_is_not_known_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setenv("COLLECTFLOW_TASK_RUNNER", "processes")
    with pytest.raises(ValueError, match="'auto', 'thread', 'dask' or 'sequential'"):
        Settings()


def test_auto_fans_out_through_threads_on_postgresql_and_one_after_another_on_sqlite():
    assert batch_runner(Settings(database_url="sqlite:///x.db")) is None
    assert type(batch_runner(Settings(database_url="postgresql://u@h/db"))).__name__ == "ThreadPoolTaskRunner"
