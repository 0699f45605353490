"""The task runner the close fans its batches out through, chosen by ``COLLECTFLOW_TASK_RUNNER``.

    auto        thread on PostgreSQL, sequential on SQLite (the default: what measured faster)
    sequential  no runner: the flow calls one batch task after another
    thread      Prefect's ThreadPoolTaskRunner, COLLECTFLOW_TASK_RUNNER_WORKERS threads
    dask        prefect-dask's DaskTaskRunner: the Dask scheduler at COLLECTFLOW_DASK_ADDRESS,
                else a LocalCluster of COLLECTFLOW_TASK_RUNNER_WORKERS processes (one thread each)

Dask worker processes build their own App from the COLLECTFLOW_* settings of
their environment (an existing cluster's workers need the same settings).
"""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from models.settings import Settings
from states.errors import UserError


def batch_runner(settings: Settings) -> TaskRunner | None:
    """A fresh (not yet started) task runner for the close's batches; None for sequential."""
    chosen = settings.task_runner
    if chosen == "auto":  # threads overlap PostgreSQL's work with ours; SQLite has one writer anyway
        chosen = "thread" if settings.database_url.startswith("postgres") else "sequential"
    if chosen == "sequential":
        return None
    if chosen == "thread":
        return ThreadPoolTaskRunner(max_workers=settings.task_runner_workers)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise UserError(
            "COLLECTFLOW_TASK_RUNNER=dask needs prefect-dask; install it (pip install 'collectflow[dask]') "
            "or choose thread or sequential"
        ) from None
    if settings.dask_address.strip():
        return DaskTaskRunner(address=settings.dask_address.strip())
    cluster = {"n_workers": settings.task_runner_workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    api = _api_url()
    if api:  # the local cluster's processes report their task runs to this process's Prefect API
        cluster["env"] = {"PREFECT_API_URL": api}
    return DaskTaskRunner(cluster_kwargs=cluster)


def _api_url() -> str | None:
    """The Prefect API this process talks to (in local mode: the temporary server it started)."""
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_API_URL

    context = FlowRunContext.get()
    if context is not None and getattr(context, "client", None) is not None:
        return str(context.client.api_url)
    return PREFECT_API_URL.value()
