"""The project's prefect.yaml against a real Prefect server: deploy, a process worker, runs to Completed.

As an operator would set it up (prefect.yaml's header): a process work pool
named ``collectflow``, ``prefect --no-prompt deploy --all`` from the project
directory, and ``prefect worker start`` with ``COLLECTFLOW_DATABASE_URL`` in
its environment. The case store is a SQLite file of the test's own.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows import simulation
from flows.handlers.cases import book_loans
from models.audit import verify
from models.db import make_engine, upgrade
from models.store import CaseStore
from states.events import CaseReviewed
from tests.e2e.prefect_server import (
    PrefectServer,
    api_request,
    create_work_pool,
    deploy_all,
    deployment_run,
    flow_run_logs,
    start_worker,
    wait_for_flow_run,
)

PROJECT = Path(__file__).resolve().parents[2]  # where prefect.yaml is
POOL = "collectflow"  # prefect.yaml's work pool
FIRST_DAY = date(2026, 4, 1)
DEPLOYMENTS = {
    "advance-portfolio/daily-close",
    "advance-portfolio/close-worker",
    "retry-case/retry-case",
    "record-payment/record-payment",
    "record-contact/record-contact",
    "record-promise/record-promise",
    "pause-case/pause-case",
    "resume-case/resume-case",
    "write-off-case/write-off-case",
    "report-visit/report-visit",
    "file-lawsuit/file-lawsuit",
    "enter-judgment/enter-judgment",
    "record-execution/record-execution",
    "recall-agency/recall-agency",
    "agency-report/agency-report",
    "call-list/call-list",
    "case-list/case-list",
    "ingest-payments/ingest-payments",
    "close-failed/close-failed",
}


@pytest.fixture(scope="session")
def collectflow_deployed(prefect_server: PrefectServer) -> dict[str, Any]:
    """prefect.yaml deployed to the session's server; the daily-close deployment as registered.

    Its schedule is then switched off, so that 02:00 Asia/Shanghai falling
    during a test run cannot start a close of a test's case store.
    """
    create_work_pool(POOL, prefect_server.env)
    # the pull step's {{ $PWD }} is read from the environment, which a cwd alone does not change
    deploy_all(PROJECT, {**prefect_server.env, "PWD": str(PROJECT)})
    daily_close = api_request(prefect_server.api_url, "GET", "/deployments/name/advance-portfolio/daily-close")
    for schedule in daily_close["schedules"]:
        api_request(
            prefect_server.api_url, "PATCH", f"/deployments/{daily_close['id']}/schedules/{schedule['id']}", {"active": False}
        )
    return daily_close


def seed_case_store(directory: Path, size: int = 40) -> tuple[str, CaseStore]:
    """A case store with a synthetic book disbursed over the 90 days before FIRST_DAY: (URL, store)."""
    url = f"sqlite:///{directory / 'collectflow.db'}"
    engine = make_engine(url)
    upgrade(engine)
    store = CaseStore(engine)
    borrowers = simulation.make_portfolio(size, FIRST_DAY - timedelta(days=90), seed=11)
    book_loans(store, [(b.case_id, b.terms) for b in borrowers])
    return url, store


def reviews_on(store: CaseStore, case_id: str, day: date) -> list[CaseReviewed]:
    return [e for e in store.events(case_id) if isinstance(e, CaseReviewed) and e.business_date == day]


def test_prefect_yaml_registers_every_deployment_on_the_collectflow_pool(prefect_server, collectflow_deployed):
    found = api_request(prefect_server.api_url, "POST", "/deployments/filter", {"limit": 50})
    flows = {f["id"]: f["name"] for f in api_request(prefect_server.api_url, "POST", "/flows/filter", {"limit": 50})}
    registered = {f"{flows[d['flow_id']]}/{d['name']}": d for d in found}
    assert DEPLOYMENTS <= set(registered)
    for name in DEPLOYMENTS:
        deployment = registered[name]
        assert deployment["work_pool_name"] == POOL, name
        assert deployment["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT)}}
        ], name
    # typed parameters: the UI shows a form for an operator action
    payment = registered["record-payment/record-payment"]["parameter_openapi_schema"]
    assert payment["required"] == ["payment"]
    fields = payment["definitions"]["Payment"]["properties"]
    assert {"case", "operator", "amount", "received_on", "payment_id", "channel"} <= set(fields)
    retry = registered["retry-case/retry-case"]["parameter_openapi_schema"]["properties"]
    assert set(retry) == {"case_id", "business_date"}


def test_daily_close_runs_at_two_in_the_morning_shanghai_time_one_at_a_time(collectflow_deployed):
    (schedule,) = collectflow_deployed["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 * * *"
    assert schedule["schedule"]["timezone"] == "Asia/Shanghai"
    assert schedule["active"] is True  # as deployed (the fixture switches it off afterwards)
    assert collectflow_deployed["global_concurrency_limit"]["limit"] == 1


def test_daily_close_and_retry_case_deployments_run_to_completed(prefect_server, collectflow_deployed, tmp_path):
    url, store = seed_case_store(tmp_path)
    due = store.due_case_ids(FIRST_DAY)
    next_day = FIRST_DAY + timedelta(days=1)
    env = {**prefect_server.env, "COLLECTFLOW_DATABASE_URL": url}
    with start_worker(POOL, env, cwd=PROJECT, server=prefect_server, log_path=tmp_path / "worker.log"):
        close_run = deployment_run("advance-portfolio/daily-close", {"business_date": FIRST_DAY.isoformat()}, env)
        assert wait_for_flow_run(prefect_server.api_url, close_run, timeout=180) == "Completed", flow_run_logs(
            prefect_server.api_url, close_run
        )
        assert store.business_day(FIRST_DAY).status == "closed"
        assert store.business_day(FIRST_DAY).cases_advanced == len(due)
        assert store.due_case_ids(FIRST_DAY) == []

        # an operator fixed a case by hand and retries it; the date is the one it got stuck on
        case_id = store.due_case_ids(next_day)[0]
        store.mark_stuck(case_id, next_day, "borrower record edited by hand")
        retry_run = deployment_run("retry-case/retry-case", {"case_id": case_id}, env)
        assert wait_for_flow_run(prefect_server.api_url, retry_run, timeout=180) == "Completed", flow_run_logs(
            prefect_server.api_url, retry_run
        )

    assert not store.case_row(case_id).stuck
    assert len(reviews_on(store, case_id, next_day)) == 1
    report = verify(store.engine)
    assert report.ok, report.findings[:5]
    store.engine.dispose()


# Not beside the browser tests: with Playwright's event loop in the thread, to_deployment returns a coroutine.
def test_serve_and_prefect_yaml_give_close_failed_the_same_trigger():
    import yaml

    from flows.alerts import AUTOMATION_NAME, FAILED_CLOSE_TRIGGER
    from flows.deployments import deployments

    declared = yaml.safe_load((PROJECT / "prefect.yaml").read_text())["deployments"]
    (in_yaml,) = [d for d in declared if d["name"] == "close-failed"]
    assert in_yaml["triggers"] == [FAILED_CLOSE_TRIGGER]
    (served,) = [d for d in deployments() if d.name == "close-failed"]
    (trigger,) = served.triggers
    assert trigger.name == AUTOMATION_NAME and trigger.expect == set(FAILED_CLOSE_TRIGGER["expect"])
    assert {d["name"] for d in declared} == {d.name for d in deployments()}  # serve serves what prefect.yaml declares
