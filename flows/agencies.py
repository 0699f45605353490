"""The agency report as a Prefect deployment: each run publishes its table as a keyed artifact.

Per agency and per strategy (the champion and the challenger of the policy):
cases placed, balance placed, recovered, recovery rate, commission and net
recovered, for the placements made in the period (``flows.handlers.agencies``).
The CLI's ``collectflow agency report`` prints the same rows.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows import runtime
from flows.handlers.agencies import agency_report


@flow(name="agency-report")
def agency_report_flow(start: date | None = None, end: date | None = None) -> dict:
    """Publish the agency report as a table artifact (key agency-report).

    Args:
        start: First placement date counted; default the first placement.
        end: Last placement date counted, and recoveries up to it; default today (lender's time zone).
    """
    report = agency_report(runtime.app(), start, end)
    rows = report.table()
    period = f"{report.start or 'the first placement'} to {report.end}"
    create_table_artifact(
        key="agency-report",
        table=rows or [{"agency": "(no placements in the period)"}],
        description=(
            f"Agencies, placements from {period}: per agency and strategy, cases placed, balance placed, recovered, "
            f"recovery rate, commission (the lender's cost) and net recovered; 'all' rows add them up."
        ),
    )
    get_run_logger().info("agency report %s: %d rows", period, len(rows))
    return report.as_dict()
