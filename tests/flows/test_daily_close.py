"""The daily close flow: a long run, idempotence, failures halfway, stuck cases, catch-up, artifacts.

Every disturbed run (an exception in a batch, a process killed with SIGKILL)
is followed by a rerun and compared, by ``CaseStore.digest()``, with a clean
run of the same dates on an identically booked store.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from sqlalchemy import func, select

from flows import daily, runtime, simulation
from flows.bootstrap import bootstrap
from flows.daily import StuckCases, advance_portfolio, retry_case
from flows.handlers import close as close_handlers
from flows.demo import simulate_day
from models.audit import verify
from models.errors import StoreError
from models.tables import events as events_table
from states.events import CaseReviewed
from tests.flows.conftest import FIRST_DAY, book, close, days, fail_for
from tests.flows.conftest import faulty as faulty_flows

pytestmark = pytest.mark.slow


def reviews_on(store, case_id: str, day: date) -> list[CaseReviewed]:
    return [e for e in store.events(case_id) if isinstance(e, CaseReviewed) and e.business_date == day]


def event_count(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events_table)).scalar_one()


def flow_run_id(state) -> str:
    return str(state.state_details.flow_run_id)


# --------------------------------------------------------------------------- a long run


def test_sixty_business_days_of_a_live_book_complete_and_verify_clean(store):
    """300 loans, booked on their disbursement day; borrowers pay, miss and promise as their
    profile says; each of 60 consecutive business dates is closed by the flow."""
    borrowers = simulation.make_portfolio(300, FIRST_DAY - timedelta(days=30), seed=5)
    to_book: dict[date, list] = {}
    for b in borrowers:
        to_book.setdefault(max(b.terms.disbursed_on, FIRST_DAY), []).append((b.case_id, b.terms))
    actions = simulation.index_by_day(borrowers)
    moves: Counter = Counter()
    acted_on = 0

    for day in days(FIRST_DAY, 60):
        acted = simulate_day.fn(day, to_book.get(day, []), actions.get(day, []))
        acted_on += acted["advanced"]  # cases with a payment or a promise that day
        moves.update(acted["transitions"])  # a payment cures or settles at once
        state = close(day)
        assert state.is_completed(), f"close of {day}: {state.message}"
        moves.update(state.result()["transitions"])
        assert store.business_day(day).status == "closed"

    report = verify(store.engine)
    assert report.ok, report.findings[:5]
    assert report.cases_checked == 300
    assert store.stuck_cases() == []
    assert store.last_closed_business_date() == FIRST_DAY + timedelta(days=59)
    # the book moved both ways: missed installments escalate, payments cure
    assert moves["current->overdue"] > 0 and moves["overdue->phone"] > 0
    assert sum(n for move, n in moves.items() if move.endswith("->current")) > 0
    assert acted_on > 0


def test_the_same_business_date_twice_writes_nothing(store):
    book(store, 40)
    assert close(FIRST_DAY).is_completed()
    before = store.digest()

    again = close(FIRST_DAY)

    assert again.is_completed()
    assert again.result()["advanced"] == 0 and again.result()["events"] == 0
    assert store.digest() == before


# --------------------------------------------------------------------------- failures halfway


def test_an_exception_inside_a_batch_quarantines_those_cases_and_a_rerun_ends_as_a_clean_run(
    store, monkeypatch, clean_digest
):
    book(store, 120)
    due = store.due_case_ids(FIRST_DAY)
    assert len(due) > 60  # eight batches of 10: the faults land in the middle
    faulty = sorted([due[35], due[36], due[52]])
    with faulty_flows(fail_for(faulty)):
        failed = close(FIRST_DAY, batch_size=10)

    assert failed.is_failed()
    assert failed.message.startswith("3 stuck case(s): ")
    assert all(case_id in failed.message for case_id in faulty)
    assert "InjectedFault" in failed.message
    with pytest.raises(StuckCases, match="3 stuck case") as raised:
        failed.result()
    assert sorted(raised.value.summary["stuck"]) == faulty
    assert [(s.case_id, s.stuck_on) for s in store.stuck_cases()] == [(c, FIRST_DAY) for c in faulty]
    # the rest of each batch, and the batches after the fault, went through
    for case_id in set(due) - set(faulty):
        assert store.case_row(case_id).projection.next_review_on > FIRST_DAY, case_id
    assert store.business_day(FIRST_DAY).status == "failed"

    rerun = close(FIRST_DAY, batch_size=10)  # the fix is deployed
    assert rerun.is_completed(), rerun.message
    assert rerun.result()["advanced"] == len(faulty)  # only what was left
    assert close(FIRST_DAY + timedelta(days=1), batch_size=10).is_completed()

    assert store.stuck_cases() == []
    assert verify(store.engine).ok
    for case_id in faulty:  # advanced through the date, once
        assert store.case_row(case_id).projection.next_review_on > FIRST_DAY
    assert store.digest() == clean_digest(120, days(FIRST_DAY, 2), batch_size=10)


KILLABLE_CLOSE = """
import sys, time
from datetime import date
from flows import runtime
from flows.bootstrap import bootstrap
from flows.daily import advance_portfolio

