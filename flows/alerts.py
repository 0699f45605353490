"""A failed daily close tells the operators: the flow the failed-close automation runs.

The ``close-failed`` deployment carries a trigger (``FAILED_CLOSE_TRIGGER``,
stated the same in prefect.yaml): any run of the ``daily-close`` deployment
that ends Failed or Crashed starts it. Prefect turns the trigger into an
automation when the deployment is registered, by ``prefect deploy --all`` or
by ``collectflow serve``, so the server holds it whichever way the project was
set up. The run says which close failed and why (the stuck cases), logs it
at ERROR, publishes it as the ``failed-close`` artifact, and sends it through
the Prefect notification block named by ``COLLECTFLOW_ALERT_BLOCK`` (for
instance ``slack-webhook/collections-ops`` or ``custom-webhook/pager``; made
in the UI under Blocks) when that is set in the worker's environment.
"""

from __future__ import annotations

import os
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

DAILY_CLOSE = "daily-close"  # the deployment watched
ALERT_BLOCK_ENV = "COLLECTFLOW_ALERT_BLOCK"
AUTOMATION_NAME = "collectflow: a daily close failed"

#: The deployment trigger of ``close-failed``; prefect.yaml states the same (a test holds them equal).
FAILED_CLOSE_TRIGGER = {
    "type": "event",
    "name": AUTOMATION_NAME,
    "description": "Runs close-failed, which notifies the operators, when a run of the daily-close deployment fails or crashes.",
    "enabled": True,
    "expect": ["prefect.flow-run.Failed", "prefect.flow-run.Crashed"],
    "match": {"prefect.resource.id": "prefect.flow-run.*"},
    "match_related": {"prefect.resource.role": "deployment", "prefect.resource.name": DAILY_CLOSE},
    "parameters": {"flow_run": "{{ event.resource.id }}"},
}


def failed_close_message(run_name: str, reason: str, url: str) -> str:
    return (
        f"Daily close {run_name} failed: {reason} "
        f"Fix the data, then press Retry on the run ({url}), or run the retry-case deployment for each stuck case "
        "(the run's stuck-cases artifact lists them)."
    )


@flow(name="close-failed", flow_run_name="close-failed")
def close_failed(flow_run: str) -> str:
    """Tell the operators that a daily close failed, and how to finish it.

    Args:
        flow_run: The failed run: its id, or the event's resource id (prefect.flow-run.<id>).
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_UI_URL

    run_id = UUID(flow_run.removeprefix("prefect.flow-run."))
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        states = client.read_flow_run_states(run_id)
    # the run may have moved on (an operator already pressed Retry): say why it failed, not what it does now
    ended = [s for s in states if s.type.value in ("FAILED", "CRASHED")]
    last = max(ended, key=lambda s: s.timestamp) if ended else run.state
    reason = (last.message if last else "") or (last.name if last else "no state")
    url = f"{(PREFECT_UI_URL.value() or '').rstrip('/')}/runs/flow-run/{run_id}"
    message = failed_close_message(run.name, reason, url)
    get_run_logger().error(message)
    create_markdown_artifact(key="failed-close", markdown=message, description=f"Daily close {run.name} failed")
    block = os.environ.get(ALERT_BLOCK_ENV, "").strip()
    if block:
        from prefect.blocks.core import Block

        Block.load(block).notify(message, subject=AUTOMATION_NAME)
    return message
