"""An operator retries a failed daily close from the Prefect UI, in headless Chromium.

A worker whose code fails on one case (``COLLECTFLOW_FAULT_CASES`` read by
``tests/e2e/faulty/sitecustomize.py`` on its PYTHONPATH) closes a
date: the run ends Failed naming the stuck case. That worker is replaced by
one without the fault (the fix is deployed), the operator clicks Retry on
the flow run page, and the run completes with the stuck case advanced once.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from flows.bootstrap import bootstrap
from flows.handlers.cases import advance_batch
from tests.e2e.prefect_server import (
    api_request,
    deployment_run,
    flow_run_page_url,
    flow_run_states,
    get_flow_run,
    retry_flow_run_in_ui,
    start_worker,
    wait_for_flow_run,
)
from tests.e2e.test_deployments import (  # noqa: F401 - collectflow_deployed is a fixture
    FIRST_DAY,
    POOL,
    PROJECT,
    collectflow_deployed,
    reviews_on,
    seed_case_store,
)

FAULTY_SITE = Path(__file__).resolve().parent / "faulty"  # sitecustomize.py: the fault seam of a subprocess


def test_a_failed_close_retried_from_the_ui_completes_with_the_stuck_case_advanced(
    prefect_server, collectflow_deployed, page, tmp_path
):
    api = prefect_server.api_url
    url, store = seed_case_store(tmp_path)
    advance_batch(bootstrap(engine=store.engine), store.due_case_ids(FIRST_DAY), FIRST_DAY)  # yesterday's close
    day = FIRST_DAY + timedelta(days=1)
    stuck = store.due_case_ids(day)[0]
    env = {**prefect_server.env, "COLLECTFLOW_DATABASE_URL": url}

    faulty = {**env, "COLLECTFLOW_FAULT_CASES": stuck, "PYTHONPATH": str(FAULTY_SITE)}
    with start_worker(POOL, faulty, cwd=PROJECT, server=prefect_server, log_path=tmp_path / "worker-faulty.log"):
        run_id = deployment_run("advance-portfolio/daily-close", {"business_date": day.isoformat()}, env)
        assert wait_for_flow_run(api, run_id, timeout=180) == "Failed"
        # the failed-close automation runs close-failed, which names the run and its stuck case; it is
        # waited for here, while this worker lives: a worker stopped while it submits a run leaves that
        # run Submitting for good (seen: the alert picked up just before the block ended)
        alert = wait_for_alert(api, run_id)
        assert stuck in alert["message"] and "Retry" in alert["message"]
    message = get_flow_run(api, run_id)["state"]["message"]
    assert message.startswith(f"1 stuck case(s): {stuck}. ")
    assert store.case_row(stuck).stuck
    assert reviews_on(store, stuck, day) == []

    with start_worker(POOL, env, cwd=PROJECT, server=prefect_server, log_path=tmp_path / "worker-fixed.log"):
        retry_flow_run_in_ui(page, prefect_server.ui_url, run_id, screenshot=tmp_path / "retry-clicked.png")
        wait_for_flow_run(api, run_id, states={"AwaitingRetry", "Pending", "Running", "Completed"}, timeout=30, poll=0.2)
        assert wait_for_flow_run(api, run_id, timeout=180) == "Completed"

    page.goto(flow_run_page_url(prefect_server.ui_url, run_id))
    page.get_by_text("Completed").first.wait_for()
    page.screenshot(path=str(tmp_path / "flow-run-completed.png"), full_page=True)
    assert "AwaitingRetry" in flow_run_states(api, run_id)

    row = store.case_row(stuck)
    assert not row.stuck and row.stuck_error is None
    assert len(reviews_on(store, stuck, day)) == 1
    assert store.business_day(day).status == "closed"
    store.engine.dispose()


def wait_for_alert(api: str, failed_run_id: str, timeout: float = 240.0) -> dict:
    """The close-failed run the automation started for ``failed_run_id``, once Completed, and its message."""
    notifier = api_request(api, "GET", "/deployments/name/close-failed/close-failed")
    deadline = time.monotonic() + timeout
    while True:
        runs = api_request(api, "POST", "/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [notifier["id"]]}}})
        mine = [r for r in runs if failed_run_id in str(r["parameters"].get("flow_run", ""))]
        if mine and mine[0]["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED"):
            (artifact,) = api_request(api, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [mine[0]["id"]]}}})
            return {"run": mine[0], "message": artifact["data"]}
        assert time.monotonic() < deadline, f"no close-failed run completed for {failed_run_id}: {runs}"
        time.sleep(1)