business_date, hang_on, batch_size = date.fromisoformat(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def hang(case):
    if case.case_id == hang_on:
        time.sleep(600)  # killed here, with earlier batches committed

with runtime.use(bootstrap(fault=hang)):
    advance_portfolio(business_date=business_date, batch_size=batch_size)
"""


def test_a_close_killed_with_sigkill_halfway_then_rerun_ends_as_a_clean_run(
    store, tmp_path, prefect_api, clean_digest
):
    book(store, 120)
    due = store.due_case_ids(FIRST_DAY)
    batch_size = 10
    hang_on = due[3 * batch_size]  # first case of the fourth batch
    booked_events = event_count(store)
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "COLLECTFLOW_LEASE_SECONDS": "2",  # the killed run's batch is free again 2 s after it dies
    }
    log = open(tmp_path / "killed-close.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_CLOSE, FIRST_DAY.isoformat(), hang_on, str(batch_size)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # wait until the first batch has committed (the fourth one hangs), then kill -9
        deadline = time.monotonic() + 90
        while event_count(store) == booked_events:
            assert proc.poll() is None, (tmp_path / "killed-close.log").read_text()
            assert time.monotonic() < deadline, "no batch committed in 90 s\n" + (tmp_path / "killed-close.log").read_text()
            time.sleep(0.05)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()

    left = store.due_case_ids(FIRST_DAY)
    assert hang_on in left and 0 < len(left) < len(due)  # killed halfway
    assert store.business_day(FIRST_DAY).status == "running"

    rerun = close(FIRST_DAY, batch_size=batch_size)
    assert rerun.is_completed(), rerun.message
    # the rerun took up the killed run's plan: the batches it committed count once, the rest it advanced
    assert rerun.result()["advanced"] == len(due)
    batches = store.batch_rows(FIRST_DAY)
    assert {b["run_no"] for b in batches} == {1} and all(b["done_at"] for b in batches)

    assert store.business_day(FIRST_DAY).status == "closed"
    report = verify(store.engine)
    assert report.ok, [str(f) for f in report.findings][:5]
    assert store.digest() == clean_digest(120, [FIRST_DAY], batch_size=batch_size)


# --------------------------------------------------------------------------- stuck cases


@pytest.fixture
def one_stuck_case(store, monkeypatch):
    """A case that failed the close of the day after FIRST_DAY: (case id, that date)."""
    book(store, 40)
    assert close(FIRST_DAY).is_completed()
    day = FIRST_DAY + timedelta(days=1)
    due = store.due_case_ids(day)
    stuck = due[0]
    with faulty_flows(fail_for([stuck])):
        failed = close(day)

    assert failed.is_failed()
    assert failed.message.startswith(f"1 stuck case(s): {stuck}. ")
    assert failed.message.endswith("Fix the data, then retry this run or run retry-case.")
    row = store.case_row(stuck)
    assert row.stuck and row.stuck_on == day and "InjectedFault" in row.stuck_error
    assert reviews_on(store, stuck, day) == []
    for other in due[1:]:
        assert len(reviews_on(store, other, day)) == 1
    return stuck, day  # the fix is deployed


def test_retry_case_advances_a_stuck_case_exactly_once(store, one_stuck_case):
    stuck, day = one_stuck_case

    retried = retry_case(case_id=stuck, return_state=True)  # date: the one it got stuck on

    assert retried.is_completed(), retried.message
    assert retried.result()["advanced"] == 1
    assert not store.case_row(stuck).stuck
    assert len(reviews_on(store, stuck, day)) == 1
    # the retried close of the date, and a second retry, find nothing left to do
    before = store.digest()
    rerun = close(day)
    assert rerun.is_completed(), rerun.message
    assert rerun.result()["events"] == 0
    assert retry_case(case_id=stuck, business_date=day, return_state=True).is_completed()
    assert store.digest() == before
    assert len(reviews_on(store, stuck, day)) == 1
    assert store.business_day(day).status == "closed"


def test_rerunning_the_failed_close_advances_the_stuck_case_exactly_once(store, one_stuck_case):
    stuck, day = one_stuck_case

    rerun = close(day)

    assert rerun.is_completed(), rerun.message
    assert rerun.result()["advanced"] == 1
    assert not store.case_row(stuck).stuck
    assert len(reviews_on(store, stuck, day)) == 1
    assert close(day).result()["events"] == 0
    assert len(reviews_on(store, stuck, day)) == 1
    assert verify(store.engine).ok


def test_retry_case_of_a_case_still_failing_fails_naming_it(store, one_stuck_case, monkeypatch):
    stuck, day = one_stuck_case
    with faulty_flows(fail_for([stuck])):
        retried = retry_case(case_id=stuck, business_date=day, return_state=True)

    assert retried.is_failed()
    assert f"case {stuck} is still stuck" in retried.message
    assert store.case_row(stuck).stuck


# --------------------------------------------------------------------------- catch-up


def test_with_no_date_the_close_catches_up_every_missed_date_in_order(store, monkeypatch):
    book(store, 40)
    assert close(FIRST_DAY).is_completed()
    three_days_later = bootstrap(engine=store.engine, clock=lambda: FIRST_DAY + timedelta(days=3))
    with runtime.use(three_days_later):
        state = advance_portfolio(return_state=True)

        assert state.is_completed(), state.message
        missed = days(FIRST_DAY + timedelta(days=1), 3)
        records = [store.business_day(day) for day in missed]
        assert [r.status for r in records] == ["closed"] * 3
        started = [r.started_at for r in records]
        assert started == sorted(started) and len(set(started)) == 3  # one date after the other
        assert store.last_closed_business_date() == missed[-1]
        for day in missed:  # every case due on a date was reviewed on it
            for case_id in {e.case_id for e in _reviews_dated(store, day)}:
                assert len(reviews_on(store, case_id, day)) == 1
        assert store.due_case_ids(missed[-1]) == []

        before = store.digest()  # caught up: a second run has nothing to close
        assert advance_portfolio(return_state=True).is_completed()
        assert store.digest() == before


def _reviews_dated(store, day: date) -> list[CaseReviewed]:
    with store.engine.connect() as conn:
        ids = conn.execute(
            select(events_table.c.case_id).where(
                events_table.c.business_date == day, events_table.c.type == "CaseReviewed"
            )
        ).scalars()
        ids = sorted(set(ids))
    assert ids, f"no case was reviewed on {day}"
    return [e for case_id in ids for e in reviews_on(store, case_id, day)]


# --------------------------------------------------------------------------- artifacts and retries


def test_the_close_publishes_a_progress_artifact_and_a_summary_table(store):
    book(store, 40)
    due = len(store.due_case_ids(FIRST_DAY))

    state = close(FIRST_DAY, batch_size=10)

    assert state.is_completed()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id(state)]))
        )
    by_type = {a.type: a for a in artifacts if a.key != "call-list-collectors"}
    progress, table = by_type["progress"], by_type["table"]
    assert progress.data == 100.0
    batches = -(-due // 10)
    assert progress.description == f"Close of {FIRST_DAY}: {due} cases due in {batches} batches"
    assert table.key == "daily-close-summary"
    rows = table.data if isinstance(table.data, list) else json.loads(table.data)
    figures = {row["figure"]: row["value"] for row in rows}
    assert figures["cases advanced"] == str(due)
    assert figures["stuck cases"] == "0"
    assert {"events written", "penalty and compound interest posted (yuan)", "above the legal cap, unenforceable (yuan)"} <= set(figures)
    assert any(figure.startswith("stage ") for figure in figures)
    (calls,) = [a for a in artifacts if a.key == "call-list-collectors"]  # today's list, for the morning
    rows = calls.data if isinstance(calls.data, list) else json.loads(calls.data)
    phone = [r["case_id"] for r in rows if r.get("stage") in ("phone", "visit")]
    assert phone == [r["case_id"] for r in rows if r.get("case_id") != "(no calls)"]
    assert calls.description.startswith(f"Call list of {FIRST_DAY} for team collectors: ")


def test_a_locked_database_is_retried_but_a_store_error_is_not(store, monkeypatch):
    book(store, 40)
    monkeypatch.setattr(daily, "close_batch_task", daily.close_batch_task.with_options(retry_delay_seconds=0))
    real = close_handlers.advance_batch
    calls = Counter()

    def locked_once(app, case_ids, business_date):
        calls[business_date] += 1
        if calls[business_date] == 1:
            raise sqlite3.OperationalError("database is locked")
        return real(app, case_ids, business_date)

    monkeypatch.setattr(close_handlers, "advance_batch", locked_once)
    state = close(FIRST_DAY)
    assert state.is_completed(), state.message
    assert calls[FIRST_DAY] == 2

    def broken(app, case_ids, business_date):
        calls[business_date] += 1
        raise StoreError("case CF0000001: snapshot column is not JSON")

    monkeypatch.setattr(close_handlers, "advance_batch", broken)
    day = FIRST_DAY + timedelta(days=1)
    state = close(day)
    assert state.is_failed()
    assert "snapshot column is not JSON" in state.message
    assert calls[day] == 1
