"""Several worker processes share one date's close on the real PostgreSQL; one is killed mid-batch.

Each worker is the real command (``collectflow advance --date D --worker``)
in its own process. One of them runs with the fault seam of
tests/e2e/faulty/sitecustomize.py: it hangs in the middle of its first batch
(holding its lease, renewed) until the test SIGKILLs it while the others
work; its batch is taken over when the lease runs out. The end state must be
the one a single worker leaves on the same portfolio: the same seal (Merkle
root over every case's last hash), the same digest of every event and case
row, no event written twice, every due case advanced once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from flows.handlers.close import day_total, finish_day, plan_day, work_day
from models.db import make_engine, upgrade
from models.seals import current_leaves
from models.store import CaseStore
from states.seals import merkle_root
from tests.integration.builders import FIRST_DUE, book
from tests.integration.test_close_batches import make_app

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FAULTY = ROOT / "tests" / "e2e" / "faulty"
DAY = FIRST_DUE + timedelta(days=40)
CASES, BATCH, LEASE_S = 240, 15, 3


@contextmanager
def schema(postgres_database: str):
    """A new schema in the session's PostgreSQL database, migrated to head; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = make_url(postgres_database).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    url = make_url(postgres_database).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    try:
        yield url, engine
    finally:
        engine.dispose()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def start_worker(url: str, tmp_path: Path, n: int, **fault: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "COLLECTFLOW_DATABASE_URL": url,
        "COLLECTFLOW_KEY_DIR": str(tmp_path / "keys"),
        "COLLECTFLOW_DATA_DIR": str(tmp_path / "data"),
        "COLLECTFLOW_SEALS_DIR": str(tmp_path / "seals"),
        "COLLECTFLOW_LEASE_SECONDS": str(LEASE_S),
        "COLLECTFLOW_JOIN_SECONDS": "30",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    if fault:
        env.update(fault)
        env["PYTHONPATH"] = os.pathsep.join([str(FAULTY), str(ROOT), os.environ.get("PYTHONPATH", "")])
    log = open(tmp_path / f"worker-{n}.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "advance", "--date", DAY.isoformat(), "--worker", "--json"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def single_worker_close(postgres_database: str, tmp_path: Path) -> dict:
    """The reference: the same portfolio closed by one worker, in this process."""
    with schema(postgres_database) as (_, engine):
        store = CaseStore(engine)
        book(store, CASES)
        app = make_app(engine, tmp_path)
        plan = plan_day(app, DAY, BATCH)
        work_day(app, DAY, join_seconds=0)
        total = finish_day(app, plan)
        return {"root": merkle_root(current_leaves(engine)), "digest": store.digest(), "events": _count(engine), "advanced": total.advanced}


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_one_killed_mid_batch_close_a_date_as_one_worker_does(postgres_database, tmp_path, workers):
    reference = single_worker_close(postgres_database, tmp_path)
    assert reference["advanced"] == CASES
    with schema(postgres_database) as (url, engine):
        store = CaseStore(engine)
        book(store, CASES)
        app = make_app(engine, tmp_path)
        store.begin_business_day(DAY)
        plan = plan_day(app, DAY, BATCH)  # the coordinator plans; the workers only join
        mark = tmp_path / "doomed-is-mid-batch"
        doomed = start_worker(url, tmp_path, 0, COLLECTFLOW_FAULT_HANG_AFTER="4", COLLECTFLOW_FAULT_HANG_MARK=str(mark))
        wait_until(mark.exists, 120, "the doomed worker to be in the middle of its first batch")
        held = [r for r in store.batch_rows(DAY) if r["owner"] and f":{doomed.pid}:" in r["owner"] and r["done_at"] is None]
        assert len(held) == 1
        others = [start_worker(url, tmp_path, n) for n in range(1, workers)]
        wait_until(lambda: any(r["done_at"] for r in store.batch_rows(DAY)), 120, "the other workers to close a batch")
        doomed.send_signal(signal.SIGKILL)  # mid-batch, lease held: nothing of its batch committed
        assert doomed.wait(30) == -signal.SIGKILL
        for worker in others:
            assert worker.wait(240) == 0, (tmp_path / f"worker-{others.index(worker) + 1}.log").read_text()

        rows = store.batch_rows(DAY)
        assert all(r["done_at"] is not None for r in rows)
        (taken_over,) = [r for r in rows if r["batch_no"] == held[0]["batch_no"]]
        assert taken_over["attempts"] == 2 and f":{doomed.pid}:" not in taken_over["owner"]
        total = finish_day(app, plan)
        assert total.advanced == CASES and not total.stuck  # every due case advanced once
        assert day_total(app, plan).advanced == reference["advanced"]
        assert store.business_day(DAY).status == "closed"
        assert store.due_case_ids(DAY) == []
        with engine.connect() as conn:
            twice = conn.execute(
                text("SELECT count(*) FROM (SELECT case_id, business_date, type FROM events "
                     "WHERE business_date = :day GROUP BY case_id, business_date, type, payload HAVING count(*) > 1) AS d"),
                {"day": DAY},
            ).scalar_one()
        assert twice == 0
        assert _count(engine) == reference["events"]
        assert merkle_root(current_leaves(engine)) == reference["root"]
        assert store.digest() == reference["digest"]
        helped = [_last_json(tmp_path / f"worker-{n}.log") for n in range(1, workers)]
        assert sum(d["advanced"] for h in helped for d in h["dates"]) == CASES  # the doomed one committed nothing


def _last_json(log: Path) -> dict:
    """The JSON object a worker printed last (its log may hold warnings before it)."""
    logged = log.read_text(encoding="utf-8")
    return json.loads(logged[logged.rindex('{\n  "role"') :])


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM events")).scalar_one()
