"""The collector's lists as Prefect deployments: each run publishes its list as a keyed table artifact.

A supervisor opens the Prefect UI in the morning and finds today's call list
of each team under ``call-list-<team>`` (the newest first in the artifact's
history): the daily close publishes them when it ends, and the ``call-list``
and ``case-list`` deployments publish one on demand.
"""

from __future__ import annotations

import re
from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows import runtime
from flows.handlers.worklists import call_list, call_lists_by_team, case_list

ARTIFACT_ROWS = 500  # rows a table artifact shows; the CLI gives the whole list


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) from names."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def publish_call_lists(as_of: date, team: str | None = None, limit: int | None = None) -> dict[str, int]:
    """Publish the call list of ``as_of`` of one team, or of every team: calls per team."""
    app = runtime.app()
    published = {}
    lists = {team: call_list(app, as_of, team=team, limit=limit)} if team else call_lists_by_team(app, as_of, limit=limit)
    for name, calls in lists.items():
        rows = [e.as_dict() for e in calls.entries[:ARTIFACT_ROWS]]
        create_table_artifact(
            key=artifact_key("call-list", name),
            table=rows or [{"case_id": "(no calls)"}],
            description=(
                f"Call list of {as_of} for team {name}: {len(calls.entries)} call(s) in calling order "
                f"(broken promises first, then overdue amount x DPD weight); {len(calls.left_out)} left out today "
                f"(see `collectflow calls list --explain`)."
            ),
        )
        published[name] = len(calls.entries)
    return published


@flow(name="call-list")
def call_list_flow(as_of: date | None = None, team: str | None = None, limit: int | None = None) -> dict[str, int]:
    """Publish today's call list as a table artifact (key call-list-<team>).

    Args:
        as_of: The day of the calls; default today in the lender's time zone.
        team: Only this team (teams are policy: [teams]); default every team.
        limit: At most this many calls per team.
    """
    published = publish_call_lists(as_of or runtime.today(), team, limit)
    get_run_logger().info("call lists published: %s", published)
    return published


@flow(name="case-list")
def case_list_flow(
    as_of: date | None = None,
    stage: str | None = None,
    bucket: str | None = None,
    dpd_min: int | None = None,
    dpd_max: int | None = None,
    agency: str | None = None,
) -> int:
    """Publish the portfolio as of a date as a table artifact (key case-list).

    Args:
        as_of: DPD as of this date; default today in the lender's time zone.
        stage: Only this stage (current, overdue, phone, visit, outsourced, litigation, settled, written_off).
        bucket: Only this bucket as of the date (M0 ... M6, M7+).
        dpd_min: At least this many days past due.
        dpd_max: At most this many days past due.
        agency: Only cases placed with this agency.
    """
    day = as_of or runtime.today()
    rows = case_list(runtime.app(), day, stage=stage, bucket=bucket, dpd_min=dpd_min, dpd_max=dpd_max, agency=agency)
    create_table_artifact(
        key="case-list",
        table=rows[:ARTIFACT_ROWS] or [{"case_id": "(no case)"}],
        description=f"{len(rows)} case(s) as of {day} (stage {stage or 'any'}, bucket {bucket or 'any'})",
    )
    return len(rows)
