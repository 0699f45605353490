"""`collectflow serve`: the deployments of prefect.yaml, served from this process.

For one machine: no work pool or worker to set up, and the schedule fires
(Prefect's temporary local mode runs no schedules, so a server is needed).
With PREFECT_API_URL set, the deployments are served against that server;
without it, a Prefect server is started on 127.0.0.1:4200 (its UI included)
for as long as `collectflow serve` runs. For several machines use
prefect.yaml with process workers instead.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from typing import Iterator

from states.defaults import DEFAULT_TIMEZONE
from states.errors import UserError

DAILY_CLOSE_CRON = "0 2 * * *"
TIMEZONE = DEFAULT_TIMEZONE  # the lender's: when "02:00" is
LOCAL_SERVER = "http://127.0.0.1:4200/api"
SERVER_START_TIMEOUT_S = 180  # 10-25 s on a 2-core machine; generous for a cold start


class ServeRefused(UserError):
    """`collectflow serve` would replace deployments that `prefect deploy` registered for workers."""


def deployments() -> list:
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
    from prefect.schedules import Cron

    from flows import operator
    from flows.alerts import FAILED_CLOSE_TRIGGER, close_failed
    from flows.agencies import agency_report_flow
    from flows.credit_report import credit_report
    from flows.daily import advance_portfolio, retry_case
    from flows.import_loans import import_loans
    from flows.ingest_payments import ingest_payments
    from flows.whatif import whatif_flow
    from flows.worklists import call_list_flow, case_list_flow

    return [
        advance_portfolio.to_deployment(
            name="daily-close",
            schedules=[Cron(DAILY_CLOSE_CRON, timezone=TIMEZONE)],
            concurrency_limit=1,
            tags=["collectflow", "scheduler"],
        ),
        advance_portfolio.to_deployment(
            name="close-worker", parameters={"role": "worker"}, concurrency_limit=4, tags=["collectflow", "scheduler"]
        ),
        retry_case.to_deployment(name="retry-case", tags=["collectflow", "operator"]),
        *(
            fl.to_deployment(name=fl.name, tags=["collectflow", "operator"])
            for fl in (
                operator.record_payment,
                operator.record_contact,
                operator.record_promise,
                operator.pause_case,
                operator.resume_case,
                operator.write_off_case,
                operator.report_visit,
                operator.file_lawsuit,
                operator.enter_judgment,
                operator.record_execution,
                operator.recall_agency,
                agency_report_flow,
                import_loans,
                call_list_flow,
                case_list_flow,
                whatif_flow,
                ingest_payments,
                credit_report,
            )
        ),
        close_failed.to_deployment(
            name="close-failed", triggers=[DeploymentEventTrigger(**FAILED_CLOSE_TRIGGER)], tags=["collectflow", "alert"]
        ),
    ]


def registered_for_workers(client, served: list) -> list[str]:
    """The deployments of ``served`` that the server already has on a work pool (``prefect deploy``'s).

    A deployment is named by its flow and its own name; serving one of the same
    name replaces it (its work pool, pull steps and schedule), and the workers
    stop getting its runs. ``collectflow serve`` refuses that unless told to.
    """
    from prefect.exceptions import ObjectNotFound

    found = []
    for deployment in served:
        name = f"{deployment.flow_name}/{deployment.name}"
        try:
            existing = client.read_deployment_by_name(name)
        except ObjectNotFound:
            continue
        if existing.work_pool_name:
            found.append(f"{name} (work pool {existing.work_pool_name})")
    return found


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def prefect_server(log) -> Iterator[str]:
    """The configured Prefect API, or a local server started for the duration."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        yield configured
        return
    if _healthy(LOCAL_SERVER):
        os.environ["PREFECT_API_URL"] = LOCAL_SERVER
        yield LOCAL_SERVER
        return
    log(f"PREFECT_API_URL is not set: starting a Prefect server on {LOCAL_SERVER} (UI at http://127.0.0.1:4200) ...")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", "4200"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
    )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(LOCAL_SERVER):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Prefect server did not start; run `prefect server start` to see why")
            time.sleep(1)
        os.environ["PREFECT_API_URL"] = LOCAL_SERVER
        yield LOCAL_SERVER
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=20)


def serve_all(log=print, replace: bool = False) -> None:
    with prefect_server(log) as api_url:
        from prefect import serve
        from prefect.client.orchestration import get_client

        served = deployments()
        with get_client(sync_client=True) as client:
            taken = registered_for_workers(client, served)
        if taken and not replace:
            raise ServeRefused(
                f"{api_url} already has these deployments from `prefect deploy` (run by workers): {', '.join(taken)}; "
                "serving would silently replace them. Use another Prefect server, delete them "
                "(`prefect deployment delete NAME`), or pass --replace to take them over"
            )
        if taken:
            log(f"replacing deployments registered by `prefect deploy`: {', '.join(taken)} (their workers get no more runs)")
        log(f"serving collectflow deployments against {api_url}; daily-close runs at 02:00 {TIMEZONE}")
        serve(*served)
