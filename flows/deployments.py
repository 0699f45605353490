"""`collectflow serve`: the deployments of prefect.yaml, served from this process.

For one machine: no work pool or worker to set up, the schedule still fires
(it needs a Prefect server; the temporary local mode does not run
schedules). For several machines use prefect.yaml with process workers.
"""

from __future__ import annotations

from prefect import serve
from prefect.schedules import Cron

from flows import operator
from flows.daily import advance_portfolio, retry_case

DAILY_CLOSE_CRON = "0 2 * * *"
TIMEZONE = "Asia/Shanghai"


def deployments() -> list:
    return [
        advance_portfolio.to_deployment(
            name="daily-close",
            schedules=[Cron(DAILY_CLOSE_CRON, timezone=TIMEZONE)],
            concurrency_limit=1,
            tags=["collectflow", "scheduler"],
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
            )
        ),
    ]


def serve_all() -> None:
    serve(*deployments())
