"""What an operator reads and does in the Prefect UI, in headless Chromium, against the session's server.

One case store, one worker and one close for the module: a supervisor opens
the call list the close published (a keyed table artifact) and reads a case
id in it; a collector fills the record-payment form, submits it, and reads
the allocation in the run's artifact. The failed-close automation is on the
server once prefect.yaml is deployed, and `collectflow serve` refuses a
server whose deployments `prefect deploy` registered.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any, Iterator

import pytest

from flows.alerts import AUTOMATION_NAME
from flows.worklists import artifact_key
from states.policy import CollectionPolicy
from tests.e2e.prefect_server import (
    api_request,
    deployment_run,
    flow_run_logs,
    get_flow_run,
    start_worker,
    wait_for_flow_run,
)
from tests.e2e.test_deployments import (  # noqa: F401 - collectflow_deployed is a fixture
    FIRST_DAY,
    POOL,
    PROJECT,
    collectflow_deployed,
    seed_case_store,
)

TEAM = next(iter(CollectionPolicy().teams))  # the default policy's one team
OPERATOR = "op-ui.zhang"


@pytest.fixture(scope="module")
def closed_store(prefect_server, collectflow_deployed, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A case store closed through FIRST_DAY by the daily-close deployment, and a worker on it for the module."""
    directory = tmp_path_factory.mktemp("ui-store")
    url, store = seed_case_store(directory)
    env = {**prefect_server.env, "COLLECTFLOW_DATABASE_URL": url}
    with start_worker(POOL, env, cwd=PROJECT, server=prefect_server, log_path=directory / "worker.log"):
        run_id = deployment_run("advance-portfolio/daily-close", {"business_date": FIRST_DAY.isoformat()}, env)
        state = wait_for_flow_run(prefect_server.api_url, run_id, timeout=240)
        assert state == "Completed", flow_run_logs(prefect_server.api_url, run_id)
        yield {"store": store, "env": env, "close_run": run_id}
    store.engine.dispose()


def latest_artifact(api_url: str, key: str) -> dict[str, Any]:
    (artifact,) = api_request(api_url, "POST", "/artifacts/latest/filter", {"artifacts": {"key": {"any_": [key]}}})
    return artifact


def test_the_call_list_the_close_published_opens_in_the_ui_with_its_cases(prefect_server, closed_store, page, tmp_path):
    key = artifact_key("call-list", TEAM)
    artifact = latest_artifact(prefect_server.api_url, key)
    assert artifact["flow_run_id"] == closed_store["close_run"]
    rows = json.loads(artifact["data"])  # a table artifact stores its rows as JSON text
    case_id = rows[0]["case_id"]
    assert closed_store["store"].case_row(case_id).projection.stage in ("phone", "visit")  # a case to call

    open_newest_artifact(page, prefect_server.ui_url, key)
    page.get_by_text(case_id, exact=True).first.wait_for()
    page.screenshot(path=str(tmp_path / "call-list.png"), full_page=True)
    text = page.inner_text("body")
    assert f"Call list of {FIRST_DAY} for team {TEAM}" in text
    assert all(row["case_id"] in text for row in rows)  # the whole list, in the table the supervisor reads


def test_a_payment_submitted_from_the_deployment_form_shows_its_allocation(prefect_server, closed_store, page, tmp_path):
    api = prefect_server.api_url
    store = closed_store["store"]
    case_id = json.loads(latest_artifact(api, artifact_key("call-list", TEAM))["data"])[0]["case_id"]  # in collection
    deployment = api_request(api, "GET", "/deployments/name/record-payment/record-payment")
    before = _runs_of(api, deployment["id"])

    page.goto(f"{prefect_server.ui_url}/deployments/deployment/{deployment['id']}/run")
    fill_field(page, "Case", case_id)
    fill_field(page, "Operator", OPERATOR)
    fill_field(page, "Amount", "120.00")
    pick_date(page, "Received On", FIRST_DAY)
    fill_field(page, "Payment Id", "UI-BANK-1")
    page.screenshot(path=str(tmp_path / "payment-form.png"), full_page=True)
    new = submit_run_form(page, lambda: [r for r in _runs_of(api, deployment["id"]) if r not in before])
    (run_id,) = new
    assert wait_for_flow_run(api, run_id, timeout=180) == "Completed", flow_run_logs(api, run_id)
    assert get_flow_run(api, run_id)["name"] == f"pay-{case_id}-UI-BANK-1"

    open_newest_artifact(page, prefect_server.ui_url, artifact_key("record-payment", case_id))
    page.get_by_text("PaymentReceived", exact=True).wait_for()
    page.screenshot(path=str(tmp_path / "allocation.png"), full_page=True)
    text = page.inner_text("body")
    assert "payment UI-BANK-1 of 120.00 by bank_transfer" in text and "after: total due" in text
    payments = [e for e in store.events(case_id) if e.type == "PaymentReceived"]
    assert [(p.payment_id, p.amount, p.actor) for p in payments] == [("UI-BANK-1", Decimal("120.00"), OPERATOR)]
    after = store.case_row(case_id).projection
    assert f"{after.total_due}" in text  # the balance the artifact shows is the store's


# --- the Prefect 3.9 UI, as a person uses it (selectors checked against 3.9.1) ----------------


def open_newest_artifact(page, ui_url: str, key: str) -> None:
    """The artifact key's page lists its versions, newest first; open the newest one's content."""
    page.goto(f"{ui_url}/artifacts/key/{key}")
    page.locator("a[href*='/artifacts/artifact/']").first.click()
    page.wait_for_url("**/artifacts/artifact/**")


def submit_run_form(page, new_runs, timeout: float = 90.0) -> list[str]:
    """Press Submit; the new runs once there are.

    Pressed again (at most twice, as a person would) when the UI says "Something went wrong"
    and no run came of it: under load the 3.9 UI sometimes drops a submission without an error
    from the API. What the page reported is kept for the failure message.
    """
    seen: list[str] = []
    page.on("pageerror", lambda exc: seen.append(f"page error: {exc}"))
    page.on("requestfailed", lambda r: seen.append(f"request failed: {r.method} {r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and seen.append(f"{r.status} {r.request.method} {r.url}"))
    oops = page.get_by_text("Something went wrong")
    deadline = time.monotonic() + timeout
    for attempt in range(3):
        page.get_by_role("button", name="Submit").click()
        settle = time.monotonic() + 20
        while time.monotonic() < min(settle, deadline):
            if runs := new_runs():
                return runs
            if oops.count() and time.monotonic() > settle - 15:  # an error shown for 5 s and no run: press again
                seen.append(f"attempt {attempt + 1}: the UI said something went wrong")
                break
            time.sleep(0.5)
    while time.monotonic() < deadline:
        if runs := new_runs():
            return runs
        time.sleep(0.5)
    raise AssertionError(f"submitting the form made no flow run; the page reported: {seen}")


def form_property(page, label: str):
    """A parameter of a deployment's run form by its title (the innermost: an object's fields nest)."""
    title = page.locator("span.schema-form-property__label", has_text=re.compile(f"^{re.escape(label)}$"))
    return page.locator("div.schema-form-property", has=title).last


def fill_field(page, label: str, value: str) -> None:
    form_property(page, label).locator("textarea, input").first.fill(value)


def pick_date(page, label: str, day) -> None:
    """Open the field's date picker, page back to the month, click the day, apply."""
    form_property(page, label).locator(".p-date-button__control").click()
    picker = page.locator(".p-date-picker")
    for _ in range(120):
        shown = (picker.locator(".p-date-picker__title-month").inner_text().strip(),
                 picker.locator(".p-date-picker__title-year").inner_text().strip())
        if shown == (day.strftime("%B"), str(day.year)):
            break
        picker.locator(".p-calendar-header__before button").click()
    days = picker.locator(".p-calendar-date-picker__date:not(.p-calendar-date-picker__date--out-of-month)")
    days.get_by_text(str(day.day), exact=True).click()
    picker.get_by_role("button", name="Apply").click()


def _runs_of(api_url: str, deployment_id: str) -> list[str]:
    rows = api_request(api_url, "POST", "/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}})
    return [r["id"] for r in rows]


def test_the_failed_close_automation_is_on_the_server_once_prefect_yaml_is_deployed(prefect_server, collectflow_deployed):
    api = prefect_server.api_url
    (automation,) = [a for a in api_request(api, "POST", "/automations/filter", {}) if a["name"] == AUTOMATION_NAME]
    trigger = automation["trigger"]
    assert automation["enabled"] is True
    assert set(trigger["expect"]) == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert trigger["match_related"] == {"prefect.resource.role": "deployment", "prefect.resource.name": "daily-close"}
    (action,) = automation["actions"]
    notifier = api_request(api, "GET", "/deployments/name/close-failed/close-failed")
    assert action["type"] == "run-deployment" and action["deployment_id"] == notifier["id"]
    assert notifier["work_pool_name"] == POOL


def test_collectflow_serve_refuses_a_server_whose_deployments_prefect_deploy_registered(prefect_server, collectflow_deployed):
    env = {**prefect_server.env, "PREFECT_LOGGING_LEVEL": "WARNING"}
    result = subprocess.run([sys.executable, "-m", "flows.cli", "serve"], env=env, cwd=PROJECT, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "advance-portfolio/daily-close (work pool collectflow)" in result.stderr
    assert "--replace" in result.stderr and "Traceback" not in result.stderr
    # nothing was replaced: the deployment still runs on the work pool
    daily_close = api_request(prefect_server.api_url, "GET", "/deployments/name/advance-portfolio/daily-close")
    assert daily_close["work_pool_name"] == POOL and daily_close["id"] == collectflow_deployed["id"]

